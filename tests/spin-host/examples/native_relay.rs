//! The machine's floor for the Spin benchmark: the relay fixture's `POST /relay?url=U
//! [&stream=1]` (tests/spin-host/fixtures/relay) done natively, with no Wasm. It is served like spin-host serves (one
//! single-threaded tokio runtime per core on a shared listener, hyper's HTTP/1 server) and
//! calls upstream like spin-host does (hyper-util's pooled client, `TCP_NODELAY`), so what the
//! relay component adds over it is the Wasm runtime's cost, and what it adds over a direct call is one
//! extra loopback hop on this machine.
//!
//!   cargo run --release -p spin-host --example native_relay   (prints `listening on URL`)

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

type Answer = http::Response<UnsyncBoxBody<Bytes, hyper::Error>>;
type Upstream = Client<HttpConnector, Full<Bytes>>;

fn main() -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    println!("native-relay listening on http://{}", listener.local_addr()?);
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let listener = listener.try_clone()?;
            Ok(std::thread::spawn(move || serve(listener)))
        })
        .collect::<anyhow::Result<_>>()?;
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

fn serve(listener: std::net::TcpListener) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let upstream: Upstream = Client::builder(TokioExecutor::new()).build(connector);
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let upstream = upstream.clone();
                    async move { Ok::<_, Infallible>(relay(&upstream, request).await) }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}

fn plain(status: u16, text: &'static str) -> Answer {
    let mut answer =
        http::Response::new(Full::new(Bytes::from_static(text.as_bytes())).map_err(|e| match e {}).boxed_unsync());
    *answer.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    answer
}

/// The body read whole, posted to `url` with the caller's `authorization` and `content-type`;
/// the answer read whole (or passed on as it arrives with `stream=1`).
async fn relay(upstream: &Upstream, request: http::Request<Incoming>) -> Answer {
    let query = request.uri().query().unwrap_or("");
    let param = |name: &str| query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='));
    let Some(url) = param("url").and_then(|u| percent_decode(u).parse::<http::Uri>().ok()) else {
        return plain(400, "relay needs ?url=");
    };
    let streamed = param("stream") == Some("1");
    let mut outbound = http::Request::post(url);
    for name in [http::header::AUTHORIZATION, http::header::CONTENT_TYPE] {
        if let Some(value) = request.headers().get(&name) {
            outbound = outbound.header(name, value.clone());
        }
    }
    let Ok(body) = request.into_body().collect().await else {
        return plain(400, "unreadable body");
    };
    let Ok(outbound) = outbound.body(Full::new(body.to_bytes())) else {
        return plain(400, "bad request");
    };
    let Ok(response) = upstream.request(outbound).await else {
        return plain(502, "upstream failed");
    };
    let (parts, body) = response.into_parts();
    let mut answer = if streamed {
        http::Response::new(body.boxed_unsync())
    } else {
        let Ok(bytes) = body.collect().await else {
            return plain(502, "upstream body failed");
        };
        http::Response::new(Full::new(bytes.to_bytes()).map_err(|e| match e {}).boxed_unsync())
    };
    *answer.status_mut() = parts.status;
    if let Some(value) = parts.headers.get(http::header::CONTENT_TYPE) {
        answer.headers_mut().insert(http::header::CONTENT_TYPE, value.clone());
    }
    answer
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}
