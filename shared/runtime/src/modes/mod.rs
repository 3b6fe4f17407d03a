//! The modes: what each of chat, thinking, search, knowledge, code and research does with a
//! validated request, ending in a [`Reply`](crate::answer::Reply) that any dialect renders.
//!
//! A mode decides when its stream opens: everything that can fail before (a search that is not
//! configured, a knowledge base that cannot be read, a provider chain that fails before its
//! first token) is an error the client gets as a status; what fails after is the stream's
//! `Failed` event. Requests arrive checked: parsing and validation are the dialects' job.

pub mod chat;
pub mod code;
pub mod knowledge;
pub mod research;
pub mod search;
pub mod thinking;

use opencode_core::model::{ChatRequest, Role};

use crate::config::ConfigError;
use crate::executor::ProvidersFailed;
use crate::knowledge::KnowledgeError;
use crate::search::SearchFailure;

/// How the client takes the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// One answer at the end.
    Whole,
    /// Events as the mode works.
    Stream,
}

/// Why a mode could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModeError {
    /// The request cannot be answered as asked (a limit stopped it first, say).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Providers(#[from] ProvidersFailed),
    #[error(transparent)]
    Search(#[from] SearchFailure),
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    /// A sibling function the mode needs is not deployed or bound.
    #[error("the {0} function is not bound")]
    Unbound(String),
    /// Something the platform itself got wrong.
    #[error("{0}")]
    Internal(String),
}

/// The user's last message: the question, the task or the query of most modes.
pub fn last_user_text(request: &ChatRequest) -> &str {
    request.messages.iter().rev().find(|m| m.role == Role::User).map_or("", |m| m.content.as_str())
}
