//! Anthropic Messages.
//!
//! Request: `POST {base}/v1/messages` with `x-api-key` and `anthropic-version: 2023-06-01`.
//! System messages go to the top-level `system`; the rest must alternate user / assistant, so
//! consecutive messages of one role are merged. `max_tokens` is required: the caller's limit
//! (1024 when none) plus the thinking budget when extended thinking is on, because thinking
//! counts against it. Thinking does not accept a changed `temperature` and allows `top_p`
//! only from 0.95, so those are left out rather than have the request refused.
//!
//! Stream: typed events (`message_start`, `content_block_*`, `message_delta`,
//! `message_stop`, `ping`, `error`); input tokens arrive at the start, output tokens at the end.
//!
//! Tools: `tools` of `{name, description, input_schema}` and `tool_choice` (`auto`, `any`,
//! `tool`, `none`). An assistant turn's calls become `tool_use` blocks (the call's JSON text
//! parsed into the `input` object); tool results become `tool_result` blocks of a user turn,
//! consecutive results in one turn and before any text, as Anthropic requires. Answers' and
//! streams' `tool_use` blocks become tool calls numbered in call order; a streamed call's input
//! arrives as `input_json_delta` pieces.
//!
//! `response_format`: Anthropic's Messages API has no JSON mode, so the format is asked for in
//! the system prompt (the JSON Schema itself when one is given). The answer is not checked
//! against the schema; OpenAI and Gemini enforce it, Anthropic is only asked.

mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tool_tests;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

use super::conventions;
use super::{ProviderConfig, ProviderError, SseEvent};
use crate::model::{
    ChatRequest, ChatResponse, FinishReason, Image, ImageSource, Role, StreamEvent, ThinkingBlock, ToolCall,
    ToolCallPiece, ToolChoice, Usage,
};
use crate::outbound;

/// The API version this module's wire format is written against.
const API_VERSION: &str = "2023-06-01";
/// Anthropic refuses thinking budgets below this.
const MIN_THINKING_BUDGET: u32 = 1024;
/// The lowest `top_p` Anthropic accepts together with thinking.
const MIN_TOP_P_WITH_THINKING: f32 = 0.95;

pub(super) fn build_request(
    config: &ProviderConfig,
    request: &ChatRequest,
    stream: bool,
) -> Result<http::Request<Bytes>, ProviderError> {
    let uri = outbound::endpoint(&config.base_url, "v1/messages")?;
    let model = conventions::model(config, request)?;
    let key = conventions::required_key(config)?;
    let headers = vec![
        (HeaderName::from_static("x-api-key"), outbound::secret(key)?),
        (HeaderName::from_static("anthropic-version"), HeaderValue::from_static(API_VERSION)),
    ];

    let budget = request.reasoning.map(|r| r.budget_tokens.max(MIN_THINKING_BUDGET));
    let answer = request.max_tokens.unwrap_or(conventions::DEFAULT_MAX_TOKENS);
    let max_tokens = conventions::output_limit(Some(answer), budget).unwrap_or(answer);
    let thinking = budget.is_some();
    let body = wire::Request {
        model,
        max_tokens,
        system: system(request),
        messages: alternating(request, thinking)?,
        temperature: request.temperature.filter(|_| !thinking),
        top_p: request.top_p.filter(|p| !thinking || *p >= MIN_TOP_P_WITH_THINKING),
        // Thinking refuses a changed `top_k`.
        top_k: request.top_k.filter(|_| !thinking),
        stop_sequences: &request.stop,
        stream,
        thinking: budget.map(|budget_tokens| wire::Thinking { kind: "enabled", budget_tokens }),
        tools: request
            .tools
            .iter()
            .map(|t| wire::Tool {
                name: &t.name,
                description: &t.description,
                input_schema: &t.parameters,
                strict: t.strict,
            })
            .collect(),
        // Anthropic refuses a `tool_choice` without tools.
        tool_choice: request.tool_choice.as_ref().filter(|_| !request.tools.is_empty()).map(tool_choice),
    };
    Ok(outbound::post_json(uri, headers, &body)?)
}

