//! `POST /v1/thinking`: one turn with deliberate reasoning, asked of each provider through its
//! own control (OpenAI `reasoning_effort`, Anthropic extended thinking, Gemini
//! `thinkingConfig`; the translations live in `providers/`).
//!
//! The reasoning never enters the answer text. In the JSON answer it appears as `thinking`
//! only when the body sets `include_thinking: true`. A stream sends it as `thinking` events
//! (before the answer's `delta`s, as every vendor reasons first) unless the body sets
//! `include_thinking: false`: watching the model reason is what a thinking stream is for, and
//! a client that does not want it can say so. Answers are never cached: the cache is for
//! System 1 answers, and a client asking for deliberation wants it done.

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::chat::{usage_json, ChatBody};
use super::mode::{answer_json, done_json, event_stream, parse_mode_body, relay, requested_tier};
use super::{Ctx, Handled};
use crate::error::ApiError;
use crate::web;
use opencode_core::model::{ChatRequest, ChatResponse, Effort, Reasoning, StreamEvent};
use opencode_core::routing::{Mode, Tier};
use opencode_runtime::executor::{self, Answered};
use opencode_runtime::host::{Body, Host};

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

/// `{"effort": "low"|"medium"|"high"}` or `{"budget_tokens": n}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasoningBody {
    effort: Option<Effort>,
    budget_tokens: Option<u32>,
}

/// A validated thinking request.
#[derive(Debug)]
pub struct ThinkingRequest {
    /// The chat request, `reasoning` set.
    pub request: ChatRequest,
    pub stream: bool,
    /// The level (asked for, or the one the budget falls in: what OpenAI gets).
    pub effort: Effort,
    /// The budget (asked for, or the level's: what Anthropic and Gemini get).
    pub budget_tokens: u32,
    /// As sent; its default depends on the delivery (see the module docs).
    pub include_thinking: Option<bool>,
}

impl ThinkingRequest {
    /// Parses and checks a `/v1/thinking` body.
    pub fn parse(parts: &http::request::Parts, bytes: &[u8]) -> Result<ThinkingRequest, ApiError> {
        let (chat, fields): (ChatBody, ThinkingFields) = parse_mode_body(parts, bytes, FIELDS)?;
        let (effort, budget_tokens) = match fields.reasoning {
            None => (DEFAULT_EFFORT, DEFAULT_EFFORT.budget_tokens()),
            Some(ReasoningBody { effort: Some(effort), budget_tokens: None }) => (effort, effort.budget_tokens()),
            Some(ReasoningBody { effort: None, budget_tokens: Some(budget) }) => {
                if !(MIN_BUDGET_TOKENS..=MAX_BUDGET_TOKENS).contains(&budget) {
                    return Err(ApiError::Validation(format!(
                        "`reasoning.budget_tokens` must be between {MIN_BUDGET_TOKENS} and {MAX_BUDGET_TOKENS}, got {budget}"
                    )));
                }
                (Effort::from_budget(budget), budget)
            }
            Some(_) => {
                return Err(ApiError::Validation(
                    "`reasoning` takes exactly one of `effort` (low, medium, high) or `budget_tokens`".into(),
                ))
            }
        };
        let (mut request, stream) = chat.validate()?;
        // The answer is the model's own, so a `response_format` reaches it unchanged.
        super::mode::refuse_tools(&request, Mode::Thinking, true)?;
        request.reasoning = Some(Reasoning { budget_tokens });
        Ok(ThinkingRequest { request, stream, effort, budget_tokens, include_thinking: fields.include_thinking })
    }

    /// `reasoning` as the answer reports it.
    fn reasoning_json(&self) -> Value {
        json!({"effort": self.effort.as_str(), "budget_tokens": self.budget_tokens})
    }

