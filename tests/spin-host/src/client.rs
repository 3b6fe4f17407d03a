//! Outbound HTTP as Spin sends it: plain-HTTP connections are pooled per destination and reused
//! across requests and instances (Spin's `[outbound_http] connection_pooling`, on by default),
//! so a component calling the same upstream does not pay a TCP handshake every time. HTTPS goes
//! through wasmtime-wasi-http's own client, one connection per request.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// Idle pooled connections are closed after this long (Spin and hyper's default).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// wasmtime-wasi-http's defaults when the guest sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// What wasmtime-wasi-http awaits to learn how sending the request body ended.
pub type IoFuture = Box<dyn std::future::Future<Output = Result<(), Error>> + Send>;

/// The host's outbound client; clones share the pool.
#[derive(Clone)]
pub struct OutboundClient {
    pooled: Client<HttpConnector, WasiBody>,
}

impl Default for OutboundClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let pooled = Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(connector);
        Self { pooled }
    }
}

impl OutboundClient {
    /// Sends one request and returns the response as soon as its head has arrived; the body
    /// streams frame by frame, each gap bounded by the guest's between-bytes timeout.
    pub async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        if request.uri().scheme() != Some(&http::uri::Scheme::HTTP) {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            return Ok((response.map(|body| body.boxed_unsync()), Box::new(io)));
        }
        let first_byte = options.and_then(|o| o.first_byte_timeout.or(o.connect_timeout)).unwrap_or(DEFAULT_TIMEOUT);
        let between_bytes =
            options.and_then(|o| o.between_bytes_timeout).unwrap_or(DEFAULT_TIMEOUT).max(Duration::from_nanos(1));
        let exchange = async {
            let request = gather_small_body(request).await?;
            self.pooled.request(request).await.map_err(client_error)
        };
        let response = tokio::time::timeout(first_byte, exchange).await.map_err(|_| Error::ConnectionReadTimeout)??;
        let response =
            response.map(|body| TimedBody { inner: body, gap: between_bytes, deadline: None }.boxed_unsync());
        // The pool drives its connections itself.
        Ok((response, Box::new(async { Ok(()) })))
    }
}

/// A request body of at most this many declared bytes is gathered before the request is sent.
const GATHER_LIMIT: u64 = 64 * 1024;

/// The guest writes a request's body only after the host has taken the request, so hyper would
/// send the head alone and the body in a second write, waking the server twice. A small body
/// whose length is declared is gathered first, and head and body leave in one write; larger or
/// undeclared bodies stream as they come.
async fn gather_small_body(request: http::Request<WasiBody>) -> Result<http::Request<WasiBody>, Error> {
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if !declared.is_some_and(|n| n > 0 && n <= GATHER_LIMIT) {
        return Ok(request);
    }
    let (parts, mut body) = request.into_parts();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        frames.push(Ok(frame?));
    }
    let gathered = http_body_util::StreamBody::new(futures::stream::iter(frames));
    Ok(http::Request::from_parts(parts, gathered.boxed_unsync()))
}

fn client_error(error: hyper_util::client::legacy::Error) -> Error {
    if error.is_connect() {
        Error::Connect(std::io::Error::other(error.to_string()))
    } else {
        // The peer closed or garbled the exchange before a response head arrived.
        Error::ConnectionTerminated
    }
}

/// A response body whose frames must not be further apart than `gap`.
struct TimedBody {
    inner: hyper::body::Incoming,
    gap: Duration,
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.deadline = None;
                Poll::Ready(frame.map(|f| f.map_err(Error::from)))
            }
            Poll::Pending => {
                let gap = this.gap;
                let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
                match std::future::Future::poll(deadline.as_mut(), cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
