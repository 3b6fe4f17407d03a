//! OpenAI chat completions, and every server that speaks the same dialect by base URL (Ollama,
//! vLLM, LocalAI: [`ProviderKind::Compat`], key optional).
//!
//! Request: `POST {base}/chat/completions`, `Authorization: Bearer`. Response: a
//! `chat.completion`. Stream: `data:` events each holding a `chat.completion.chunk`; the last
//! one before `data: [DONE]` carries usage with empty `choices` because the request sets
//! `stream_options.include_usage`. Reasoning arrives, on servers that return it, as
//! `reasoning_content` (DeepSeek, vLLM) or `reasoning` (Ollama).
//!
//! Tools: `tools` of `{"type":"function","function":{...}}`, `tool_choice`, and
//! `response_format` pass through in OpenAI's own shapes; calls come back in
//! `message.tool_calls` (whole) or `delta.tool_calls` (pieces by `index`, `id` and name on the
//! first), results go back as `{"role":"tool","tool_call_id"}` messages.

mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tool_tests;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use serde_json::Value;

use super::conventions;
use super::{ProviderConfig, ProviderError, ProviderKind, SseEvent};
use crate::model::{
    ChatRequest, ChatResponse, Effort, FinishReason, Message, Reasoning, ResponseFormat, Role, StreamEvent, ToolCall,
    ToolCallPiece, ToolChoice, Usage,
};
use crate::outbound;

pub(super) fn build_request(
    config: &ProviderConfig,
    request: &ChatRequest,
    stream: bool,
) -> Result<http::Request<Bytes>, ProviderError> {
    let uri = outbound::endpoint(&config.base_url, "chat/completions")?;
    let model = conventions::model(config, request)?;
    let compat = config.kind == ProviderKind::Compat;
    let key = if compat { conventions::api_key(config) } else { Some(conventions::required_key(config)?) };
    let mut headers = Vec::new();
    if let Some(key) = key {
        headers.push((AUTHORIZATION, outbound::secret(&format!("Bearer {key}"))?));
    }

    let budget = request.reasoning.map(|r| r.budget_tokens);
    let limit = conventions::output_limit(request.max_tokens, budget);
    // OpenAI's reasoning models accept only the default sampling (a changed `temperature` or
    // `top_p` is a 400), so with reasoning on those are left out; compatible servers keep them.
    let sampling = compat || request.reasoning.is_none();
    let body = wire::Request {
        model,
        messages: request.messages.iter().map(message).collect(),
        temperature: request.temperature.filter(|_| sampling),
        top_p: request.top_p.filter(|_| sampling),
        top_k: request.top_k.filter(|_| compat),
        // OpenAI deprecated `max_tokens` for its own API (reasoning models reject it); the
        // compatible servers mostly know only `max_tokens`.
        max_tokens: if compat { limit } else { None },
        max_completion_tokens: if compat { None } else { limit },
        stop: &request.stop,
        seed: request.seed,
        frequency_penalty: request.frequency_penalty,
        presence_penalty: request.presence_penalty,
        logit_bias: &request.logit_bias,
        reasoning_effort: request.reasoning.map(effort),
        tools: request
            .tools
            .iter()
            .map(|t| wire::Tool {
                kind: "function",
                function: wire::Function {
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                    strict: t.strict,
                },
            })
            .collect(),
        tool_choice: request.tool_choice.as_ref().map(tool_choice),
        response_format: request.response_format.as_ref().map(response_format),
        stream,
        stream_options: stream.then_some(wire::StreamOptions { include_usage: true }),
    };
    Ok(outbound::post_json(uri, headers, &body)?)
}

fn message(m: &Message) -> wire::Message<'_> {
    // An assistant turn that only calls tools has `content: null`, as OpenAI writes it.
    let content = if m.images.is_empty() {
        (!m.content.is_empty() || m.tool_calls.is_empty()).then_some(wire::Content::Text(&m.content))
    } else {
        let images = m.images.iter().map(|image| wire::Part::ImageUrl {
            image_url: wire::ImageUrl { url: image.source.to_url(), detail: image.detail.as_deref() },
        });
        let text = (!m.content.is_empty()).then_some(wire::Part::Text { text: &m.content });
        Some(wire::Content::Parts(images.chain(text).collect()))
    };
    wire::Message {
        role: m.role.as_str(),
        content,
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| wire::ToolCall {
                id: &c.id,
                kind: "function",
                function: wire::CallFunction { name: &c.name, arguments: &c.arguments },
            })
            .collect(),
        tool_call_id: m.tool_call_id.as_deref().filter(|_| m.role == Role::Tool),
    }
}

fn tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => Value::from("auto"),
        ToolChoice::None => Value::from("none"),
        ToolChoice::Required => Value::from("required"),
        ToolChoice::Function(name) => serde_json::json!({"type": "function", "function": {"name": name}}),
    }
}

fn response_format(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::Text => serde_json::json!({"type": "text"}),
        ResponseFormat::JsonObject => serde_json::json!({"type": "json_object"}),
        ResponseFormat::JsonSchema { name, schema, strict } => serde_json::json!({
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": strict},
        }),
    }
}

