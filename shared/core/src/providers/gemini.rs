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
//!
//! Tools: one `functionDeclarations` tool with each function's JSON Schema in
//! `parametersJsonSchema`; `toolConfig.functionCallingConfig` (`AUTO`, `ANY` with
//! `allowedFunctionNames`, `NONE`). A model turn's calls are `functionCall` parts (`args`, the
//! call's JSON text parsed), tool results `functionResponse` parts of a user turn, named after
//! the call they answer. Answers' `functionCall` parts become tool calls, with Gemini's `id`
//! or one made from the response id and the call's position; Gemini says `STOP` after calls,
//! which the platform reports as `ToolCalls`. Streamed calls arrive whole, one piece each.
//! Gemini 3 refuses a replayed call without the `thoughtSignature` it came with: a whole
//! answer's signature is kept on the call; a call without one (made by another vendor, or
//! streamed) gets Google's documented placeholder, which skips the check.
//!
//! `response_format`: `responseMimeType: application/json`, with the schema in
//! `responseJsonSchema` (JSON Schema as is, unlike `responseSchema`).

mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tool_tests;

use bytes::Bytes;
use http::header::HeaderName;

use super::conventions;
use super::{ProviderConfig, ProviderError, SseEvent};
use crate::model::{
    ChatRequest, ChatResponse, FinishReason, Image, ImageSource, ResponseFormat, Role, StreamEvent, ToolCall,
    ToolCallPiece, ToolChoice, Usage,
};
use crate::outbound;

/// The placeholder signature Google documents for calls whose real signature is unknown.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

pub(super) fn build_request(
    config: &ProviderConfig,
    request: &ChatRequest,
    stream: bool,
) -> Result<http::Request<Bytes>, ProviderError> {
    let model = model_path(conventions::model(config, request)?)?;
    let path = if stream {
        format!("v1beta/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("v1beta/{model}:generateContent")
    };
    let uri = outbound::endpoint(&config.base_url, &path)?;
    let key = conventions::required_key(config)?;
    let headers = vec![(HeaderName::from_static("x-goog-api-key"), outbound::secret(key)?)];

    let budget = request.reasoning.map(|r| r.budget_tokens);
    let generation = wire::GenerationConfig {
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        max_output_tokens: conventions::output_limit(request.max_tokens, budget),
        stop_sequences: &request.stop,
        seed: request.seed.map(seed),
        frequency_penalty: request.frequency_penalty,
        presence_penalty: request.presence_penalty,
        thinking_config: budget.map(|thinking_budget| wire::ThinkingConfig { thinking_budget, include_thoughts: true }),
        response_mime_type: match request.response_format {
            Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }) => Some("application/json"),
            Some(ResponseFormat::Text) | None => None,
        },
        response_json_schema: match &request.response_format {
            Some(ResponseFormat::JsonSchema { schema, .. }) => Some(schema),
            _ => None,
        },
    };
    let system: Vec<wire::Part> =
        request.messages.iter().filter(|m| m.role == Role::System).map(|m| wire::Part::text(&m.content)).collect();
    let tools = !request.tools.is_empty();
    let body = wire::Request {
        contents: contents(request)?,
        system_instruction: (!system.is_empty()).then_some(wire::Content { role: None, parts: system }),
        generation_config: (!generation.is_empty()).then_some(generation),
        tools: if tools {
            vec![wire::Tools {
                function_declarations: request
                    .tools
                    .iter()
                    .map(|t| wire::FunctionDeclaration {
                        name: &t.name,
                        description: &t.description,
                        parameters_json_schema: &t.parameters,
                    })
                    .collect(),
            }]
        } else {
            Vec::new()
        },
        tool_config: request.tool_choice.as_ref().filter(|_| tools).map(tool_config),
    };
    Ok(outbound::post_json(uri, headers, &body)?)
}

fn tool_config(choice: &ToolChoice) -> wire::ToolConfig<'_> {
    let (mode, allowed_function_names) = match choice {
        ToolChoice::Auto => ("AUTO", Vec::new()),
        ToolChoice::None => ("NONE", Vec::new()),
        ToolChoice::Required => ("ANY", Vec::new()),
        ToolChoice::Function(name) => ("ANY", vec![name.as_str()]),
    };
    wire::ToolConfig { function_calling_config: wire::FunctionCallingConfig { mode, allowed_function_names } }
}

