//! The HTTP front: one listener, each request routed by path to its component.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::WasiBody;

use crate::manifest::App;
use crate::runtime::{text_response, Runtime};

/// Loads `manifest`, compiles its components, and serves until SIGINT or SIGTERM.
pub async fn run(
    manifest: &Path,
    listen: SocketAddr,
    kv_dir: Option<&Path>,
    cache_dir: Option<&Path>,
) -> Result<()> {
    let app = App::load(manifest)?;
    let runtime = Arc::new(Runtime::new(&app, kv_dir, cache_dir)?);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let local = listener.local_addr()?;
    println!("spin-host listening on http://{local}");
    std::io::stdout().flush()?;

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, client) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        eprintln!("spin-host: accept failed: {error}");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let runtime = Arc::clone(&runtime);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let runtime = Arc::clone(&runtime);
                        async move { Ok::<_, Infallible>(route(&runtime, request, local, client).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = connection.await {
                        if !error.is_incomplete_message() {
                            eprintln!("spin-host: connection from {client}: {error}");
                        }
                    }
                });
            }
        }
    }
    crate::runtime::SHUTTING_DOWN.store(true, std::sync::atomic::Ordering::Relaxed);
    eprintln!("spin-host: shutting down");
    Ok(())
}

async fn route(
    runtime: &Runtime,
    request: http::Request<Incoming>,
    local: SocketAddr,
    client: SocketAddr,
) -> http::Response<WasiBody> {
    let path = request.uri().path().to_owned();
    let Some(matched) = runtime.router.route(&path) else {
        return text_response(http::StatusCode::NOT_FOUND, "not found\n");
    };
    let Some(component) = runtime.components.get(matched.component) else {
        return text_response(http::StatusCode::NOT_FOUND, "not found\n");
    };
    // The guest sees an absolute URL, as under Spin.
    let (mut parts, body) = request.into_parts();
    let authority = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| local.to_string(), str::to_owned);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    if let Ok(uri) = format!("http://{authority}{path_and_query}").parse() {
        parts.uri = uri;
    }
    let body = body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync();
    let request = http::Request::from_parts(parts, body);
    component
        .handle(
            request,
            Some((matched.route, &matched.path_info)),
            Some(client),
        )
        .await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
