//! `POST /v1/thinking`: the chat body plus `reasoning` (`{"effort"}` or `{"budget_tokens"}`)
//! and `include_thinking`, answered by [`opencode_runtime::modes::thinking`].

use serde::Deserialize;

use opencode_core::model::{Effort, Reasoning};
use opencode_core::routing::{Mode, Tier};
use opencode_runtime::answer::ReasoningAsked;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::modes::thinking::{self as mode, ThinkingJob};
use opencode_runtime::modes::Delivery;

use super::{parse_mode, Ctx, Dialect, Handled};
use crate::error::ApiError;
use crate::platform::request::{refuse_tools, requested_tier, ReasoningBody};
use crate::web;

/// The mode's own body fields, next to the chat body's.
const FIELDS: &[&str] = &["reasoning", "include_thinking"];
/// The smallest budget every vendor accepts (Anthropic refuses less).
pub const MIN_BUDGET_TOKENS: u32 = 1_024;
/// The largest budget every default model accepts (Gemini 2.5 Flash's ceiling).
pub const MAX_BUDGET_TOKENS: u32 = 24_576;
/// The level a request gets when it names none.
pub const DEFAULT_EFFORT: Effort = Effort::Medium;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThinkingFields {
    reasoning: Option<ReasoningBody>,
    include_thinking: Option<bool>,
}

/// A parsed `/v1/thinking` body: the chat request (`reasoning` set), whether it streams, what was
/// asked of the providers and whether the reasoning is wanted.
#[derive(Debug)]
struct Parsed {
    request: opencode_core::model::ChatRequest,
    dialect: Dialect,
    reasoning: ReasoningAsked,
    include_thinking: Option<bool>,
}

