//! What the feature flags refuse before any work: a mode or a dialect that is off for the
//! caller's tenant answers 403 `feature_disabled`, naming the flag, in the client's dialect.

use opencode_core::flags::{Flag, Flags};
use opencode_core::routing::Mode;

use super::dialect::Dialect;
use crate::error::ApiError;
use crate::openai::{embeddings, models};
use crate::{anthropic, openai, seed};

/// The flag that turns `mode` on.
pub fn mode_flag(mode: Mode) -> Flag {
    match mode {
        Mode::Chat => Flag::ModeChat,
        Mode::Knowledge => Flag::ModeKnowledge,
        Mode::Search => Flag::ModeSearch,
        Mode::Code => Flag::ModeCode,
        Mode::Thinking => Flag::ModeThinking,
        Mode::Research => Flag::ModeResearch,
    }
}

/// The flag of the dialect a request speaks: by the dialect a function is told to answer in,
/// else by its path. The platform's own API has none.
pub fn dialect_flag(path: &str, headers: &http::HeaderMap) -> Option<Flag> {
    match Dialect::from_headers(headers, false) {
        Ok(Dialect::OpenAiChat(_)) => return Some(Flag::DialectOpenAiChat),
        Ok(Dialect::OpenAiResponses(_)) => return Some(Flag::DialectOpenAiResponses),
        Ok(Dialect::AnthropicMessages(_)) => return Some(Flag::DialectAnthropicMessages),
        Ok(Dialect::Seed(_)) => return Some(Flag::DialectSeed),
        Ok(Dialect::Platform { .. }) | Err(_) => {}
    }
    if path == openai::CHAT_COMPLETIONS {
        Some(Flag::DialectOpenAiChat)
    } else if path == openai::RESPONSES {
        Some(Flag::DialectOpenAiResponses)
    } else if path == embeddings::EMBEDDINGS {
        Some(Flag::DialectOpenAiEmbeddings)
    } else if path == models::MODELS || path.starts_with("/v1/models/") {
        Some(Flag::DialectOpenAiModels)
    } else if path == anthropic::MESSAGES || path == anthropic::COUNT_TOKENS {
        Some(Flag::DialectAnthropicMessages)
    } else if seed::serves(path) {
        Some(Flag::DialectSeed)
    } else {
        None
    }
}

/// Refuses a request whose mode or dialect is off.
pub fn check(flags: &Flags, mode: Option<Mode>, path: &str, headers: &http::HeaderMap) -> Result<(), ApiError> {
    let mode = mode.map(mode_flag);
    match mode.into_iter().chain(dialect_flag(path, headers)).find(|flag| !flags.on(*flag)) {
        Some(flag) => Err(ApiError::FeatureDisabled(flag.path())),
        None => Ok(()),
    }
}
