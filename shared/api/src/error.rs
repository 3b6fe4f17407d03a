//! The platform's one error type and its single mapping to HTTP status and stable code.
//!
//! Messages are lower-case, name the problem, and never contain secrets or upstream bodies.

use serde::Serialize;

use opencode_runtime::config::ConfigError;
use opencode_runtime::executor::{Attempt, Outcome, ProvidersFailed};
use opencode_runtime::knowledge::KnowledgeError;
use opencode_runtime::modes::ModeError;
use opencode_runtime::search::SearchFailure;

/// Everything a request can fail with, as the client sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Validation(String),
    /// A validation failure the client's dialect reports by the parameter's name.
    #[error("{message}")]
    InvalidParam { param: String, message: String },
    /// A model no configured provider serves (OpenAI's dialect answers it with a 404).
    #[error("{0}")]
    UnknownModel(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("content-type must be application/json")]
    UnsupportedMediaType,
    #[error("missing bearer token: send `Authorization: Bearer <JWT>`")]
    MissingToken,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("{0}")]
    Forbidden(String),
    /// The guard (`GUARD_URL`) denied the request, for this reason; no model saw it.
    #[error("blocked by the guard: {0}")]
    BlockedByGuard(String),
    /// The guard failed or was too slow, and `GUARD_FAIL=closed`.
    #[error("the request could not be screened: the guard did not answer")]
    GuardUnavailable,
    /// A feature flag (its dotted path) turns this off for the caller's tenant.
    #[error("`{0}` is off: this feature is disabled")]
    FeatureDisabled(&'static str),
    #[error("no route for {0}")]
    NotFound(String),
    /// The request clashes with stored state (a knowledge base built with another model).
    #[error("{0}")]
    Conflict(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the platform is not configured: {0}")]
    NotConfigured(String),
    /// A limit or budget of this platform refused the request (429); the message names the
    /// scope and the limit, never spend figures.
    #[error("{message}")]
    LimitReached { limit: LimitKind, message: String, retry_after_secs: Option<u64> },
    /// The control plane's database could not be reached: nothing can be checked (fails closed).
    #[error("{0}")]
    StoreUnavailable(String),
    #[error("every provider failed ({})", summarize(.0))]
    AllProvidersFailed(Vec<Attempt>),
    #[error("every web search provider failed ({})", summarize_search(.0))]
    SearchFailed(Vec<Attempt>),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which kind of limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Requests or tokens per minute.
    Rate,
    Concurrency,
    Budget,
}

fn summarize(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "no provider is configured".to_string();
    }
    attempts.iter().map(|a| format!("{}: {}", a.provider, a.outcome)).collect::<Vec<_>>().join("; ")
}

