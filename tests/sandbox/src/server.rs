//! The HTTP/1.1 server: `GET /api/v2/runtimes`, `POST /api/v2/execute`, the optional bearer
//! token, and Piston's `{"message"}` errors for everything else.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

use crate::jail::Jail;
use crate::runtimes::Runtime;
use crate::staging::Staging;
use crate::{request, run, Limits, MemoryBound, Options};

pub(crate) struct State {
    options: Options,
    jail: Jail,
    staging: Staging,
    runtimes: Vec<Runtime>,
    /// One permit per run at once.
    slots: Semaphore,
    /// One permit per run at once or waiting for a slot: requests that get none are refused.
    admitted: Semaphore,
}

impl State {
    pub(crate) fn new(options: Options, jail: Jail, staging: Staging, runtimes: Vec<Runtime>) -> State {
        let running = options.limits.max_concurrent_runs.max(1);
        let slots = Semaphore::new(running);
        let admitted = Semaphore::new(running.saturating_add(options.limits.max_queued_runs));
        State { options, jail, staging, runtimes, slots, admitted }
    }
}

/// Serves until `shutdown` fires (or its sender is dropped).
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>, mut shutdown: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = Arc::clone(&state);
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(req, &state).await) }
                    });
                    tokio::spawn(async move {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let known = matches!(path.as_str(), "/api/v2/runtimes" | "/api/v2/execute");
    if !known {
        return message(StatusCode::NOT_FOUND, &format!("no endpoint {path}"));
    }
    if let Some(token) = &state.options.token {
        if !authorized(req.headers(), token) {
            return message(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send Authorization: Bearer <SANDBOX_TOKEN>",
            );
        }
    }
    match (req.method(), path.as_str()) {
        (&Method::GET, "/api/v2/runtimes") => {
            let list: Vec<Value> = state.runtimes.iter().map(Runtime::to_json).collect();
            let mut response = reply(StatusCode::OK, &Value::Array(list));
            // Not Piston's: tells operators whether run_memory_limit bounds a run or a process.
            let bound = match state.jail.memory_bound() {
                MemoryBound::RunTotal(_) => "run",
                MemoryBound::PerProcess(_) => "process",
            };
            response.headers_mut().insert("x-sandbox-memory-limit", http::HeaderValue::from_static(bound));
            response
        }
        (&Method::POST, "/api/v2/execute") => execute(req, state).await,
        (method, _) => message(StatusCode::METHOD_NOT_ALLOWED, &format!("method {method} is not allowed on {path}")),
    }
}

async fn execute(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let limit = state.options.limits.max_request_bytes;
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return message(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body is larger than {limit} bytes or was cut"),
            )
        }
    };
    let (runtime, job) = match request::parse(&body, &state.runtimes, &state.options.limits) {
        Ok(parsed) => parsed,
        Err(e) => return message(StatusCode::BAD_REQUEST, &e),
    };
    let Ok(_admitted) = state.admitted.try_acquire() else {
        return busy(&state.options.limits);
    };
    let Ok(_slot) = state.slots.acquire().await else {
        return message(StatusCode::SERVICE_UNAVAILABLE, "the sandbox is shutting down");
    };
    let run = run::execute(&state.jail, &state.staging, runtime, job).await;
    reply(StatusCode::OK, &json!({"language": runtime.language, "version": runtime.version, "run": run.to_json()}))
}

/// 503 with Piston's error shape, and when to try again: a default run's length.
fn busy(limits: &Limits) -> Response<Full<Bytes>> {
    let text = format!(
        "the sandbox is busy: {} runs are running and {} waiting, the most it takes; try again later",
        limits.max_concurrent_runs.max(1),
        limits.max_queued_runs
    );
    let mut response = message(StatusCode::SERVICE_UNAVAILABLE, &text);
    let seconds = limits.run_timeout_ms.div_ceil(1000).max(1);
    response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    response
}

/// `Authorization: Bearer <token>`, compared in constant time.
fn authorized(headers: &http::HeaderMap, token: &str) -> bool {
    let Some(given) =
        headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// Piston's error shape.
fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    reply(status, &json!({"message": text}))
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
