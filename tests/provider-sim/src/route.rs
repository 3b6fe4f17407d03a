//! Which provider endpoint a request is for, and the answer it gets, faults applied.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::Value;

use crate::body::{self, Body, Step};
use crate::faults::FaultPlan;
use crate::reply::{Answer, Conversation};
use crate::search::SearchApi;
use crate::state::State;
use crate::wire::{self, ErrorReply, Meta, SseScript};
use crate::{anthropic, embeddings, gemini, openai};

/// A provider endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `{prefix}/v1/chat/completions`; label `openai` without prefix.
    OpenAiChat {
        label: String,
    },
    /// `{prefix}/v1/models`.
    OpenAiModels {
        label: String,
    },
    Anthropic,
    Gemini {
        model: String,
        stream: bool,
        sse: bool,
    },
    /// `{prefix}/v1/embeddings`.
    OpenAiEmbeddings {
        label: String,
    },
    /// `models/{model}:embedContent` (`batch: false`) or `:batchEmbedContents`.
    GeminiEmbed {
        model: String,
        batch: bool,
    },
}

impl Route {
    pub fn parse(method: &Method, path: &str, query: &str) -> Option<Route> {
        let prefix_label = |prefix: &str| {
            let p = prefix.trim_matches('/');
            if p.is_empty() {
                "openai".to_owned()
            } else {
                p.to_owned()
            }
        };
        if *method == Method::POST {
            if path == "/v1/messages" {
                return Some(Route::Anthropic);
            }
            if let Some(prefix) = path.strip_suffix("/v1/embeddings") {
                return Some(Route::OpenAiEmbeddings { label: prefix_label(prefix) });
            }
            if let Some(prefix) = path.strip_suffix("/v1/chat/completions") {
                return Some(Route::OpenAiChat { label: prefix_label(prefix) });
            }
            let call = path.strip_prefix("/v1beta/models/").or_else(|| path.strip_prefix("/v1/models/"));
            if let Some((model, verb)) = call.and_then(|c| c.split_once(':')) {
                let stream = match verb {
                    "generateContent" => false,
                    "streamGenerateContent" => true,
                    "embedContent" | "batchEmbedContents" => {
                        return Some(Route::GeminiEmbed {
                            model: model.to_owned(),
                            batch: verb == "batchEmbedContents",
                        })
                    }
                    _ => return None,
                };
                let sse = query.split('&').any(|p| p == "alt=sse");
                return Some(Route::Gemini { model: model.to_owned(), stream, sse });
            }
        }
        if *method == Method::GET {
            if let Some(prefix) = path.strip_suffix("/v1/models") {
                return Some(Route::OpenAiModels { label: prefix_label(prefix) });
            }
        }
        None
    }

    pub fn label(&self) -> &str {
        match self {
            Route::OpenAiChat { label } | Route::OpenAiModels { label } | Route::OpenAiEmbeddings { label } => label,
            Route::Anthropic => "anthropic",
            Route::Gemini { .. } | Route::GeminiEmbed { .. } => "gemini",
        }
    }

    fn status_error(&self, status: u16) -> ErrorReply {
        match self {
            Route::OpenAiChat { .. } | Route::OpenAiModels { .. } | Route::OpenAiEmbeddings { .. } => {
                openai::status_error(status)
            }
            Route::Anthropic => anthropic::status_error(status),
            Route::Gemini { .. } | Route::GeminiEmbed { .. } => gemini::status_error(status),
        }
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A JSON response.
pub(crate) fn json(status: u16, value: &Value) -> Response<Body> {
    bytes_response(status, "application/json", Bytes::from(value.to_string()), None)
}

fn bytes_response(status: u16, content_type: &str, bytes: Bytes, retry_after: Option<u64>) -> Response<Body> {
    with_headers(status, content_type, retry_after, None, body::full(bytes))
}

fn with_headers(
    status: u16,
    content_type: &str,
    retry_after: Option<u64>,
    length: Option<usize>,
    body: Body,
) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, content_type);
    if let Some(secs) = retry_after {
        builder = builder.header(http::header::RETRY_AFTER, secs);
    }
    if let Some(len) = length {
        builder = builder.header(http::header::CONTENT_LENGTH, len);
    }
    if content_type.starts_with("text/event-stream") {
        builder = builder.header(http::header::CACHE_CONTROL, "no-cache");
    }
    // The builder only fails on invalid header values, and ours are all valid.
    builder.body(body).unwrap_or_else(|_| Response::new(body::full(Bytes::new())))
}