/// A tool's result as the JSON object `functionResponse.response` must be: the result itself
/// when it is a JSON object, else `{"output": ...}` (Google's key for a function's output).
fn response_object(content: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(content) {
        Ok(object @ serde_json::Value::Object(_)) => object,
        Ok(other) => serde_json::json!({ "output": other }),
        Err(_) => serde_json::json!({ "output": content }),
    }
}

/// The id of the `n`th call of an answer without Gemini's own: the response id (kept to the
/// characters every vendor accepts in an id) and the position, so ids do not repeat across
/// turns.
fn call_id(response_id: &str, n: usize) -> String {
    let clean: String =
        response_id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).take(64).collect();
    if clean.is_empty() {
        format!("call_{n}")
    } else {
        format!("call_{clean}_{n}")
    }
}

/// A call read from a `functionCall` part.
fn tool_call(call: wire::FunctionCallIn, signature: Option<String>, response_id: &str, n: usize) -> ToolCall {
    let id = call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| call_id(response_id, n));
    let arguments = call.args.filter(|a| !a.is_null()).map_or_else(|| "{}".to_owned(), |a| a.to_string());
    ToolCall { signature, ..ToolCall::new(id, call.name, arguments) }
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
        return Err(ProviderError::Config(format!("model name {model:?} cannot be used in a url")));
    }
    Ok(format!("{collection}/{id}"))
}

/// Gemini's seed is an int32: larger seeds are folded into its range, deterministically.
fn seed(seed: u64) -> i32 {
    i32::try_from(seed & 0x7fff_ffff).unwrap_or(i32::MAX)
}

/// An image: inline bytes as `inlineData`, a URL as `fileData` (its type, when the URL tells).
fn image_part(image: &Image) -> wire::Part<'_> {
    match &image.source {
        ImageSource::Base64 { media_type, data } => {
            wire::Part { inline_data: Some(wire::InlineData { mime_type: media_type, data }), ..wire::Part::default() }
        }
        ImageSource::Url { url } => wire::Part {
            file_data: Some(wire::FileData { mime_type: image.source.media_type(), file_uri: url }),
            ..wire::Part::default()
        },
    }
}

/// The conversation without system messages; consecutive messages of one role become one
/// content with several parts, so turns alternate (tool results are user turns).
fn contents(request: &ChatRequest) -> Result<Vec<wire::Content<'_>>, ProviderError> {
    let names = conventions::tool_result_names(request)?;
    let mut contents: Vec<wire::Content> = Vec::new();
    for (message, name) in request.messages.iter().zip(names) {
        let (role, parts) = match message.role {
            Role::System => continue,
            Role::User => {
                let mut parts: Vec<wire::Part> = message.images.iter().map(image_part).collect();
                if !message.content.is_empty() || parts.is_empty() {
                    parts.push(wire::Part::text(&message.content));
                }
                ("user", parts)
            }
            Role::Assistant => ("model", model_parts(message)?),
            Role::Tool => {
                let response = wire::FunctionResponse {
                    id: message.tool_call_id.as_deref().unwrap_or_default(),
                    name: name.unwrap_or_default(),
                    response: response_object(&message.content),
                };
                ("user", vec![wire::Part { function_response: Some(response), ..wire::Part::default() }])
            }
        };
        match contents.last_mut() {
            Some(last) if last.role == Some(role) => last.parts.extend(parts),
            _ => contents.push(wire::Content { role: Some(role), parts }),
        }
    }
    Ok(contents)
}

/// A model turn: its text, then a `functionCall` part per call, each with its signature; when
/// none has one, the first carries the placeholder.
fn model_parts(message: &crate::model::Message) -> Result<Vec<wire::Part<'_>>, ProviderError> {
    let mut parts = Vec::with_capacity(message.tool_calls.len().saturating_add(1));
    if !message.content.is_empty() || message.tool_calls.is_empty() {
        parts.push(wire::Part::text(&message.content));
    }
    let unsigned = message.tool_calls.iter().all(|c| c.signature.is_none());
    for (i, call) in message.tool_calls.iter().enumerate() {
        let function_call =
            wire::FunctionCall { id: &call.id, name: &call.name, args: conventions::arguments_object(call)? };
        let signature = call.signature.as_deref().or((unsigned && i == 0).then_some(SKIP_SIGNATURE));
        parts.push(wire::Part {
            function_call: Some(function_call),
            thought_signature: signature,
            ..wire::Part::default()
        });
    }
    Ok(parts)
}

