//! One request through the core: Spin's request in, the core's response out as a Spin response
//! whose body is written chunk by chunk as the core produces it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::StreamExt;
use opencode_api::Function;
use opencode_runtime::{Body, HostError};
use spin_sdk::wasip3::http::types::{ErrorCode, Request as WasiRequest, Response as WasiResponse};
use spin_sdk::wasip3::http_compat::{http_from_wasi_request, http_into_wasi_response};

use crate::host::SpinHost;
use crate::wire;

/// Runs the core function `F` on one incoming Spin request and returns its response.
///
/// The request body is handed to the core as a stream (the core reads it whole, with its own
/// size limit); the response body is a [`ResponseBody`], which Spin writes to the client one
/// chunk at a time as the core yields them. It never fails: the core answers every request.
pub async fn serve<F: Function>(request: spin_sdk::http::Request) -> http::Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let body = crate::host::body_stream(body, &parts.headers);
    let request = http::Request::from_parts(parts, Body::Stream(body));
    let response = opencode_api::serve::<F, _>(SpinHost::new(), request).await;
    let (mut parts, body) = response.into_parts();
    // The runtime owns framing; a hop-by-hop header from the core would fail the response.
    wire::strip_hop_by_hop(&mut parts.headers);
    if let Body::Full(bytes) = &body {
        wire::declare_response_length(&mut parts.headers, parts.status, bytes.len());
    }
    http::Response::from_parts(parts, ResponseBody::new(body))
}

/// The `wasi:http/handler#handle` export behind [`crate::entry!`].
#[doc(hidden)]
pub async fn handle<F: Function>(request: WasiRequest) -> Result<WasiResponse, ErrorCode> {
    let request = http_from_wasi_request(request)?;
    // `http_into_wasi_response` spawns the body writer inside this component-model task, so the
    // response head goes back now and the body follows as the stream yields.
    http_into_wasi_response(serve::<F>(request).await)
}

/// The core's [`Body`] as an [`http_body::Body`], which is what spin-sdk writes out.
pub struct ResponseBody {
    body: Option<Body>,
}

impl ResponseBody {
    /// Wraps a core body.
    pub fn new(body: Body) -> Self {
        Self { body: Some(body) }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = HostError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, HostError>>> {
        loop {
            match self.body.as_mut() {
                None => return Poll::Ready(None),
                Some(Body::Full(_)) => {
                    let Some(Body::Full(bytes)) = self.body.take() else {
                        return Poll::Ready(None);
                    };
                    if bytes.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(http_body::Frame::data(bytes))));
                }
                Some(Body::Stream(stream)) => match stream.poll_next_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => {
                        self.body = None;
                        return Poll::Ready(None);
                    }
                    // An empty chunk carries nothing; ask for the next one.
                    Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => continue,
                    Poll::Ready(Some(Ok(chunk))) => return Poll::Ready(Some(Ok(http_body::Frame::data(chunk)))),
                    Poll::Ready(Some(Err(error))) => {
                        self.body = None;
                        return Poll::Ready(Some(Err(error)));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            None => true,
            Some(Body::Full(bytes)) => bytes.is_empty(),
            Some(Body::Stream(_)) => false,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.body {
            None => http_body::SizeHint::with_exact(0),
            Some(Body::Full(bytes)) => http_body::SizeHint::with_exact(bytes.len() as u64),
            Some(Body::Stream(_)) => http_body::SizeHint::default(),
        }
    }
}
