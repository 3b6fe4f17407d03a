//! What a model call adds to the request's telemetry once it is known: the GenAI attributes
//! of its span (response model, usage, finish reason, time to first token), its tokens and
//! dollars as a fact of the request, and, only when asked for (`OTEL_CAPTURE_CONTENT`,
//! `LOG_CONTENT`), its prompt and answer.

use futures::stream::StreamExt as _;

use opencode_core::model::{ChatRequest, ChatResponse, FinishReason, StreamEvent, Usage};
use opencode_core::pricing::Price;
use opencode_core::telemetry::AttrValue;

use super::attempts::Operation;
use super::{Answered, ProviderStream};
use crate::host::Host;
use crate::log::{self, Field, Level};
use crate::trace::{self, SpanGuard, UsageFact};

/// A chat call's operation and request parameters.
pub(super) fn chat_operation(request: &ChatRequest) -> Operation {
    Operation { name: "chat", max_tokens: request.max_tokens, temperature: request.temperature, top_p: request.top_p }
}

/// What one finished call came to.
pub(super) struct Call<'a> {
    pub response_model: &'a str,
    pub usage: Usage,
    pub finish: Option<&'a FinishReason>,
    pub answer: &'a str,
}

/// Who answered: what a call's facts need of [`Answered`] (not all its attempts).
pub(super) struct Who {
    provider: String,
    model: String,
    price: Option<Price>,
}

impl Who {
    fn of(answered: &Answered) -> Who {
        Who { provider: answered.provider.clone(), model: answered.model.clone(), price: answered.price }
    }
}

/// Completes the successful attempt's span and the request's facts.
pub(super) fn finish<H: Host>(host: &H, span: &SpanGuard<H>, answered: &Who, request: &ChatRequest, call: &Call<'_>) {
    if span.recording() {
        if !call.response_model.is_empty() {
            span.set("gen_ai.response.model", call.response_model);
        }
        span.set("gen_ai.usage.input_tokens", call.usage.input_tokens);
        span.set("gen_ai.usage.output_tokens", call.usage.output_tokens);
        if let Some(reason) = call.finish {
            span.set("gen_ai.response.finish_reasons", AttrValue::Texts(vec![reason.as_str().to_owned()]));
        }
    }
    let cost_usd = answered.price.map_or(0.0, |price| price.cost(&call.usage));
    trace::note(host, |facts| {
        facts.usage.push(UsageFact {
            provider: answered.provider.clone(),
            model: answered.model.clone(),
            priced: answered.price.is_some(),
            usage: call.usage,
            cost_usd,
        });
    });
    let Some(settings) = host.trace().map(|t| (t.settings.capture_content, t.settings.log_content)) else { return };
    if settings == (false, false) {
        return;
    }
    let messages: Vec<_> = request.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
    let prompt = messages_json(&messages);
    if settings.0 && span.recording() {
        span.set("gen_ai.input.messages", prompt.as_str());
        span.set("gen_ai.output.messages", messages_json(&[("assistant", call.answer)]));
    }
    if settings.1 {
        let fields = [
            ("provider", Field::Text(&answered.provider)),
            ("model", Field::Text(&answered.model)),
            ("prompt", Field::Text(&prompt)),
            ("answer", Field::Text(call.answer)),
        ];
        log::log(host, Level::Info, "model call", &fields);
    }
}

/// Messages in the GenAI conventions' shape, `[{"role","parts":[{"type":"text","content"}]}]`,
/// written by hand (a derived serializer of the platform's messages costs every function Wasm).
fn messages_json(messages: &[(&str, &str)]) -> String {
    let mut out = String::from("[");
    for (i, &(role, text)) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let fields = [("role", Field::Text(role))];
        let head = log::json_object(&fields);
        out.push_str(head.trim_end_matches('}'));
        out.push_str(",\"parts\":[");
        out.push_str(&log::json_object(&[("type", Field::Text("text")), ("content", Field::Text(text))]));
        out.push_str("]}");
    }
    out.push(']');
    out
}

/// The time to first token of a committed stream: the successful attempt's time to its commit.
pub(super) fn first_token<H: Host>(host: &H, span: &SpanGuard<H>, answered: &Answered) {
    let Some(ms) = answered.attempts.last().map(|a| a.elapsed_ms) else { return };
    span.set("gen_ai.response.time_to_first_chunk", AttrValue::Float(ms as f64 / 1000.0));
    trace::note(host, |facts| {
        if let Some(last) = facts.attempts.last_mut() {
            last.ttft_ms = Some(ms);
        }
    });
}

/// A whole answer's call.
pub(super) fn whole<H: Host>(
    host: &H,
    span: SpanGuard<H>,
    answered: &Answered,
    request: &ChatRequest,
    response: &ChatResponse,
) {
    let call = Call {
        response_model: &response.model,
        usage: response.usage,
        finish: Some(&response.finish_reason),
        answer: &response.text,
    };
    finish(host, &span, &Who::of(answered), request, &call);
}

/// Watches a committed stream: its span ends, with the call's usage, when the stream does (or
/// is dropped, when the client leaves).
pub(super) fn stream<H: Host>(
    host: &H,
    span: SpanGuard<H>,
    answered: &Answered,
    request: &ChatRequest,
    events: ProviderStream,
) -> ProviderStream {
    first_token(host, &span, answered);
    let capture = host.trace().is_some_and(|t| t.settings.capture_content || t.settings.log_content);
    let mut watch = Watch {
        host: host.clone(),
        span: Some(span),
        answered: Who::of(answered),
        // The prompt is only kept when it will be written.
        request: capture.then(|| request.clone()),
        model: String::new(),
        usage: Usage::default(),
        finish: None,
        answer: String::new(),
    };
    events
        .map(move |item| {
            match &item {
                Ok(StreamEvent::Model(model)) => watch.model.clone_from(model),
                Ok(StreamEvent::Usage(usage)) => watch.usage.merge(*usage),
                Ok(StreamEvent::Finish(reason)) => watch.finish = Some(reason.clone()),
                Ok(StreamEvent::Delta(text)) if watch.request.is_some() => watch.answer.push_str(text),
                Err(failure) => {
                    if let Some(span) = &watch.span {
                        span.fail("stream_error", &failure.message);
                    }
                }
                _ => {}
            }
            item
        })
        .boxed_local()
}

/// A stream's call, finished when dropped (the stream ended, or the client left).
struct Watch<H: Host> {
    host: H,
    span: Option<SpanGuard<H>>,
    answered: Who,
    request: Option<ChatRequest>,
    model: String,
    usage: Usage,
    finish: Option<FinishReason>,
    answer: String,
}

impl<H: Host> Drop for Watch<H> {
    fn drop(&mut self) {
        let Some(span) = self.span.take() else { return };
        let empty = ChatRequest::default();
        let request = self.request.as_ref().unwrap_or(&empty);
        let call =
            Call { response_model: &self.model, usage: self.usage, finish: self.finish.as_ref(), answer: &self.answer };
        finish(&self.host, &span, &self.answered, request, &call);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    #[test]
    fn messages_are_in_the_genai_shape() {
        let json = super::messages_json(&[("user", "hi \"there\""), ("assistant", "ok")]);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(value[0]["role"], "user");
        assert_eq!(value[0]["parts"][0]["content"], "hi \"there\"");
        assert_eq!(value[1]["parts"][0]["type"], "text");
    }
}
