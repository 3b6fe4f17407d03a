//! Google Gemini `generateContent`.
//!
//! Request: `POST {base}/v1beta/models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse` to stream. The key goes in the `x-goog-api-key` header,
//! never in the URL (`?key=` also works, but URLs end up in logs). Roles are `user` / `model`;
//! system messages become `systemInstruction`. Gemini counts thinking against
//! `maxOutputTokens`, so with reasoning on the budget is added to the caller's limit.
//!
//! Stream: every `data:` is a whole `GenerateContentResponse` holding the next piece. There is
//! no terminal event: the stream is complete when a candidate has carried a `finishReason`.

mod wire;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use http::header::HeaderName;

use super::common;
use super::{ProviderConfig, ProviderError, SseEvent};
use crate::model::{ChatRequest, ChatResponse, FinishReason, Role, StreamEvent, Usage};

pub(super) fn build_request(
    config: &ProviderConfig,
    request: &ChatRequest,
    stream: bool,
) -> Result<http::Request<Bytes>, ProviderError> {
    let model = model_path(common::model(config, request)?)?;
    let path = if stream {
        format!("v1beta/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("v1beta/{model}:generateContent")
    };
    let uri = common::endpoint(&config.base_url, &path)?;
    let key = common::required_key(config)?;
    let headers = vec![(
        HeaderName::from_static("x-goog-api-key"),
        common::secret(key)?,
    )];

    let budget = request.reasoning.map(|r| r.budget_tokens);
    let generation = wire::GenerationConfig {
        temperature: request.temperature,
        top_p: request.top_p,
        max_output_tokens: common::output_limit(request.max_tokens, budget),
        stop_sequences: &request.stop,
        seed: request.seed.map(seed),
        thinking_config: budget.map(|thinking_budget| wire::ThinkingConfig {
            thinking_budget,
            include_thoughts: true,
        }),
    };
    let system: Vec<wire::Part> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| wire::Part { text: &m.content })
        .collect();
    let body = wire::Request {
        contents: contents(request),
        system_instruction: (!system.is_empty()).then_some(wire::Content {
            role: None,
            parts: system,
        }),
        generation_config: (!generation.is_empty()).then_some(generation),
    };
    common::post_json(uri, headers, &body)
}

/// `models/{id}` (or a `tunedModels/{id}` as given), refusing anything that would change the
/// URL's shape.
pub(super) fn model_path(model: &str) -> Result<String, ProviderError> {
    let (collection, id) = match model.split_once('/') {
        None => ("models", model),
        Some((collection @ ("models" | "tunedModels"), id)) => (collection, id),
        Some(_) => ("", ""),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if id.is_empty() || !id.chars().all(valid) {
        return Err(ProviderError::Config(format!(
            "model name {model:?} cannot be used in a url"
        )));
    }
    Ok(format!("{collection}/{id}"))
}

/// Gemini's seed is an int32: larger seeds are folded into its range, deterministically.
fn seed(seed: u64) -> i32 {
    i32::try_from(seed & 0x7fff_ffff).unwrap_or(i32::MAX)
}

/// The conversation without system messages; consecutive messages of one role become one
/// content with several parts, so turns alternate.
fn contents(request: &ChatRequest) -> Vec<wire::Content<'_>> {
    let mut contents: Vec<wire::Content> = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::System => continue,
            Role::User => "user",
            Role::Assistant => "model",
        };
        let part = wire::Part {
            text: &message.content,
        };
        match contents.last_mut() {
            Some(last) if last.role == Some(role) => last.parts.push(part),
            _ => contents.push(wire::Content {
                role: Some(role),
                parts: vec![part],
            }),
        }
    }
    contents
}

