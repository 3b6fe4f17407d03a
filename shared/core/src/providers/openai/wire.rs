//! OpenAI chat-completions wire types: only the fields the platform sends or reads. Every
//! read field is optional or defaulted so that servers which add or omit fields still parse.

use serde::{Deserialize, Serialize};

use super::super::conventions::lenient_string;

/// The `POST /chat/completions` body.
#[derive(Debug, Serialize)]
pub(super) struct Request<'a> {
    pub model: &'a str,
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Compatible servers only (vLLM, Ollama); OpenAI refuses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// OpenAI-compatible servers only; OpenAI itself takes `max_completion_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub logit_bias: &'a std::collections::BTreeMap<u32, f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

/// A message; `content` is `null` on an assistant message that only calls tools.
#[derive(Debug, Serialize)]
pub(super) struct Message<'a> {
    pub role: &'static str,
    pub content: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
}

/// A message's content: its text, or (with images) a list of parts.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum Content<'a> {
    Text(&'a str),
    Parts(Vec<Part<'a>>),
}

/// `{"type":"image_url","image_url":{"url","detail"}}` or `{"type":"text","text"}`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Part<'a> {
    ImageUrl { image_url: ImageUrl<'a> },
    Text { text: &'a str },
}

#[derive(Debug, Serialize)]
pub(super) struct ImageUrl<'a> {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

/// `{"type":"function","function":{"name","description","parameters"}}`.
#[derive(Debug, Serialize)]
pub(super) struct Tool<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: Function<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct Function<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
    pub parameters: &'a serde_json::Value,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

/// An assistant message's call: `{"id","type":"function","function":{"name","arguments"}}`.
#[derive(Debug, Serialize)]
pub(super) struct ToolCall<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: CallFunction<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct CallFunction<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

#[derive(Debug, Serialize)]
pub(super) struct StreamOptions {
    pub include_usage: bool,
}

/// A `chat.completion` object, or a `chat.completion.chunk` (same envelope; a chunk has
/// `delta` where a completion has `message`). `error` catches a 200 that carries an error.
#[derive(Debug, Deserialize)]
pub(super) struct Completion {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Choice {
    #[serde(default)]
    pub message: Option<ChoiceMessage>,
    #[serde(default)]
    pub delta: Option<ChoiceMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// A choice's `message` (complete) or `delta` (streamed): the same fields.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ChoiceMessage {
    #[serde(default)]
    pub content: Option<String>,
    /// Set instead of `content` when the model refuses.
    #[serde(default)]
    pub refusal: Option<String>,
    /// DeepSeek, vLLM and others put reasoning here.
    #[serde(default, deserialize_with = "lenient_string")]
    pub reasoning_content: Option<String>,
    /// Ollama and OpenRouter name it `reasoning`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub reasoning: Option<String>,
    /// Whole calls in a `message`; pieces (with `index`) in a `delta`.
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallIn>>,
}

/// A call read back: every field optional because a streamed piece carries only some.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ToolCallIn {
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionIn>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct FunctionIn {
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// JSON text on OpenAI; some compatible servers send the object itself.
    #[serde(default, deserialize_with = "json_text")]
    pub arguments: Option<String>,
}

/// A string as is; any other JSON value as its JSON text; `null` as none.
fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

impl ChoiceMessage {
    /// The reasoning text under whichever name the server used.
    pub fn reasoning_text(&self) -> Option<&str> {
        self.reasoning_content.as_deref().or(self.reasoning.as_deref()).filter(|t| !t.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Usage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// Absent on most compatible servers; `null` on some.
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetails>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

/// Error bodies: OpenAI's `{"error":{"message","type","code"}}`, a bare `{"error":"..."}`
/// (some compatible servers), or vLLM's top-level `{"object":"error","message":...}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorEnvelope {
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient_string")]
    pub kind: Option<String>,
}