fn error_response(e: &ErrorReply, retry_after: Option<u64>) -> Response<Body> {
    bytes_response(e.status, "application/json", Bytes::from(e.body.to_string()), retry_after)
}

/// Answers a provider request whose body was already read and logged.
pub(crate) async fn answer(
    route: &Route,
    headers: &HeaderMap,
    query: &str,
    raw: &str,
    body: &Value,
    state: &State,
) -> Outcome {
    let checked = match route {
        Route::OpenAiChat { label } | Route::OpenAiModels { label } | Route::OpenAiEmbeddings { label } => {
            openai::check_auth(label, headers)
        }
        Route::Anthropic => anthropic::check_auth(headers),
        Route::Gemini { .. } | Route::GeminiEmbed { .. } => gemini::check_auth(headers, query),
    };
    if let Err(e) = checked {
        return Outcome::Respond(error_response(&e, None));
    }
    let conv = match route {
        Route::OpenAiEmbeddings { label } => {
            return embed(route, embeddings::openai_call(label, body), raw, state).await
        }
        Route::GeminiEmbed { model, batch } => {
            return embed(route, embeddings::gemini_call(model, *batch, body), raw, state).await
        }
        Route::OpenAiModels { label } => return Outcome::Respond(json(200, &openai::models(label, now()))),
        Route::OpenAiChat { label } => openai::conversation(label, body),
        Route::Anthropic => anthropic::conversation(body),
        Route::Gemini { model, stream, .. } => gemini::conversation(body, model, *stream),
    };
    let conv = match conv {
        Ok(c) => c,
        Err(e) => return Outcome::Respond(error_response(&e, None)),
    };
    let label = route.label();
    let plan = state.plan(raw, label, &conv.user_text());
    if let Some(outcome) = faulted(&plan, |status| route.status_error(status)).await {
        return outcome;
    }
    let meta = Meta { seq: state.next_seq(), created: now(), label: label.to_owned() };
    let answer = Answer::new(label, &conv, plan.think || conv.reasoning);
    Outcome::Respond(success(route, &conv, &answer, &meta, &plan))
}

/// Answers a web search request whose body was already read and logged: key check, faults
/// from directives in the query, then results.
pub(crate) async fn answer_search(
    api: SearchApi,
    headers: &HeaderMap,
    query: &str,
    body: &Value,
    state: &State,
) -> Outcome {
    if let Err(e) = api.check_auth(headers, body) {
        return Outcome::Respond(error_response(&e, None));
    }
    let call = match api.call(query, body) {
        Ok(call) => call,
        Err(e) => return Outcome::Respond(error_response(&e, None)),
    };
    let plan = state.plan(&call.query, api.label(), &crate::faults::strip(&call.query));
    if let Some(outcome) = faulted(&plan, |status| api.status_error(status)).await {
        return outcome;
    }
    let value = api.answer(&call, plan.empty, state.next_seq());
    Outcome::Respond(whole(value.to_string(), &plan))
}

/// The fault a plan asks for before any answer (delay, then drop, hang or an error status in
/// the vendor's format).
async fn faulted(plan: &FaultPlan, status_error: impl Fn(u16) -> ErrorReply) -> Option<Outcome> {
    if let Some(ms) = plan.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if plan.drop {
        return Some(Outcome::Drop);
    }
    if plan.hang {
        return Some(Outcome::Hang);
    }
    plan.error_status().map(|status| Outcome::Respond(error_response(&status_error(status), plan.retry_after)))
}

