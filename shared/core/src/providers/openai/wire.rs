//! OpenAI chat-completions wire types: only the fields the platform sends or reads. Every
//! read field is optional or defaulted so that servers which add or omit fields still parse.

use serde::{Deserialize, Serialize};

use super::super::common::lenient_string;

/// The `POST /chat/completions` body.
#[derive(Debug, Serialize)]
pub(super) struct Request<'a> {
    pub model: &'a str,
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
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
    pub reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Serialize)]
pub(super) struct Message<'a> {
    pub role: &'static str,
    pub content: &'a str,
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
}

impl ChoiceMessage {
    /// The reasoning text under whichever name the server used.
    pub fn reasoning_text(&self) -> Option<&str> {
        self.reasoning_content
            .as_deref()
            .or(self.reasoning.as_deref())
            .filter(|t| !t.is_empty())
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