pub(super) fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let response: wire::Response = common::parse_json(body)?;
    if let Some(error) = &response.error {
        let text = common::describe(error.status.as_deref(), &error.message);
        return Err(ProviderError::Malformed(format!(
            "error object in a success response: {text}"
        )));
    }
    let usage = response.usage_metadata.map(usage).unwrap_or_default();
    let Some(candidate) = response.candidates.into_iter().next() else {
        // No candidate at all: the prompt itself was blocked, or the body is not a response.
        return match response.prompt_feedback.and_then(|f| f.block_reason) {
            Some(_) => Ok(ChatResponse {
                text: String::new(),
                thinking: None,
                model: response.model_version,
                finish_reason: FinishReason::ContentFilter,
                usage,
            }),
            None => Err(ProviderError::Malformed(
                "no candidates in response".to_owned(),
            )),
        };
    };
    let mut text = String::new();
    let mut thinking: Option<String> = None;
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        match (part.text, part.thought) {
            (Some(t), true) => thinking.get_or_insert_default().push_str(&t),
            (Some(t), false) => text.push_str(&t),
            (None, _) => {}
        }
    }
    Ok(ChatResponse {
        text,
        thinking,
        model: response.model_version,
        finish_reason: finish_reason(candidate.finish_reason.as_deref().unwrap_or("unknown")),
        usage,
    })
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Thought tokens are output the model generated; Gemini reports them apart from candidates.
fn usage(usage: wire::UsageMetadata) -> Usage {
    let thoughts = usage.thoughts_token_count.unwrap_or(0);
    Usage {
        input_tokens: usage.prompt_token_count.unwrap_or(0),
        output_tokens: usage.candidates_token_count.unwrap_or(0).saturating_add(thoughts),
        reasoning_tokens: thoughts,
    }
}

pub(super) fn error_message(body: &[u8]) -> Option<String> {
    let envelope = match serde_json::from_slice(body).ok()? {
        wire::ErrorBody::One(envelope) => envelope,
        wire::ErrorBody::Many(list) => list.into_iter().next()?,
    };
    let text = common::describe(envelope.error.status.as_deref(), &envelope.error.message);
    (!text.is_empty()).then_some(text)
}

/// Decoding state for one Gemini stream.
#[derive(Debug, Default)]
pub struct StreamState {
    model_sent: bool,
    finish_seen: bool,
    done: bool,
}

impl StreamState {
    pub fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let chunk: wire::Response = common::parse_json(data.as_bytes())?;
        if let Some(error) = chunk.error {
            let message = common::describe(error.status.as_deref(), &error.message);
            return Err(ProviderError::StreamError { message });
        }
        let mut out = Vec::new();
        if !self.model_sent && !chunk.model_version.is_empty() {
            self.model_sent = true;
            out.push(StreamEvent::Model(chunk.model_version));
        }
        let mut finish = None;
        match chunk.candidates.into_iter().next() {
            Some(candidate) => {
                for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                    match (part.text, part.thought) {
                        (Some(t), true) if !t.is_empty() => out.push(StreamEvent::Thinking(t)),
                        (Some(t), false) if !t.is_empty() => out.push(StreamEvent::Delta(t)),
                        _ => {}
                    }
                }
                finish = candidate
                    .finish_reason
                    .filter(|r| !r.is_empty())
                    .map(|r| finish_reason(&r));
            }
            None if chunk.prompt_feedback.and_then(|f| f.block_reason).is_some() => {
                finish = Some(FinishReason::ContentFilter);
            }
            None => {}
        }
        if let Some(reason) = finish {
            self.finish_seen = true;
            out.push(StreamEvent::Finish(reason));
        }
        let usage = chunk.usage_metadata.map(usage).unwrap_or_default();
        if usage != Usage::default() {
            out.push(StreamEvent::Usage(usage));
        }
        Ok(out)
    }

    pub fn finish(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.done {
            return Ok(Vec::new());
        }
        if !self.finish_seen {
            return Err(ProviderError::Malformed(
                "stream ended before finishReason".to_owned(),
            ));
        }
        self.done = true;
        Ok(vec![StreamEvent::Done])
    }
}
