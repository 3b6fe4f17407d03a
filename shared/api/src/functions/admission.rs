//! Limits and budgets, checked before any provider call: a key's allowed models, then its and
//! its tenant's requests, tokens and concurrent requests per minute and their budgets, counted
//! exactly ([`counters`]). An admitted request's sibling calls (the agent's tools) carry a
//! marker, signed with `JWT_SECRET`, so that one client request is counted once.

use opencode_core::limits::{self, Hit};
use opencode_core::model::{ChatRequest, Usage};
use opencode_core::providers::ProviderConfig;
use opencode_core::tokens::{request_tokens, DEFAULT_MAX_OUTPUT_TOKENS};
use serde_json::json;

use opencode_core::webhooks::EventType;
use opencode_runtime::control::audit::{self, AuditEntry};
use opencode_runtime::control::counters::{self, Admission, Ask, Refusal, Scope};
use opencode_runtime::control::tenants;
use opencode_runtime::host::Host;
use opencode_runtime::webhooks;

use super::Ctx;
use crate::error::{ApiError, LimitKind};

pub use opencode_runtime::control::ADMITTED_HEADER;

/// The marker of request `request_id`: an HMAC only the platform's functions can compute.
pub fn marker(secret: &str, request_id: &str) -> String {
    let mac = hmac_sha256::HMAC::mac(format!("admitted:{request_id}").as_bytes(), secret.as_bytes());
    opencode_core::hex(&mac)
}

/// Whether `headers` carry the marker of `request_id`.
pub fn is_admitted<H: Host>(host: &H, headers: &http::HeaderMap, request_id: &str) -> bool {
    // The header first: most requests have none, and need no configuration read for it.
    let Some(given) = headers.get(ADMITTED_HEADER) else { return false };
    let Some(secret) = host.var("JWT_SECRET") else { return false };
    crate::jwt::same_bytes(given.as_bytes(), marker(&secret, request_id).as_bytes())
}

impl<H: Host> Ctx<H> {
    /// Admits a model request: the chain narrowed to the models the caller's key allows, then
    /// its tokens (input estimated, plus its output limit) and its most expensive cost reserved
    /// against every limit and budget of the key and the tenant. Returns the chain to run.
    pub async fn admit(
        &self,
        request: &ChatRequest,
        chain: Vec<ProviderConfig>,
    ) -> Result<Vec<ProviderConfig>, ApiError> {
        let chain = self.allowed_chain(chain)?;
        // Estimated only when some limit counts it (a scan of the whole conversation).
        let ask = || {
            let output = request.max_tokens.unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS);
            let usage =
                Usage { input_tokens: request_tokens(request), output_tokens: u64::from(output), ..Usage::default() };
            let cost = chain.iter().filter_map(|p| p.price).map(|price| price.cost(&usage)).fold(0.0, f64::max);
            Ask { tokens: usage.input_tokens.saturating_add(usage.output_tokens), cost_micros: limits::micros(cost) }
        };
        self.reserve(ask).await?;
        Ok(chain)
    }

    /// Admits a request that calls no model (web search results, a sandbox run): it counts
    /// against the request and concurrency limits only.
    pub async fn admit_plain(&self) -> Result<(), ApiError> {
        self.reserve(Ask::default).await
    }

    /// The chain without the models the key does not allow; none left is a 403.
    fn allowed_chain(&self, chain: Vec<ProviderConfig>) -> Result<Vec<ProviderConfig>, ApiError> {
        let Some(allowed) = self.key.as_ref().and_then(|key| key.models.as_ref()) else { return Ok(chain) };
        let allows = |p: &ProviderConfig| {
            allowed.iter().any(|m| {
                *m == p.model || m.split_once('/').is_some_and(|(name, model)| name == p.name && model == p.model)
            })
        };
        let wanted = chain.first().map(|p| format!("{}/{}", p.name, p.model)).unwrap_or_default();
        let chain: Vec<_> = chain.into_iter().filter(allows).collect();
        if chain.is_empty() {
            return Err(ApiError::Forbidden(format!("this API key may not use the model `{wanted}`")));
        }
        Ok(chain)
    }

    async fn reserve(&self, ask: impl FnOnce() -> Ask) -> Result<(), ApiError> {
        if self.admitted_upstream {
            return Ok(());
        }
        let Some(principal) = &self.principal else { return Ok(()) };
        let mut scopes = Vec::new();
        if let Some(key) = &self.key {
            scopes.push(Scope { name: key.scope(), limits: key.limits, budget: key.budget });
        }
        let tenant = tenants::get(&self.host, &principal.tenant).await?;
        scopes.push(Scope { name: tenant.scope(), limits: tenant.limits, budget: tenant.budget });
        scopes.retain(Scope::is_limited);
        if scopes.is_empty() {
            return Ok(());
        }
        match counters::admit(&self.host, scopes, ask()).await? {
            Ok(admission) => {
                *self.limit_headers.borrow_mut() = headers(&admission, self.host.now_ms());
                if let Some(account) = self.meter.as_ref().and_then(|m| m.account.as_ref()) {
                    *account.admission.borrow_mut() = Some(admission);
                } else {
                    // Nothing meters this request (no mode): give the reservation back now.
                    counters::release(&self.host, &admission).await;
                }
                Ok(())
            }
            Err(refusal) => {
                if refusal.hit == Hit::Budget {
                    self.audit_budget(&refusal);
                }
                self.notify_refusal(&refusal);
                Err(refused(&refusal))
            }
        }
    }

    /// `budget.exceeded` or `rate_limited` to the webhook receiver.
    fn notify_refusal(&self, refusal: &Refusal) {
        let Some(principal) = &self.principal else { return };
        let (event, limit) = match refusal.hit {
            Hit::Budget => (EventType::BudgetExceeded, "budget"),
            Hit::Requests => (EventType::RateLimited, "requests_per_minute"),
            Hit::Tokens => (EventType::RateLimited, "tokens_per_minute"),
            Hit::Concurrency => (EventType::RateLimited, "concurrency"),
        };
        let data = json!({
            "request_id": self.request_id,
            "tenant": principal.tenant,
            "key_id": principal.key_id,
            "scope": refusal.scope,
            "limit": limit,
            "retry_after_ms": refusal.retry_after_ms,
        });
        webhooks::send(&self.host, self.config.webhooks.as_ref(), event, data);
    }

    fn audit_budget(&self, refusal: &Refusal) {
        let Some(principal) = &self.principal else { return };
        let entry = AuditEntry {
            id: 0,
            ts: self.host.now_ms(),
            action: "budget.exceeded".into(),
            actor: principal.key_id.clone().unwrap_or_else(|| principal.subject.clone()),
            tenant: principal.tenant.clone(),
            target: Some(refusal.scope.clone()),
            request_id: self.request_id.clone(),
            detail: None,
        };
        let host = self.host.clone();
        self.host.spawn_background(Box::pin(async move {
            let _ = audit::record(&host, &entry).await;
        }));
    }
}