/// An embedding request: faults first, then the vectors (`malformed` and `cut` apply to the
/// JSON body).
async fn embed(route: &Route, call: Result<embeddings::EmbedCall, ErrorReply>, raw: &str, state: &State) -> Outcome {
    let call = match call {
        Ok(c) => c,
        Err(e) => return Outcome::Respond(error_response(&e, None)),
    };
    let plan = state.plan(raw, route.label(), &call.text());
    if let Some(outcome) = faulted(&plan, |status| route.status_error(status)).await {
        return outcome;
    }
    let value = match route {
        Route::GeminiEmbed { batch, .. } => embeddings::gemini_response(&call, *batch),
        _ => embeddings::openai_response(&call),
    };
    Outcome::Respond(whole(value.to_string(), &plan))
}

/// What the connection should do with a request.
pub(crate) enum Outcome {
    Respond(Response<Body>),
    /// Close the connection without answering.
    Drop,
    /// Never answer.
    Hang,
}

fn success(route: &Route, conv: &Conversation, a: &Answer, meta: &Meta, plan: &FaultPlan) -> Response<Body> {
    let script = match route {
        Route::OpenAiChat { .. } if conv.stream => Some(openai::stream(a, conv, meta)),
        Route::Anthropic if conv.stream => Some(anthropic::stream(a, meta)),
        Route::Gemini { stream: true, sse: true, .. } => Some(gemini::stream(a, meta)),
        _ => None,
    };
    if let Some(script) = script {
        let content_type = script.content_type;
        return with_headers(200, content_type, None, None, body::scripted(stream_steps(script, plan)));
    }
    let value = match route {
        Route::Anthropic => anthropic::message(a, meta),
        Route::Gemini { stream: true, .. } => gemini::json_array(a, meta),
        Route::Gemini { .. } => gemini::generate(a, meta),
        Route::OpenAiChat { .. }
        | Route::OpenAiModels { .. }
        | Route::OpenAiEmbeddings { .. }
        | Route::GeminiEmbed { .. } => openai::completion(a, meta),
    };
    whole(value.to_string(), plan)
}

/// A non-streamed JSON answer, with `malformed` or `cut` applied.
fn whole(text: String, plan: &FaultPlan) -> Response<Body> {
    if plan.malformed.is_some() {
        return bytes_response(200, "application/json", Bytes::from(wire::truncated(&text)), None);
    }
    if let Some(n) = plan.cut {
        // Announce the whole length, send at most all but the last byte, then cut.
        let len = text.len();
        let sent = usize::try_from(n).unwrap_or(usize::MAX).min(len.saturating_sub(1));
        let part = Bytes::from(text).slice(..sent);
        let steps = vec![Step::Data(part), Step::Abort];
        return with_headers(200, "application/json", None, Some(len), body::scripted(steps));
    }
    bytes_response(200, "application/json", Bytes::from(text), None)
}

/// The stream's writes, with `chunk_delay_ms`, `cut`, `error_event` and `malformed` applied.
fn stream_steps(script: SseScript, plan: &FaultPlan) -> Vec<Step> {
    let gap = plan.chunk_delay_ms.map(Duration::from_millis);
    let mut steps = Vec::new();
    let push = |steps: &mut Vec<Step>, bytes: Bytes| {
        if let (Some(g), false) = (gap, steps.is_empty()) {
            steps.push(Step::Sleep(g));
        }
        steps.push(Step::Data(bytes));
    };
    let len = script.content.len();
    let at = |n: Option<u64>| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX).min(len));
    let (cut, error_event, malformed) = (at(plan.cut), at(plan.error_event), at(plan.malformed));

    for b in script.preamble {
        push(&mut steps, b);
    }
    let mut content = script.content.into_iter();
    for i in 0..=len {
        if cut == Some(i) {
            steps.push(Step::Abort);
            return steps;
        }
        if error_event == Some(i) {
            push(&mut steps, script.error_event);
            return steps;
        }
        if malformed == Some(i) {
            push(&mut steps, script.malformed);
            return steps;
        }
        if let Some(b) = content.next() {
            push(&mut steps, b);
        }
    }
    for b in script.terminal {
        push(&mut steps, b);
    }
    steps
}
