//! Providers: pure translations between the platform's model and each vendor's wire format.
//!
//! No I/O happens here. `build_request` makes the `http::Request` the executor sends;
//! `parse_response` reads a complete answer; [`StreamDecoder`] turns the vendor's SSE events
//! into [`StreamEvent`]s; `parse_error` reads an error status. Every function is tested
//! against fixtures in the vendor's documented format. Dispatch is a closed enum: adding a
//! provider is adding a variant and a module.

mod anthropic;
mod conventions;
pub mod embeddings;
#[cfg(test)]
mod fixtures;
mod gemini;
mod openai;

use bytes::Bytes;

use crate::model::{ChatRequest, ChatResponse, StreamEvent};
use crate::outbound::Unbuildable;

/// The wire dialects the platform speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI chat completions.
    OpenAi,
    /// Anthropic messages.
    Anthropic,
    /// Google Gemini generateContent.
    Gemini,
    /// Any OpenAI-compatible server by base URL (Ollama, vLLM, LocalAI): OpenAI's dialect,
    /// key optional.
    Compat,
}

/// One configured provider in the fallback chain.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// The name used in responses, logs and `PROVIDER_ORDER` (`openai`, `anthropic`, ...).
    pub name: String,
    /// `https://api.openai.com/v1` for OpenAI-style providers (ends in `/v1`); host roots for
    /// Anthropic (`https://api.anthropic.com`) and Gemini
    /// (`https://generativelanguage.googleapis.com`). No trailing slash needed.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    /// `model`'s list price, when known (pricing.rs): what makes `cost_usd`.
    pub price: Option<crate::pricing::Price>,
}

impl std::fmt::Debug for ProviderConfig {
    // Keys never reach logs: Debug prints whether one is set, not what it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("model", &self.model)
            .field("price", &self.price)
            .finish()
    }
}

/// One server-sent event as read off the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when the event had none.
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// What a provider said went wrong. Messages are for logs and attempt records, never echoed
/// verbatim to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Exhaustive: the executor and search decide per variant what happens next.
pub enum ProviderError {
    /// The provider answered with an error status.
    #[error("status {status}: {message}")]
    Status { status: u16, message: String },
    /// The provider reported an error inside a stream.
    #[error("error event: {message}")]
    StreamError { message: String },
    /// The body was not in the vendor's documented format.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The request could not be built (for example an invalid base URL).
    #[error("invalid provider configuration: {0}")]
    Config(String),
    /// The conversation cannot be put in this vendor's format (a tool call whose arguments
    /// are not a JSON object, a tool result answering no call). Another provider may take it.
    #[error("request not valid for this provider: {0}")]
    InvalidRequest(String),
}

impl From<Unbuildable> for ProviderError {
    fn from(Unbuildable(message): Unbuildable) -> Self {
        ProviderError::Config(message)
    }
}

/// Builds the HTTP request for `request`, streamed or not, with the vendor's auth headers.
pub fn build_request(
    config: &ProviderConfig,
    request: &ChatRequest,
    stream: bool,
) -> Result<http::Request<Bytes>, ProviderError> {
    match config.kind {
        ProviderKind::OpenAi | ProviderKind::Compat => openai::build_request(config, request, stream),
        ProviderKind::Anthropic => anthropic::build_request(config, request, stream),
        ProviderKind::Gemini => gemini::build_request(config, request, stream),
    }
}

/// Reads a successful (2xx) non-streamed response body.
pub fn parse_response(kind: ProviderKind, body: &[u8]) -> Result<ChatResponse, ProviderError> {
    match kind {
        ProviderKind::OpenAi | ProviderKind::Compat => openai::parse_response(body),
        ProviderKind::Anthropic => anthropic::parse_response(body),
        ProviderKind::Gemini => gemini::parse_response(body),
    }
}

/// Reads an error (non-2xx) response into a [`ProviderError::Status`] with the vendor's
/// message when the body has one.
pub fn parse_error(kind: ProviderKind, status: u16, body: &[u8]) -> ProviderError {
    let message = match kind {
        ProviderKind::OpenAi | ProviderKind::Compat => openai::error_message(body),
        ProviderKind::Anthropic => anthropic::error_message(body),
        ProviderKind::Gemini => gemini::error_message(body),
    };
    ProviderError::Status { status, message: message.unwrap_or_else(|| format!("http status {status}")) }
}

/// Turns one provider's SSE events into [`StreamEvent`]s, keeping whatever state the dialect
/// needs between events.
#[derive(Debug)]
pub enum StreamDecoder {
    OpenAi(openai::StreamState),
    Anthropic(anthropic::StreamState),
    Gemini(gemini::StreamState),
}

impl StreamDecoder {
    pub fn new(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::OpenAi | ProviderKind::Compat => StreamDecoder::OpenAi(Default::default()),
            ProviderKind::Anthropic => StreamDecoder::Anthropic(Default::default()),
            ProviderKind::Gemini => StreamDecoder::Gemini(Default::default()),
        }
    }

    /// Decodes one event. An in-stream error becomes `Err(ProviderError::StreamError)`.
    pub fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamEvent>, ProviderError> {
        match self {
            StreamDecoder::OpenAi(state) => state.decode(event),
            StreamDecoder::Anthropic(state) => state.decode(event),
            StreamDecoder::Gemini(state) => state.decode(event),
        }
    }

    /// Called when the byte stream ended. Dialects without an explicit terminal event (Gemini)
    /// report `Done` here; the others report an error if their terminal event never came.
    pub fn finish(&mut self) -> Result<Vec<StreamEvent>, ProviderError> {
        match self {
            StreamDecoder::OpenAi(state) => state.finish(),
            StreamDecoder::Anthropic(state) => state.finish(),
            StreamDecoder::Gemini(state) => state.finish(),
        }
    }
}