pub(super) fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let response: wire::Response = conventions::parse_json(body)?;
    if let Some(error) = &response.error {
        let text = conventions::describe(error.status.as_deref(), &error.message);
        return Err(ProviderError::Malformed(format!("error object in a success response: {text}")));
    }
    let usage = response.usage_metadata.map(usage).unwrap_or_default();
    let Some(candidate) = response.candidates.into_iter().next() else {
        // No candidate at all: the prompt itself was blocked, or the body is not a response.
        return match response.prompt_feedback.and_then(|f| f.block_reason) {
            Some(_) => Ok(ChatResponse {
                model: response.model_version,
                finish_reason: FinishReason::ContentFilter,
                usage,
                ..ChatResponse::default()
            }),
            None => Err(ProviderError::Malformed("no candidates in response".to_owned())),
        };
    };
    let mut text = String::new();
    let mut thinking: Option<String> = None;
    let mut tool_calls = Vec::new();
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(call) = part.function_call {
            let n = tool_calls.len();
            tool_calls.push(tool_call(call, part.thought_signature, &response.response_id, n));
            continue;
        }
        match (part.text, part.thought) {
            (Some(t), true) => thinking.get_or_insert_default().push_str(&t),
            (Some(t), false) => text.push_str(&t),
            (None, _) => {}
        }
    }
    let mut finish = finish_reason(candidate.finish_reason.as_deref().unwrap_or("unknown"));
    if !tool_calls.is_empty() && finish == FinishReason::Stop {
        finish = FinishReason::ToolCalls;
    }
    Ok(ChatResponse {
        text,
        thinking,
        thinking_signature: None,
        model: response.model_version,
        finish_reason: finish,
        usage,
        tool_calls,
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
        cached_tokens: usage.cached_content_token_count.unwrap_or(0),
    }
}

pub(super) fn error_message(body: &[u8]) -> Option<String> {
    // `{"error":{...}}`, or that inside a one-element array (how the array-framed stream
    // reports errors). Read as a value first: an untagged enum would cost Wasm size.
    let value = match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        serde_json::Value::Array(list) => list.into_iter().next()?,
        one => one,
    };
    let envelope: wire::ErrorEnvelope = serde_json::from_value(value).ok()?;
    let text = conventions::describe(envelope.error.status.as_deref(), &envelope.error.message);
    (!text.is_empty()).then_some(text)
}

/// Decoding state for one Gemini stream.
#[derive(Debug, Default)]
pub struct StreamState {
    model_sent: bool,
    finish_seen: bool,
    done: bool,
    /// Calls streamed so far: the next call's index.
    calls: usize,
}

impl StreamState {
    pub fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let chunk: wire::Response = conventions::parse_json(data.as_bytes())?;
        if let Some(error) = chunk.error {
            let message = conventions::describe(error.status.as_deref(), &error.message);
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
                    if let Some(call) = part.function_call {
                        // A call streams whole, its signature beside it in the same part.
                        let call = tool_call(call, part.thought_signature, &chunk.response_id, self.calls);
                        out.push(StreamEvent::ToolCall(ToolCallPiece {
                            index: self.calls,
                            id: Some(call.id),
                            name: Some(call.name),
                            arguments: call.arguments,
                            signature: call.signature,
                        }));
                        self.calls = self.calls.saturating_add(1);
                        continue;
                    }
                    match (part.text, part.thought) {
                        (Some(t), true) if !t.is_empty() => out.push(StreamEvent::Thinking(t)),
                        (Some(t), false) if !t.is_empty() => out.push(StreamEvent::Delta(t)),
                        _ => {}
                    }
                }
                finish = candidate.finish_reason.filter(|r| !r.is_empty()).map(|r| match finish_reason(&r) {
                    FinishReason::Stop if self.calls > 0 => FinishReason::ToolCalls,
                    other => other,
                });
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
            return Err(ProviderError::Malformed("stream ended before finishReason".to_owned()));
        }
        self.done = true;
        Ok(vec![StreamEvent::Done])
    }
}