/// OpenAI takes an effort level, not a budget.
fn effort(reasoning: Reasoning) -> &'static str {
    Effort::from_budget(reasoning.budget_tokens).as_str()
}

pub(super) fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let completion: wire::Completion = conventions::parse_json(body)?;
    if let Some(error) = &completion.error {
        let message = error_text(error).unwrap_or_default();
        return Err(ProviderError::Malformed(format!("error object in a success response: {message}")));
    }
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::Malformed("no choices in chat.completion".to_owned()))?;
    let message = choice.message.ok_or_else(|| ProviderError::Malformed("choice without a message".to_owned()))?;
    let thinking = message.reasoning_text().map(str::to_owned);
    let tool_calls: Vec<ToolCall> = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, call)| {
            let function = call.function.unwrap_or_default();
            // Some compatible servers leave the id out; the caller still needs one to answer.
            let id = call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_{i}"));
            ToolCall::new(id, function.name.unwrap_or_default(), function.arguments.unwrap_or_default())
        })
        .collect();
    // A refusal is the model's answer to show, in place of content.
    let text = message.content.or(message.refusal).unwrap_or_default();
    let mut finish = finish_reason(choice.finish_reason.as_deref().unwrap_or("unknown"));
    // Some compatible servers (Ollama) say `stop` although the answer is tool calls.
    if !tool_calls.is_empty() && finish == FinishReason::Stop {
        finish = FinishReason::ToolCalls;
    }
    Ok(ChatResponse {
        text,
        thinking,
        thinking_signature: None,
        model: completion.model,
        finish_reason: finish,
        usage: completion.usage.map(usage).unwrap_or_default(),
        tool_calls,
    })
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// `completion_tokens` already includes the reasoning tokens that the details break out.
fn usage(usage: wire::Usage) -> Usage {
    Usage {
        input_tokens: usage.prompt_tokens.unwrap_or(0),
        output_tokens: usage.completion_tokens.unwrap_or(0),
        reasoning_tokens: usage.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        cached_tokens: usage.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
    }
}

pub(super) fn error_message(body: &[u8]) -> Option<String> {
    let envelope: wire::ErrorEnvelope = serde_json::from_slice(body).ok()?;
    match &envelope.error {
        Some(error) => error_text(error),
        None => envelope.message.filter(|m| !m.is_empty()).map(|m| conventions::describe(envelope.kind.as_deref(), &m)),
    }
}

/// The text of an `error` member: an object with `message` (and `code` or `type`), or a string.
fn error_text(error: &Value) -> Option<String> {
    match error {
        Value::String(message) => Some(message.clone()),
        Value::Object(map) => {
            let field = |name: &str| map.get(name).and_then(Value::as_str);
            let message = field("message").unwrap_or("");
            let kind = field("code").or(field("type"));
            let text = conventions::describe(kind, message);
            (!text.is_empty()).then_some(text)
        }
        _ => None,
    }
}

/// Decoding state for one OpenAI stream.
#[derive(Debug, Default)]
pub struct StreamState {
    model_sent: bool,
    done: bool,
}

impl StreamState {
    pub fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, ProviderError> {
        let data = event.data.trim();
        if self.done || data.is_empty() {
            return Ok(Vec::new());
        }
        if data == "[DONE]" {
            self.done = true;
            return Ok(vec![StreamEvent::Done]);
        }
        let chunk: wire::Completion = conventions::parse_json(data.as_bytes())?;
        if let Some(error) = &chunk.error {
            let message = error_text(error).unwrap_or_else(|| "unknown error".to_owned());
            return Err(ProviderError::StreamError { message });
        }
        let mut out = Vec::new();
        if !self.model_sent && !chunk.model.is_empty() {
            self.model_sent = true;
            out.push(StreamEvent::Model(chunk.model));
        }
        if let Some(choice) = chunk.choices.into_iter().next() {
            let delta = choice.delta.unwrap_or_default();
            if let Some(thinking) = delta.reasoning_text() {
                out.push(StreamEvent::Thinking(thinking.to_owned()));
            }
            if let Some(text) = delta.content.or(delta.refusal).filter(|t| !t.is_empty()) {
                out.push(StreamEvent::Delta(text));
            }
            for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let function = call.function.unwrap_or_default();
                out.push(StreamEvent::ToolCall(ToolCallPiece {
                    index: call.index.unwrap_or(position),
                    id: call.id.filter(|id| !id.is_empty()),
                    name: function.name.filter(|n| !n.is_empty()),
                    arguments: function.arguments.unwrap_or_default(),
                    signature: None,
                }));
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                out.push(StreamEvent::Finish(finish_reason(&reason)));
            }
        }
        if let Some(u) = chunk.usage {
            out.push(StreamEvent::Usage(usage(u)));
        }
        Ok(out)
    }

    pub fn finish(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.done {
            Ok(Vec::new())
        } else {
            Err(ProviderError::Malformed("stream ended before [DONE]".to_owned()))
        }
    }
}