/// Every system message, in order, as one top-level prompt, then the JSON instruction when a
/// `response_format` asks for JSON.
fn system(request: &ChatRequest) -> Option<String> {
    let mut parts: Vec<&str> =
        request.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
    let instruction = conventions::json_instruction(request.response_format.as_ref());
    parts.extend(instruction.as_deref());
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

fn tool_choice(choice: &ToolChoice) -> serde_json::Value {
    match choice {
        ToolChoice::Auto => serde_json::json!({"type": "auto"}),
        ToolChoice::None => serde_json::json!({"type": "none"}),
        ToolChoice::Required => serde_json::json!({"type": "any"}),
        ToolChoice::Function(name) => serde_json::json!({"type": "tool", "name": name}),
    }
}

/// The conversation without system messages, consecutive messages of one role merged (tool
/// results are user turns).
fn alternating(request: &ChatRequest, thinking_on: bool) -> Result<Vec<wire::Message<'_>>, ProviderError> {
    let mut turns: Vec<(&'static str, Vec<wire::OutBlock>)> = Vec::new();
    for message in &request.messages {
        let text = wire::OutBlock::Text { text: &message.content };
        let (role, blocks) = match message.role {
            Role::System => continue,
            Role::User => {
                let mut blocks = images(&message.images)?;
                blocks.push(text);
                ("user", blocks)
            }
            Role::Assistant => {
                let mut blocks = Vec::with_capacity(message.tool_calls.len().saturating_add(1));
                // With thinking on, a turn's reasoning goes back first and unchanged.
                if thinking_on {
                    blocks.extend(message.thinking.iter().map(|block| match block {
                        ThinkingBlock::Thinking { thinking, signature } => {
                            wire::OutBlock::Thinking { thinking, signature }
                        }
                        ThinkingBlock::RedactedThinking { data } => wire::OutBlock::RedactedThinking { data },
                    }));
                }
                if !message.content.is_empty() || message.tool_calls.is_empty() {
                    blocks.push(text);
                }
                for call in &message.tool_calls {
                    let input = conventions::arguments_object(call)?;
                    blocks.push(wire::OutBlock::ToolUse { id: &call.id, name: &call.name, input });
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                let tool_use_id = message.tool_call_id.as_deref().unwrap_or_default();
                ("user", vec![wire::OutBlock::ToolResult { tool_use_id, content: &message.content }])
            }
        };
        match turns.last_mut() {
            Some((last, merged)) if *last == role => merged.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    Ok(turns.into_iter().map(|(role, blocks)| wire::Message { role, content: content(blocks) }).collect())
}

/// The media types Anthropic reads.
const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// A message's images as blocks; one Anthropic cannot read is an invalid request for it.
fn images(images: &[Image]) -> Result<Vec<wire::OutBlock<'_>>, ProviderError> {
    images
        .iter()
        .map(|image| {
            let source = match &image.source {
                ImageSource::Url { url } => wire::ImageSource::Url { url },
                ImageSource::Base64 { media_type, data } if IMAGE_TYPES.contains(&media_type.as_str()) => {
                    wire::ImageSource::Base64 { media_type, data }
                }
                ImageSource::Base64 { media_type, .. } => {
                    return Err(ProviderError::InvalidRequest(format!(
                        "Anthropic reads images of type {}, not {media_type}",
                        IMAGE_TYPES.join(", ")
                    )))
                }
            };
            Ok(wire::OutBlock::Image { source })
        })
        .collect()
}

/// Text alone stays a string (several texts joined by a blank line); with tool blocks, the
/// blocks, tool results first and empty texts left out (Anthropic refuses both otherwise).
fn content(blocks: Vec<wire::OutBlock<'_>>) -> wire::Content<'_> {
    let is_text = |b: &wire::OutBlock| matches!(b, wire::OutBlock::Text { .. });
    if blocks.iter().all(is_text) {
        let texts: Vec<&str> = blocks
            .iter()
            .filter_map(|b| match b {
                wire::OutBlock::Text { text } => Some(*text),
                _ => None,
            })
            .collect();
        return wire::Content::Text(texts.join("\n\n"));
    }
    let (mut results, rest): (Vec<_>, Vec<_>) =
        blocks.into_iter().partition(|b| matches!(b, wire::OutBlock::ToolResult { .. }));
    results.extend(rest.into_iter().filter(|b| !matches!(b, wire::OutBlock::Text { text } if text.is_empty())));
    wire::Content::Blocks(results)
}

pub(super) fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let message: wire::MessageResponse = conventions::parse_json(body)?;
    if let Some(error) = &message.error {
        let text = conventions::describe(error.kind.as_deref(), &error.message);
        return Err(ProviderError::Malformed(format!("error object in a success response: {text}")));
    }
    if message.kind != "message" {
        return Err(ProviderError::Malformed(format!("expected a message, got type {:?}", message.kind)));
    }
    let blocks = message.content.ok_or_else(|| ProviderError::Malformed("message without content".to_owned()))?;
    let mut text = String::new();
    let mut thinking: Option<String> = None;
    let mut thinking_signature = None;
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block {
            wire::Block::Text { text: t } => text.push_str(&t),
            wire::Block::Thinking { thinking: t, signature } => {
                thinking.get_or_insert_default().push_str(&t);
                thinking_signature = signature.or(thinking_signature);
            }
            wire::Block::ToolUse { id, name, input } => {
                // `input` is an object; its JSON text is what the platform hands on.
                let arguments = if input.is_null() { "{}".to_owned() } else { input.to_string() };
                tool_calls.push(ToolCall::new(id, name, arguments));
            }
            wire::Block::Other => {}
        }
    }
    Ok(ChatResponse {
        text,
        thinking,
        thinking_signature,
        model: message.model,
        finish_reason: finish_reason(message.stop_reason.as_deref().unwrap_or("unknown")),
        usage: message.usage.map(usage).unwrap_or_default(),
        tool_calls,
    })
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Input counts cached prompt tokens too (Anthropic reports them apart), so that input means
/// the same thing for every vendor: the whole prompt processed.
fn usage(usage: wire::WireUsage) -> Usage {
    let input = [usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens]
        .into_iter()
        .flatten()
        .fold(0u64, u64::saturating_add);
    // Thinking tokens are in `output_tokens`; Anthropic does not count them apart.
    Usage {
        input_tokens: input,
        output_tokens: usage.output_tokens.unwrap_or(0),
        reasoning_tokens: 0,
        cached_tokens: usage.cache_read_input_tokens.unwrap_or(0),
    }
}

pub(super) fn error_message(body: &[u8]) -> Option<String> {
    let envelope: wire::ErrorEnvelope = serde_json::from_slice(body).ok()?;
    let text = conventions::describe(envelope.error.kind.as_deref(), &envelope.error.message);
    (!text.is_empty()).then_some(text)
}

/// Decoding state for one Anthropic stream.
#[derive(Debug, Default)]
pub struct StreamState {
    done: bool,
    /// Open and finished `tool_use` blocks: content-block index, and whether any input piece
    /// came. The position in this list is the call's index.
    tool_blocks: Vec<(usize, bool)>,
}

impl StreamState {
    pub fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.done || event.data.trim().is_empty() {
            return Ok(Vec::new());
        }
        let parsed: wire::Event = match serde_json::from_str(&event.data) {
            Ok(parsed) => parsed,
            // The event name alone says it is an error, even if its data is not readable.
            Err(_) if event.event == "error" => {
                return Err(ProviderError::StreamError { message: "unreadable error event".to_owned() })
            }
            Err(e) => return Err(ProviderError::Malformed(format!("invalid json: {e}"))),
        };
        Ok(match parsed {
            wire::Event::MessageStart { message } => {
                let mut out = Vec::new();
                if !message.model.is_empty() {
                    out.push(StreamEvent::Model(message.model));
                }
                if let Some(u) = message.usage {
                    out.push(StreamEvent::Usage(usage(u)));
                }
                out
            }
            wire::Event::ContentBlockStart { index, content_block } => match content_block {
                wire::StartBlock::ToolUse { id, name } => {
                    let call = self.tool_blocks.len();
                    self.tool_blocks.push((index, false));
                    vec![StreamEvent::ToolCall(ToolCallPiece {
                        index: call,
                        id: Some(id),
                        name: Some(name),
                        arguments: String::new(),
                        signature: None,
                    })]
                }
                wire::StartBlock::Other => Vec::new(),
            },
            wire::Event::ContentBlockDelta { index, delta } => match delta {
                wire::Delta::Text { text } if !text.is_empty() => vec![StreamEvent::Delta(text)],
                wire::Delta::Thinking { thinking } if !thinking.is_empty() => {
                    vec![StreamEvent::Thinking(thinking)]
                }
                wire::Delta::Signature { signature } => vec![StreamEvent::ThinkingSignature(signature)],
                wire::Delta::InputJson { partial_json } if !partial_json.is_empty() => {
                    // Input of any other block (a server tool's) is not a call for the caller.
                    let Some(call) = self.tool_blocks.iter().position(|(block, _)| *block == index) else {
                        return Ok(Vec::new());
                    };
                    if let Some(entry) = self.tool_blocks.get_mut(call) {
                        entry.1 = true;
                    }
                    vec![StreamEvent::ToolCall(ToolCallPiece {
                        index: call,
                        id: None,
                        name: None,
                        arguments: partial_json,
                        signature: None,
                    })]
                }
                _ => Vec::new(),
            },
            // A call without input streams no piece; its arguments are then `{}`, as in a
            // whole answer.
            wire::Event::ContentBlockStop { index } => {
                match self.tool_blocks.iter().position(|(block, pieces)| *block == index && !pieces) {
                    Some(call) => {
                        if let Some(entry) = self.tool_blocks.get_mut(call) {
                            entry.1 = true;
                        }
                        vec![StreamEvent::ToolCall(ToolCallPiece {
                            index: call,
                            id: None,
                            name: None,
                            arguments: "{}".to_owned(),
                            signature: None,
                        })]
                    }
                    None => Vec::new(),
                }
            }
            wire::Event::MessageDelta { delta, usage: u } => {
                let mut out = Vec::new();
                if let Some(reason) = delta.stop_reason {
                    out.push(StreamEvent::Finish(finish_reason(&reason)));
                }
                if let Some(u) = u {
                    out.push(StreamEvent::Usage(usage(u)));
                }
                out
            }
            wire::Event::MessageStop => {
                self.done = true;
                vec![StreamEvent::Done]
            }
            wire::Event::Error { error } => {
                let message = conventions::describe(error.kind.as_deref(), &error.message);
                return Err(ProviderError::StreamError { message });
            }
            wire::Event::Other => Vec::new(),
        })
    }

    pub fn finish(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        if self.done {
            Ok(Vec::new())
        } else {
            Err(ProviderError::Malformed("stream ended before message_stop".to_owned()))
        }
    }
}
