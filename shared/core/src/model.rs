//! The platform's own model of a chat exchange: what every provider translates to and from.
//!
//! These types are the contract between the handlers, the executor and the providers. They
//! are deliberately smaller than any vendor's wire format: only what the platform exposes.

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// How much deliberate reasoning to ask a provider for (thinking mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasoning {
    /// Token budget for the reasoning; providers with levels instead of budgets map it.
    pub budget_tokens: u32,
}

/// A provider-independent chat request. Validated before it gets here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// Overrides the configured model of the first provider in the chain.
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    pub reasoning: Option<Reasoning>,
}

/// Tokens counted by the provider that answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Streams report usage piecewise (Anthropic: input at start, output at the end); a later
    /// report of a count replaces an earlier one, a missing (zero) count keeps it.
    pub fn merge(&mut self, later: Usage) {
        if later.input_tokens > 0 {
            self.input_tokens = later.input_tokens;
        }
        if later.output_tokens > 0 {
            self.output_tokens = later.output_tokens;
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ContentFilter,
    ToolCalls,
    Other(String),
}

/// A complete, non-streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    /// Reasoning the provider returned separately from the answer, if any.
    pub thinking: Option<String>,
    /// The model the provider says answered (may be more specific than the one asked for).
    pub model: String,
    pub finish_reason: FinishReason,
    pub usage: Usage,
}

/// One step of a streamed answer, as parsed from a provider event.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of answer text.
    Delta(String),
    /// The next piece of reasoning text.
    Thinking(String),
    /// The model the provider says is answering.
    Model(String),
    /// Token counts so far (merge with [`Usage::merge`]).
    Usage(Usage),
    /// Why the model stopped.
    Finish(FinishReason),
    /// The provider says the answer is complete; nothing follows.
    Done,
}