fn summarize_search(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{}: {}{}", a.provider, a.outcome, if a.rejected_key { " (key refused)" } else { "" }))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// A validation failure of the parameter `param`.
    pub fn param(param: &str, message: String) -> ApiError {
        ApiError::InvalidParam { param: param.to_owned(), message }
    }

    /// The parameter a validation failure names, if it names one.
    pub fn param_name(&self) -> Option<&str> {
        match self {
            ApiError::InvalidParam { param, .. } => Some(param),
            ApiError::UnknownModel(_) => Some("model"),
            _ => None,
        }
    }

    /// Whether repeating the same request cannot help: configuration is missing, or stored
    /// state refuses it. (Clients retry 409s and 5xx by default.)
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ApiError::NotConfigured(_)
                | ApiError::Conflict(_)
                | ApiError::LimitReached { limit: LimitKind::Budget, .. }
        ) || matches!(self, ApiError::AllProvidersFailed(attempts) if attempts.is_empty())
    }

    /// How long a client should wait before trying again (`Retry-After`, in whole seconds),
    /// when every provider (or web search provider) turned the request away for now: rate
    /// limited (429) or overloaded (503, 529). The shortest wait an upstream asked for, at
    /// least a second; a second when none said.
    pub fn retry_after_secs(&self) -> Option<u64> {
        if let ApiError::LimitReached { retry_after_secs, .. } = self {
            return *retry_after_secs;
        }
        let (ApiError::AllProvidersFailed(attempts) | ApiError::SearchFailed(attempts)) = self else { return None };
        if !(rate_limited(attempts) || overloaded(attempts)) {
            return None;
        }
        let shortest_ms = attempts.iter().filter_map(|a| a.retry_after_ms).min().unwrap_or(1_000);
        Some(shortest_ms.div_ceil(1_000).max(1))
    }

    /// The status OpenAI's and Anthropic's APIs answer with: their validation failures are
    /// 400s (the SDKs raise `BadRequestError`), an unknown model a 404.
    pub fn vendor_status(&self) -> http::StatusCode {
        match (self, self.status()) {
            (ApiError::UnknownModel(_), _) => http::StatusCode::NOT_FOUND,
            (_, http::StatusCode::UNPROCESSABLE_ENTITY) => http::StatusCode::BAD_REQUEST,
            (_, other) => other,
        }
    }

    /// The HTTP status, decided here and nowhere else.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ApiError::MalformedJson(_) | ApiError::InvalidRequest(_) => S::BAD_REQUEST,
            ApiError::Validation(_) | ApiError::InvalidParam { .. } | ApiError::UnknownModel(_) => {
                S::UNPROCESSABLE_ENTITY
            }
            ApiError::PayloadTooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MissingToken | ApiError::InvalidToken(_) => S::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::FeatureDisabled(_) | ApiError::BlockedByGuard(_) => S::FORBIDDEN,
            ApiError::NotFound(_) => S::NOT_FOUND,
            ApiError::Conflict(_) => S::CONFLICT,
            ApiError::MethodNotAllowed { .. } => S::METHOD_NOT_ALLOWED,
            ApiError::NotConfigured(_) | ApiError::StoreUnavailable(_) | ApiError::GuardUnavailable => {
                S::SERVICE_UNAVAILABLE
            }
            ApiError::LimitReached { .. } => S::TOO_MANY_REQUESTS,
            ApiError::AllProvidersFailed(attempts) | ApiError::SearchFailed(attempts) if rate_limited(attempts) => {
                S::TOO_MANY_REQUESTS
            }
            ApiError::AllProvidersFailed(attempts) | ApiError::SearchFailed(attempts) if overloaded(attempts) => {
                S::SERVICE_UNAVAILABLE
            }
            ApiError::AllProvidersFailed(attempts) if all_timed_out(attempts) => S::GATEWAY_TIMEOUT,
            ApiError::AllProvidersFailed(attempts) if attempts.is_empty() => S::SERVICE_UNAVAILABLE,
            ApiError::AllProvidersFailed(_) | ApiError::SearchFailed(_) => S::BAD_GATEWAY,
            ApiError::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code clients can match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::Validation(_) | ApiError::InvalidParam { .. } | ApiError::UnknownModel(_) => "validation_failed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::MissingToken => "missing_token",
            ApiError::InvalidToken(_) => "invalid_token",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::FeatureDisabled(_) => "feature_disabled",
            ApiError::BlockedByGuard(_) => "blocked_by_guard",
            ApiError::GuardUnavailable => "guard_unavailable",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::NotConfigured(_) => "not_configured",
            ApiError::StoreUnavailable(_) => "store_unavailable",
            ApiError::LimitReached { limit: LimitKind::Rate, .. } => "rate_limited",
            ApiError::LimitReached { limit: LimitKind::Concurrency, .. } => "too_many_concurrent_requests",
            ApiError::LimitReached { limit: LimitKind::Budget, .. } => "budget_exceeded",
            ApiError::AllProvidersFailed(attempts) | ApiError::SearchFailed(attempts) if rate_limited(attempts) => {
                "rate_limited"
            }
            ApiError::AllProvidersFailed(attempts) | ApiError::SearchFailed(attempts) if overloaded(attempts) => {
                "upstream_overloaded"
            }
            ApiError::AllProvidersFailed(attempts) if all_timed_out(attempts) => "upstream_timeout",
            ApiError::AllProvidersFailed(attempts) if attempts.is_empty() => "no_provider",
            ApiError::AllProvidersFailed(_) => "upstream_failed",
            ApiError::SearchFailed(_) => "search_failed",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The broad category, in the style of the big vendors' `error.type`.
    pub fn kind(&self) -> &'static str {
        match self.status().as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 | 400 | 405 | 409 | 415 | 422 => "invalid_request_error",
            429 => "rate_limit_error",
            502..=504 => "upstream_error",
            _ => "server_error",
        }
    }

    /// The JSON error object `{"type","code","message","request_id"}` (plus `attempts` when
    /// providers were tried), as sent in bodies and SSE `error` events.
    pub fn to_json(&self, request_id: &str) -> serde_json::Value {
        let mut error = serde_json::json!({
            "type": self.kind(),
            "code": self.code(),
            "message": self.to_string(),
            "request_id": request_id,
        });
        match (self, error.as_object_mut()) {
            (ApiError::AllProvidersFailed(attempts), Some(map)) => {
                map.insert("attempts".into(), serde_json::json!(attempts));
            }
            (ApiError::SearchFailed(attempts), Some(map)) => {
                map.insert("attempts".into(), serde_json::json!(attempts));
            }
            _ => {}
        }
        error
    }
}