    /// The JSON answer's fields; the reasoning text only when asked for (`null` when asked
    /// for but the provider returns none, as OpenAI's own models do).
    fn answer(
        &self,
        request_id: &str,
        answer: &ChatResponse,
        answered: &Answered,
        with_thinking: bool,
    ) -> Map<String, Value> {
        let mut fields = answer_json(request_id, Mode::Thinking, answer, answered);
        // Every mode answers with the same fields; thinking cites nothing.
        fields.insert("citations".into(), json!([]));
        fields.insert("reasoning".into(), self.reasoning_json());
        if with_thinking {
            fields.insert("thinking".into(), json!(answer.thinking));
        }
        fields
    }
}

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let mut thinking = ThinkingRequest::parse(&parts, &bytes)?;
    // Deliberate reasoning is System 2 unless the gateway decided otherwise. Both tiers run
    // each provider's reasoning model (its configured model, unless that default cannot reason).
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System2);
    let chain = ctx.config.reasoning_chain_for(thinking.request.model.take().as_deref())?;
    // The chain now carries the asked-for model on its first provider; left in the request it
    // would override every provider's model, so a fallback would ask for another vendor's.
    let retry = &ctx.config.retry;
    if !thinking.stream {
        let (answer, answered) = executor::complete(&ctx.host, &chain, &thinking.request, retry).await?;
        let with_thinking = thinking.include_thinking == Some(true);
        let fields = thinking.answer(&ctx.request_id, &answer, &answered, with_thinking);
        let mut response = web::json(http::StatusCode::OK, &Value::Object(fields));
        answered_headers(&mut response, &answered);
        return Ok(response);
    }

    let started = executor::stream(&ctx.host, &chain, &thinking.request, retry).await?;
    let answered = started.answered;
    let events = if thinking.include_thinking == Some(false) {
        started.events.filter(|e| futures::future::ready(!matches!(e, Ok(StreamEvent::Thinking(_))))).boxed_local()
    } else {
        started.events
    };
    let request_id = ctx.request_id.clone();
    let head = answered.clone();
    let mut response = event_stream(&ctx.request_id, move |emitter| async move {
        emitter.send(
            "start",
            &json!({
                "id": request_id,
                "mode": Mode::Thinking.as_str(),
                "tier": tier.as_str(),
                "provider": answered.provider,
                "model": answered.model,
                "attempts": answered.attempts.len(),
                "reasoning": thinking.reasoning_json(),
            }),
        );
        match relay(&emitter, events, &answered).await {
            Ok(answer) => {
                emitter.send("usage", &usage_json(&answer.usage, answered.cost_usd(&answer.usage)));
                // The reasoning went out as `thinking` events, like the text as deltas.
                emitter.send("done", &done_json(thinking.answer(&request_id, &answer, &answered, false)));
            }
            Err(failure) => emitter.stream_failed(&failure),
        }
    });
    answered_headers(&mut response, &head);
    Ok(response)
}

fn answered_headers(response: &mut http::Response<Body>, answered: &Answered) {
    web::set_header(response, "x-provider", &answered.provider);
    web::set_header(response, "x-model", &answered.model);
    web::set_header(response, "x-attempts", &answered.attempts.len().to_string());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    fn parts() -> http::request::Parts {
        http::Request::post("/v1/thinking").header("content-type", "application/json").body(()).unwrap().into_parts().0
    }

    fn parse(body: Value) -> Result<ThinkingRequest, ApiError> {
        ThinkingRequest::parse(&parts(), body.to_string().as_bytes())
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
        assert_eq!((t.effort, t.budget_tokens), (Effort::Medium, Effort::Medium.budget_tokens()));
        assert_eq!(t.request.reasoning, Some(Reasoning { budget_tokens: 4_096 }));
        assert_eq!(t.include_thinking, None);
        assert!(!t.stream);
    }

    #[test]
    fn an_effort_becomes_its_budget_and_a_budget_keeps_itself_and_gets_its_level() {
        for effort in [Effort::Low, Effort::Medium, Effort::High] {
            let t = parse(with(json!({"reasoning": {"effort": effort.as_str()}}))).unwrap();
            assert_eq!(t.request.reasoning, Some(Reasoning { budget_tokens: effort.budget_tokens() }));
            assert_eq!(t.effort, effort);
        }
        let t = parse(with(json!({"reasoning": {"budget_tokens": 3000}, "include_thinking": true, "stream": true})))
            .unwrap();
        assert_eq!((t.effort, t.budget_tokens), (Effort::Medium, 3000));
        assert_eq!(t.request.reasoning, Some(Reasoning { budget_tokens: 3000 }));
        assert_eq!(t.include_thinking, Some(true));
        assert!(t.stream);
        assert_eq!(t.reasoning_json(), json!({"effort": "medium", "budget_tokens": 3000}));
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
