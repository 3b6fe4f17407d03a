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
    /// Token budget for the reasoning; providers with levels instead of budgets map it
    /// through [`Effort::from_budget`].
    pub budget_tokens: u32,
}

/// A reasoning level, for the vendors that take one (OpenAI's `reasoning_effort`) and for
/// clients that would rather not pick a budget. This is the one place levels and budgets are
/// mapped to each other: `from_budget(e.budget_tokens()) == e` for every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effort {
    Low,
    Medium,
    High,
}

impl Effort {
    /// The token budget a level stands for. Low is Anthropic's minimum budget.
    pub const fn budget_tokens(self) -> u32 {
        match self {
            Effort::Low => 1_024,
            Effort::Medium => 4_096,
            Effort::High => 16_384,
        }
    }

    /// The level a budget falls in; the boundaries lie halfway (geometrically) between the
    /// levels' budgets.
    pub const fn from_budget(budget_tokens: u32) -> Effort {
        match budget_tokens {
            0..2_048 => Effort::Low,
            2_048..8_192 => Effort::Medium,
            _ => Effort::High,
        }
    }

    /// The name on the wire (`low`, `medium`, `high`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }
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
    /// Everything the model generated, reasoning included (every vendor bills it as output).
    pub output_tokens: u64,
    /// The part of `output_tokens` spent on reasoning, when the provider reports it apart
    /// (OpenAI, Gemini); 0 when it does not (Anthropic counts thinking in output only).
    #[serde(default)]
    pub reasoning_tokens: u64,
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
        if later.reasoning_tokens > 0 {
            self.reasoning_tokens = later.reasoning_tokens;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_effort_maps_to_a_budget_that_maps_back_to_it() {
        for effort in [Effort::Low, Effort::Medium, Effort::High] {
            assert_eq!(Effort::from_budget(effort.budget_tokens()), effort);
        }
        assert_eq!(Effort::from_budget(2_047), Effort::Low);
        assert_eq!(Effort::from_budget(2_048), Effort::Medium);
        assert_eq!(Effort::from_budget(8_191), Effort::Medium);
        assert_eq!(Effort::from_budget(8_192), Effort::High);
        assert_eq!(Effort::from_budget(u32::MAX), Effort::High);
    }

    #[test]
    fn usage_merge_keeps_reasoning_tokens_until_a_later_count_replaces_them() {
        let mut usage = Usage { input_tokens: 3, output_tokens: 0, reasoning_tokens: 0 };
        usage.merge(Usage { input_tokens: 0, output_tokens: 9, reasoning_tokens: 4 });
        usage.merge(Usage { input_tokens: 0, output_tokens: 12, reasoning_tokens: 0 });
        assert_eq!(usage, Usage { input_tokens: 3, output_tokens: 12, reasoning_tokens: 4 });
    }

    #[test]
    fn cached_usage_without_reasoning_tokens_still_reads() {
        let usage: Usage = serde_json::from_str(r#"{"input_tokens":1,"output_tokens":2}"#).unwrap_or_default();
        assert_eq!(usage, Usage { input_tokens: 1, output_tokens: 2, reasoning_tokens: 0 });
    }
}
