//! The seed platform's own API (`/api/v1/...`), for the clients of the platform this one
//! replaces: its chat body and answer, its chat stream, and its error shape. Chat goes through
//! the same modes as every dialect; `mode` picks the mode as `opencode/<mode>` does elsewhere.

pub mod documents;
pub mod render;
pub mod request;

use serde_json::json;

use opencode_runtime::Body;

use crate::error::ApiError;
use crate::web;

/// The seed's chat paths: a whole answer, and a stream.
pub const CHAT: &str = "/api/v1/chat";
pub const CHAT_STREAM: &str = "/api/v1/chat/stream";
/// The seed's search (the search function) and sandbox run (the code function).
pub const SEARCH: &str = "/api/v1/search";
pub const SANDBOX_EXECUTE: &str = "/api/v1/sandbox/execute";

/// The seed's metrics (the admin function).
pub const METRICS: &str = "/api/v1/metrics";

/// Whether `path` is one of the seed's.
pub fn serves(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The platform's name for a seed mode name (its `deep_research` is `research`).
pub fn platform_mode(name: &str) -> &str {
    match name {
        "deep_research" => "research",
        other => other,
    }
}

/// The seed's mode name for a platform mode (`research` is its `deep_research`).
pub fn mode_name(mode: opencode_core::routing::Mode) -> &'static str {
    match mode {
        opencode_core::routing::Mode::Research => "deep_research",
        other => other.as_str(),
    }
}

/// The seed's cognitive metrics from the platform's per-mode totals: `system1` (chat and
/// knowledge), `system2` (search, code, thinking) and `agent` (research), as its levels group
/// the modes, each `{request_count, avg_latency_ms, success_rate, total_tokens}`, and
/// `total_requests`.
pub fn metrics_json(record: &opencode_runtime::metrics::Record) -> serde_json::Value {
    use opencode_core::routing::Mode;
    let levels: [(&str, &[Mode]); 3] = [
        ("system1", &[Mode::Chat, Mode::Knowledge]),
        ("system2", &[Mode::Search, Mode::Code, Mode::Thinking]),
        ("agent", &[Mode::Research]),
    ];
    let mut out = serde_json::Map::new();
    let mut total_requests = 0u64;
    for (level, modes) in levels {
        let mut sum = opencode_runtime::metrics::Stats::default();
        for stats in modes.iter().filter_map(|mode| record.modes.get(mode.as_str())) {
            sum.merge(stats);
        }
        total_requests = total_requests.saturating_add(sum.requests);
        let per_request = |part: u64, places: f64| {
            if sum.requests == 0 {
                0.0
            } else {
                (part as f64 / sum.requests as f64 * places).round() / places
            }
        };
        out.insert(
            level.into(),
            json!({
                "request_count": sum.requests,
                "avg_latency_ms": per_request(sum.latency_ms_sum, 100.0),
                "success_rate": per_request(sum.requests.saturating_sub(sum.errors), 10_000.0),
                "total_tokens": sum.input_tokens.saturating_add(sum.output_tokens),
            }),
        );
    }
    out.insert("total_requests".into(), json!(total_requests));
    serde_json::Value::Object(out)
}

/// The error response: `{"error_code","message","trace_id"}` at the platform's status, the
/// code upper-cased as the seed's are.
pub fn error_response(err: &ApiError, request_id: &str) -> http::Response<Body> {
    let body =
        json!({ "error_code": err.code().to_ascii_uppercase(), "message": err.to_string(), "trace_id": request_id });
    web::error_response(err.status(), &body)
}