/// The refusal as the client sees it: the scope and the limit, never a count or a sum.
fn refused(refusal: &Refusal) -> ApiError {
    let key = refusal.scope.starts_with("key:");
    let (limit, message) = match (refusal.hit, key) {
        (Hit::Requests, true) => (LimitKind::Rate, "rate limit reached for this API key: requests per minute"),
        (Hit::Requests, false) => (LimitKind::Rate, "rate limit reached for this tenant: requests per minute"),
        (Hit::Tokens, true) => (LimitKind::Rate, "rate limit reached for this API key: tokens per minute"),
        (Hit::Tokens, false) => (LimitKind::Rate, "rate limit reached for this tenant: tokens per minute"),
        (Hit::Concurrency, true) => {
            (LimitKind::Concurrency, "too many concurrent requests for this API key: wait for one to finish")
        }
        (Hit::Concurrency, false) => {
            (LimitKind::Concurrency, "too many concurrent requests for this tenant: wait for one to finish")
        }
        (Hit::Budget, true) => {
            (LimitKind::Budget, "budget exceeded for this API key: no more requests until it resets")
        }
        (Hit::Budget, false) => {
            (LimitKind::Budget, "budget exceeded for this tenant: no more requests until it resets")
        }
    };
    let retry_after_secs = refusal.retry_after_ms.map(|ms| ms.div_ceil(1_000).max(1));
    ApiError::LimitReached { limit, message: message.to_owned(), retry_after_secs }
}

/// `x-ratelimit-*` for the tightest request and token limits of an admitted request.
fn headers(admission: &Admission, now_ms: u64) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let names = [
        ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"],
        ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"],
    ];
    for (tokens, [limit_name, remaining_name, reset_name]) in [false, true].into_iter().zip(names) {
        // The scope with the least left of this limit.
        let mut tightest: Option<(u64, u64, u64)> = None;
        for held in &admission.held {
            let (limit, used) = if tokens {
                (held.scope.limits.tpm, held.counted.tokens)
            } else {
                (held.scope.limits.rpm, held.counted.requests)
            };
            let Some(limit) = limit else { continue };
            let left = limit.saturating_sub(used);
            if tightest.is_none_or(|(_, best, _)| left < best) {
                tightest = Some((limit, left, held.window_start));
            }
        }
        if let Some((limit, left, window_start)) = tightest {
            let reset = window_start.saturating_add(limits::WINDOW_MS).saturating_sub(now_ms);
            out.push((limit_name, limit.to_string()));
            out.push((remaining_name, left.to_string()));
            out.push((reset_name, limits::reset_text(reset)));
        }
    }
    out
}