/// Parses and checks a `/v1/thinking` body.
fn parse(parts: &http::request::Parts, bytes: &[u8]) -> Result<Parsed, ApiError> {
    let (mut request, fields, dialect) = parse_mode::<ThinkingFields, true>(parts, bytes, Mode::Thinking, FIELDS)?;
    let (effort, budget_tokens) = match fields.reasoning {
        // A vendor's dialect asks through its own field (`reasoning_effort`, `thinking`).
        None => match request.reasoning {
            Some(asked) => (Effort::from_budget(asked.budget_tokens), asked.budget_tokens),
            None => (DEFAULT_EFFORT, DEFAULT_EFFORT.budget_tokens()),
        },
        Some(asked) => asked.asked(MIN_BUDGET_TOKENS, MAX_BUDGET_TOKENS)?,
    };
    // The answer is the model's own, so a `response_format` reaches it unchanged.
    refuse_tools(&request, Mode::Thinking, true)?;
    request.reasoning = Some(Reasoning { budget_tokens });
    let reasoning = ReasoningAsked { effort, budget_tokens };
    // A vendor's dialect has a place for the reasoning its clients may show or not.
    let include_thinking = match dialect {
        Dialect::Platform { .. } => fields.include_thinking,
        _ => Some(true),
    };
    Ok(Parsed { request, dialect, reasoning, include_thinking })
}

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let mut parsed = parse(&parts, &bytes)?;
    // Deliberate reasoning is System 2 unless the gateway decided otherwise. Both tiers run each
    // provider's reasoning model (its configured model, unless that default cannot reason).
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System2);
    // The chain carries the asked-for model on its first provider; left in the request it would
    // override every provider's model, so a fallback would ask for another vendor's.
    let chain = ctx.config.reasoning_chain_for(parsed.request.model.take().as_deref())?;
    let chain = ctx.admit(&parsed.request, chain).await?;
    let delivery = if parsed.dialect.streams() { Delivery::Stream } else { Delivery::Whole };
    let job = ThinkingJob {
        request: parsed.request,
        chain,
        retry: ctx.config.retry.clone(),
        tier,
        reasoning: parsed.reasoning,
        include_thinking: parsed.include_thinking,
    };
    Ok(ctx.respond_in(parsed.dialect, mode::run(&ctx.host, job, delivery).await?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::platform::PlatformDetails;
    use opencode_runtime::modes::thinking::ThinkingDetails;
    use serde_json::{json, Map, Value};

    fn parts() -> http::request::Parts {
        http::Request::post("/v1/thinking").header("content-type", "application/json").body(()).unwrap().into_parts().0
    }

    fn parse(body: Value) -> Result<Parsed, ApiError> {
        super::parse(&parts(), body.to_string().as_bytes())
    }

    /// `reasoning` as the answer reports it.
    fn reasoning_json(t: &Parsed) -> Value {
        let mut out = Map::new();
        ThinkingDetails { reasoning: t.reasoning }.fields("", &mut out);
        out.remove("reasoning").unwrap_or_default()
    }

    fn with(extra: Value) -> Value {
        let mut body = json!({"messages": [{"role": "user", "content": "why?"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    #[test]
    fn without_reasoning_the_default_is_medium_and_thinking_is_left_to_the_delivery() {
        let t = parse(with(json!({}))).unwrap();
        assert_eq!((t.reasoning.effort, t.reasoning.budget_tokens), (Effort::Medium, Effort::Medium.budget_tokens()));
        assert_eq!(t.request.reasoning, Some(Reasoning { budget_tokens: 4_096 }));
        assert_eq!(t.include_thinking, None);
        assert!(!t.dialect.streams());
    }

    #[test]
    fn an_effort_becomes_its_budget_and_a_budget_keeps_itself_and_gets_its_level() {
        for effort in [Effort::Low, Effort::Medium, Effort::High] {
            let t = parse(with(json!({"reasoning": {"effort": effort.as_str()}}))).unwrap();
            assert_eq!(t.request.reasoning, Some(Reasoning { budget_tokens: effort.budget_tokens() }));
            assert_eq!(t.reasoning.effort, effort);
        }
        let t = parse(with(json!({"reasoning": {"budget_tokens": 3000}, "include_thinking": true, "stream": true})))
            .unwrap();
        assert_eq!((t.reasoning.effort, t.reasoning.budget_tokens), (Effort::Medium, 3000));
        assert_eq!(t.request.reasoning, Some(Reasoning { budget_tokens: 3000 }));
        assert_eq!(t.include_thinking, Some(true));
        assert!(t.dialect.streams());
        assert_eq!(reasoning_json(&t), json!({"effort": "medium", "budget_tokens": 3000}));
    }

    #[test]
    fn budgets_inside_every_vendors_limits_pass_and_others_are_refused() {
        for ok in [MIN_BUDGET_TOKENS, MAX_BUDGET_TOKENS] {
            assert!(parse(with(json!({"reasoning": {"budget_tokens": ok}}))).is_ok(), "{ok}");
        }
        for bad in [0, MIN_BUDGET_TOKENS - 1, MAX_BUDGET_TOKENS + 1] {
            let err = parse(with(json!({"reasoning": {"budget_tokens": bad}}))).unwrap_err();
            assert!(matches!(&err, ApiError::Validation(m) if m.contains("budget_tokens")), "{bad}: {err:?}");
        }
    }

    #[test]
    fn malformed_reasoning_and_unknown_fields_are_422() {
        let cases = [
            (json!({"reasoning": {"effort": "extreme"}}), "extreme"),
            (json!({"reasoning": {"effort": "low", "budget_tokens": 2000}}), "exactly one"),
            (json!({"reasoning": {}}), "exactly one"),
            (json!({"reasoning": "high"}), "invalid type"),
            (json!({"reasoning": {"budget_tokens": -5}}), "-5"),
            (json!({"reasoning": {"effort": "low", "budget": 5}}), "budget"),
            (json!({"include_thinking": "yes"}), "boolean"),
            (json!({"thinking": true}), "thinking"),
            (json!({"temperature": 5}), "temperature"),
        ];
        for (extra, needle) in cases {
            let err = parse(with(extra.clone())).unwrap_err();
            assert_eq!(err.status(), http::StatusCode::UNPROCESSABLE_ENTITY, "{extra}: {err:?}");
            assert!(err.to_string().contains(needle), "{extra}: {err}");
        }
    }
}
