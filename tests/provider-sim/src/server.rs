//! The HTTP/1.1 server: accept loop, one task per connection, control endpoints.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

use crate::body::Body;
use crate::route::{self, Outcome, Route};
use crate::search::SearchApi;
use crate::state::{self, State};

/// Serves until `shutdown` fires (or its sender is dropped).
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>, mut shutdown: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, Arc::clone(&state)));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
}

/// Serves one connection; a `drop` fault ends it by dropping the socket mid-request.
async fn connection(stream: TcpStream, state: Arc<State>) {
    // Stream events must leave as they are written, not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let kill_for_service = Arc::clone(&kill);
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        let kill = Arc::clone(&kill_for_service);
        async move { Ok::<_, Infallible>(handle(req, &state, &kill).await) }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        () = kill.notified() => {}
    }
}

/// What a request is for: a model API or a web search API.
enum Endpoint {
    Model(Route),
    Search(SearchApi),
}

async fn handle(req: Request<Incoming>, state: &State, kill: &Notify) -> Response<Body> {
    let (parts, incoming) = req.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or_default();
    match (&parts.method, path) {
        (&Method::GET, "/_sim/health") => return route::json(200, &json!({"status": "ok"})),
        (&Method::GET, "/_sim/requests") => return route::json(200, &Value::Array(state.requests())),
        (&Method::POST, "/_sim/reset") => {
            state.reset();
            return route::json(200, &json!({"status": "reset"}));
        }
        _ => {}
    }
    let endpoint = match SearchApi::parse(&parts.method, path) {
        Some(api) => Endpoint::Search(api),
        None => match Route::parse(&parts.method, path, query) {
            Some(route) => Endpoint::Model(route),
            None => {
                let message = format!("provider-sim: no endpoint for {} {path}", parts.method);
                return route::json(404, &json!({"error": {"message": message, "type": "not_found"}}));
            }
        },
    };
    let label = match &endpoint {
        Endpoint::Search(api) => api.label(),
        Endpoint::Model(route) => route.label(),
    };
    let Ok(collected) = incoming.collect().await else {
        return route::json(400, &json!({"error": {"message": "provider-sim: could not read the request body"}}));
    };
    let bytes = collected.to_bytes();
    let raw = String::from_utf8_lossy(&bytes);
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(raw.clone().into_owned()))
    };
    state.record(state::entry(label, &parts, &body));
    let outcome = match &endpoint {
        Endpoint::Search(api) => route::answer_search(*api, &parts.headers, query, &body, state).await,
        Endpoint::Model(route) => route::answer(route, &parts.headers, query, &raw, &body, state).await,
    };
    match outcome {
        Outcome::Respond(response) => response,
        Outcome::Drop => {
            kill.notify_one();
            std::future::pending().await
        }
        Outcome::Hang => std::future::pending().await,
    }
}