/// Every attempt was turned away with 429.
fn rate_limited(attempts: &[Attempt]) -> bool {
    every_status(attempts, &[429])
}

/// Every attempt found the upstream overloaded or unavailable (Anthropic says 529).
fn overloaded(attempts: &[Attempt]) -> bool {
    every_status(attempts, &[503, 529])
}

fn every_status(attempts: &[Attempt], statuses: &[u16]) -> bool {
    !attempts.is_empty()
        && attempts.iter().all(|a| matches!(a.outcome, Outcome::Status { status } if statuses.contains(&status)))
}

fn all_timed_out(attempts: &[Attempt]) -> bool {
    !attempts.is_empty() && attempts.iter().all(|a| a.outcome.is_timeout())
}

impl From<opencode_runtime::control::ControlError> for ApiError {
    fn from(err: opencode_runtime::control::ControlError) -> ApiError {
        ApiError::StoreUnavailable(err.to_string())
    }
}

impl From<ConfigError> for ApiError {
    fn from(err: ConfigError) -> ApiError {
        match err {
            ConfigError::NotConfigured(message) => ApiError::NotConfigured(message),
            ConfigError::UnknownModel(message) => ApiError::UnknownModel(message),
        }
    }
}

impl From<ProvidersFailed> for ApiError {
    fn from(ProvidersFailed(attempts): ProvidersFailed) -> ApiError {
        // The guard's refusal is the only "attempt" of a call it stopped.
        match attempts.last().map(|a| (&a.outcome, a)) {
            Some((Outcome::Blocked, attempt)) => ApiError::BlockedByGuard(attempt.detail.clone()),
            Some((Outcome::GuardUnavailable, _)) => ApiError::GuardUnavailable,
            _ => ApiError::AllProvidersFailed(attempts),
        }
    }
}

impl From<SearchFailure> for ApiError {
    fn from(failure: SearchFailure) -> ApiError {
        match failure {
            SearchFailure::NotConfigured => ApiError::NotConfigured(failure.to_string()),
            SearchFailure::EmptyQuery => ApiError::Validation(failure.to_string()),
            SearchFailure::AllFailed(attempts) => ApiError::SearchFailed(attempts),
        }
    }
}

impl From<ModeError> for ApiError {
    fn from(err: ModeError) -> ApiError {
        match err {
            ModeError::Invalid(message) => ApiError::Validation(message),
            ModeError::Config(err) => err.into(),
            ModeError::Providers(failed) => failed.into(),
            ModeError::Search(failure) => failure.into(),
            ModeError::Knowledge(err) => err.into(),
            ModeError::Unbound(_) => ApiError::NotConfigured(err.to_string()),
            ModeError::Internal(message) => ApiError::Internal(message),
        }
    }
}

impl From<KnowledgeError> for ApiError {
    fn from(err: KnowledgeError) -> ApiError {
        match err {
            KnowledgeError::Invalid(message) => ApiError::Validation(message),
            KnowledgeError::NotFound(what) => ApiError::NotFound(what),
            KnowledgeError::Conflict(message) => ApiError::Conflict(message),
            KnowledgeError::Store(_) => ApiError::Internal(err.to_string()),
            KnowledgeError::Config(err) => err.into(),
            KnowledgeError::Embedding(failed) => failed.into(),
        }
    }
}

/// `{"error": {...}}`, the body of every error response.
#[derive(Serialize)]
pub struct ErrorBody {
    pub error: serde_json::Value,
}
