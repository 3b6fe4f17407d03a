//! The HTTP front: one serving thread per core, each a single-threaded tokio runtime that
//! accepts from the shared listening socket and runs its connections' requests, the instances
//! they reach and their outbound calls. A request never waits for another thread to be woken:
//! under tokio's work-stealing runtime those wake-ups (futex and eventfd writes, each an
//! interrupt in a VM) took about a fifth of the host's CPU per request on a 2-core machine, and
//! requests were slower for it. An idle thread accepts first, so connections spread by load.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::WasiBody;

use crate::manifest::App;
use crate::runtime::{text_response, Compiled, Runtime};
use crate::sqlite::SqliteDb;

/// Loads `manifest`, compiles its components, and serves on `threads` threads until SIGINT or
/// SIGTERM, with `sqlite` as the `default` database.
pub fn run(
    manifest: &Path,
    listen: SocketAddr,
    kv_dir: Option<&Path>,
    sqlite: SqliteDb,
    cache_dir: Option<&Path>,
    threads: usize,
) -> Result<()> {
    let app = App::load(manifest)?;
    let compiled = Compiled::new(&app, kv_dir, sqlite, cache_dir)?;
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;

    let signals = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let shutdown = {
        let _context = signals.enter();
        shutdown_signal()?
    };

    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::new();
    for n in 0..threads.max(1) {
        let runtime = Runtime::new(&compiled)?;
        let listener = listener.try_clone()?;
        let stopped = stopped.clone();
        let worker = std::thread::Builder::new()
            .name(format!("spin-host-{n}"))
            .spawn(move || serve_thread(listener, runtime, local, stopped))?;
        workers.push(worker);
    }
    println!("spin-host listening on http://{local}");
    std::io::stdout().flush()?;

    signals.block_on(shutdown);
    crate::runtime::SHUTTING_DOWN.store(true, std::sync::atomic::Ordering::Relaxed);
    eprintln!("spin-host: shutting down");
    let _ = stop.send(true);
    for worker in workers {
        if let Ok(Err(error)) = worker.join() {
            eprintln!("spin-host: {error:#}");
        }
    }
    Ok(())
}

/// One serving thread: accepts and serves connections until `stopped` turns true.
fn serve_thread(
    listener: std::net::TcpListener,
    runtime: Runtime,
    local: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) -> Result<()> {
    let threaded = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = threaded.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        let runtime = Arc::new(runtime);
        loop {
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                // Every thread waits on the same socket; tokio retries quietly when another
                // thread took the connection first.
                accepted = listener.accept() => match accepted {
                    Ok((stream, client)) => serve_connection(stream, client, local, &runtime),
                    Err(error) => eprintln!("spin-host: accept failed: {error}"),
                },
            }
        }
        Ok(())
    });
    // Instances still streaming are abandoned: shutting down must not wait for them.
    threaded.shutdown_background();
    result
}

fn serve_connection(stream: tokio::net::TcpStream, client: SocketAddr, local: SocketAddr, runtime: &Arc<Runtime>) {
    let _ = stream.set_nodelay(true);
    let runtime = Arc::clone(runtime);
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |request| {
            let runtime = Arc::clone(&runtime);
            async move { Ok::<_, Infallible>(route(&runtime, request, local, client).await) }
        });
        let connection =
            hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
        if let Err(error) = connection.await {
            if !error.is_incomplete_message() {
                eprintln!("spin-host: connection from {client}: {error}");
            }
        }
    });
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
    let path_and_query = parts.uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
    if let Ok(uri) = format!("http://{authority}{path_and_query}").parse() {
        parts.uri = uri;
    }
    let body = body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync();
    let request = http::Request::from_parts(parts, body);
    component.handle(request, Some((matched.route, &matched.path_info)), Some(client)).await
}

/// Registers for SIGINT and SIGTERM at once, so a signal sent right after "listening" stops the
/// host cleanly, and returns what resolves on the first of them.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
