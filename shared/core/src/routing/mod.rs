//! Routing: which mode should serve a prompt, and on which tier.
//!
//! `"mode": "auto"` asks a [`Router`] for a [`RoutingDecision`]: the mode (chat, knowledge,
//! search, code, thinking, research), the tier (System 1: one fast model call; System 2: the
//! agent runtime) and a complexity score in `[0, 1]` with the reasons behind it. Two routers
//! live here: the [`LearnedRouter`](learned::LearnedRouter) (the default: linear models over
//! [`features`], weights trained by `tools/router-train` from `tests/routing`) and the
//! [`ComplexityAnalyzer`], the lexicon: a deterministic single pass over the prompt with
//! configurable weights ([`AnalyzerConfig`]), whose signals are also the learned router's dense
//! features. Users may plug in their own [`Router`].
//!
//! Pure logic: no I/O, no allocation per token, linear in the text. The files: `analyzer`
//! (the lexicon's configuration and decision), `scan` (its pass), `lexicon` (keyword tables),
//! `index` (their lookup structures), `features` and `learned` (the learned router),
//! `learned_weights` (generated). `tests/routing/prompts.jsonl` is the labelled prompt set;
//! `cargo run --release -p router-train -- report` measures every router on held-out data.

mod analyzer;
pub mod choice;
pub mod experiments;
pub mod features;
mod index;
pub mod learned;
#[rustfmt::skip]
mod learned_weights;
mod lexicon;
mod scan;

pub use analyzer::{AnalyzerConfig, ComplexityAnalyzer, ConfigError, ModeWeights};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::{Message, Role};

/// A processing mode: one function of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Chat,
    Knowledge,
    Search,
    Code,
    Thinking,
    Research,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 6] = [Mode::Chat, Mode::Knowledge, Mode::Search, Mode::Code, Mode::Thinking, Mode::Research];

    /// The name used on the wire and in function names.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Knowledge => "knowledge",
            Mode::Search => "search",
            Mode::Code => "code",
            Mode::Thinking => "thinking",
            Mode::Research => "research",
        }
    }

    /// Parses a mode name, ignoring ASCII case and surrounding whitespace. `"auto"` is not a
    /// mode: it is the caller's request to route.
    pub fn parse(name: &str) -> Option<Mode> {
        let name = name.trim();
        Mode::ALL.into_iter().find(|mode| mode.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`Mode::from_str`]: the name is not one of the six modes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode `{0}` (expected chat, knowledge, search, code, thinking or research)")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Mode::parse(name).ok_or_else(|| UnknownMode(name.to_owned()))
    }
}

/// Where a request runs: one fast model call, or the agent runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tier {
    /// One fast model call; cacheable.
    #[serde(rename = "system1")]
    System1,
    /// The agent runtime: strong model, multi-step, tools.
    #[serde(rename = "system2")]
    System2,
}

impl Tier {
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::System1 => "system1",
            Tier::System2 => "system2",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a router looks at: the text to route (the last user message) and how long the
/// conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInput<'a> {
    pub text: &'a str,
    /// Messages in the conversation, this one included (at least 1 for a single prompt).
    pub message_count: usize,
}

impl<'a> RouteInput<'a> {
    /// A single prompt: a conversation of one message.
    pub const fn new(text: &'a str) -> Self {
        RouteInput { text, message_count: 1 }
    }

    /// The last user message of a conversation (empty if there is none) and its length.
    pub fn from_messages(messages: &'a [Message]) -> Self {
        let text = messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
            .map_or("", |message| message.content.as_str());
        RouteInput { text, message_count: messages.len() }
    }
}

/// An explainable routing decision, as `/v1/route` and `"mode": "auto"` report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingDecision {
    pub mode: Mode,
    pub tier: Tier,
    /// Complexity in `[0, 1]`; the tier is System 2 when it reaches the threshold.
    pub score: f64,
    /// Human-readable reasons, each naming its cue (``code cue: `python` ``).
    pub reasons: Vec<String>,
}

/// A routing strategy. The platform's default is [`ComplexityAnalyzer`]; any type that
/// implements this trait can replace it.
pub trait Router {
    /// Decides the mode and tier of one input. Must not panic.
    fn route(&self, input: &RouteInput<'_>) -> RoutingDecision;

    /// The complexity score alone (what a weak/strong evaluation sweeps a threshold over).
    /// Routers that can compute it without building reasons should override this.
    fn score(&self, input: &RouteInput<'_>) -> f64 {
        self.route(input).score
    }
}

impl<R: Router + ?Sized> Router for &R {
    fn route(&self, input: &RouteInput<'_>) -> RoutingDecision {
        (**self).route(input)
    }

    fn score(&self, input: &RouteInput<'_>) -> f64 {
        (**self).score(input)
    }
}

impl<R: Router + ?Sized> Router for Box<R> {
    fn route(&self, input: &RouteInput<'_>) -> RoutingDecision {
        (**self).route(input)
    }

    fn score(&self, input: &RouteInput<'_>) -> f64 {
        (**self).score(input)
    }
}
