//! Guard hooks (`GUARD_URL`): a conversation is screened before any provider sees it — every
//! model call (the agent's and the bounded runs' steps included, through the executor), and a
//! mode's request before its cache lookup, retrieval or web search. A conversation the guard
//! let through (or modified) is not sent again within the request. A denial, and with
//! `GUARD_FAIL=closed` a guard that fails or overruns `GUARD_TIMEOUT_MS`, ends the call as a
//! failed "attempt" of provider `guard` (outcome `blocked` or `guard_unavailable`), which the
//! API answers with 403 `blocked_by_guard` or 503 `guard_unavailable`.

use std::borrow::Cow;

use opencode_core::guard::{self, Guard, Verdict};
use opencode_core::model::ChatRequest;
use opencode_core::telemetry::SpanKind;

use crate::config::ConfigError;
use crate::executor::{with_timeout, Attempt, Outcome, ProvidersFailed};
use crate::host::Host;
use crate::log::{self, Field};
use crate::trace::SpanGuard;

/// Largest guard answer read.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The guard, when `GUARD_URL` is set; a malformed setting names its variable.
pub fn settings<H: Host>(host: &H) -> Result<Option<Guard>, ConfigError> {
    let var = |name: &str| host.var(name);
    let (url, timeout, fail) = (var("GUARD_URL"), var("GUARD_TIMEOUT_MS"), var("GUARD_FAIL"));
    Guard::from_vars(url.as_deref(), timeout.as_deref(), fail.as_deref()).map_err(ConfigError::NotConfigured)
}

/// `request` as the guard lets it go to `model`: the same, modified, or refused.
pub async fn screen<'r, H: Host>(
    host: &H,
    model: &str,
    request: &'r ChatRequest,
) -> Result<Cow<'r, ChatRequest>, ProvidersFailed> {
    let guard = match settings(host) {
        Ok(None) => return Ok(Cow::Borrowed(request)),
        Ok(Some(guard)) => guard,
        // Config::from_host refused this already; a request that got here fails closed.
        Err(err) => return Err(refused(Outcome::GuardUnavailable, err.to_string(), 0)),
    };
    let digest = digest(&request.messages);
    let trace = host.trace();
    if trace.as_ref().is_some_and(|t| t.facts.borrow().screened.contains(&digest)) {
        return Ok(Cow::Borrowed(request));
    }
    let (mode, tenant) = trace.as_ref().map_or((None, None), |t| {
        let facts = t.facts.borrow();
        (facts.mode, facts.tenant.clone())
    });
    let mode = mode.map_or("chat", |m| m.as_str());
    let started = host.now_ms();
    let span = SpanGuard::start(host, SpanKind::Client, "guard".to_owned());
    let asked = ask(host, &guard, mode, model, tenant.as_deref(), request);
    let answer = with_timeout(host, guard.timeout_ms, asked)
        .await
        .unwrap_or_else(|| Err(format!("no answer within {} ms", guard.timeout_ms)));
    let elapsed = host.now_ms().saturating_sub(started);
    let screened = match answer {
        Ok(Verdict::Allow) => Cow::Borrowed(request),
        Ok(Verdict::Modify(messages)) => Cow::Owned(ChatRequest { messages, ..request.clone() }),
        Ok(Verdict::Deny(reason)) => {
            span.set("opencode.guard.action", "deny");
            return Err(refused(Outcome::Blocked, reason, elapsed));
        }
        Err(problem) => {
            span.set("opencode.guard.action", "failed");
            let fields = [("error", Field::Text(&problem)), ("fail_open", Field::Flag(guard.fail_open))];
            log::warn(host, "guard failed", &fields);
            if !guard.fail_open {
                return Err(refused(Outcome::GuardUnavailable, problem, elapsed));
            }
            Cow::Borrowed(request)
        }
    };
    if let Some(trace) = trace {
        let mut facts = trace.facts.borrow_mut();
        facts.screened.push(digest);
        // The modified conversation is the guard's own: not screened again either.
        if let Cow::Owned(modified) = &screened {
            facts.screened.push(self::digest(&modified.messages));
        }
    }
    Ok(screened)
}

async fn ask<H: Host>(
    host: &H,
    guard: &Guard,
    mode: &str,
    model: &str,
    tenant: Option<&str>,
    request: &ChatRequest,
) -> Result<Verdict, String> {
    let outbound = guard.request(mode, model, tenant, &request.messages).map_err(|err| err.to_string())?;
    let response =
        host.fetch(outbound).await.map_err(|err| opencode_core::redact::redact(&err.to_string()).into_owned())?;
    let status = response.status();
    let body = response.into_body().collect(MAX_ANSWER_BYTES).await.map_err(|err| err.to_string())?;
    if !status.is_success() {
        return Err(format!("the guard answered {}", status.as_u16()));
    }
    guard::verdict(&body, &request.messages)
}

/// Screens a mode's request before its first provider call (cache lookup, retrieval, web
/// search): the request as the guard lets it go on, and whether it changed it.
pub async fn screen_job<H: Host>(host: &H, model: &str, request: &mut ChatRequest) -> Result<bool, ProvidersFailed> {
    let screened = screen(host, model, request).await?;
    let Cow::Owned(modified) = screened else { return Ok(false) };
    *request = modified;
    Ok(true)
}

fn refused(outcome: Outcome, detail: String, elapsed_ms: u64) -> ProvidersFailed {
    ProvidersFailed(vec![Attempt {
        provider: "guard".into(),
        model: String::new(),
        outcome,
        elapsed_ms,
        rejected_key: false,
        retry_after_ms: None,
        detail,
    }])
}

fn digest(messages: &[opencode_core::model::Message]) -> [u8; 32] {
    hmac_sha256::Hash::hash(guard::messages_json(messages).to_string().as_bytes())
}
