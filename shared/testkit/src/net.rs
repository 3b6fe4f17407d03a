//! Real outbound HTTP for tests that talk to a local server (the provider simulator) instead
//! of a scripted upstream: `TestHost::new().with_upstream(opencode_testkit::http_fetch)`.
//! Plain `http://` on loopback only; one connection per request; bodies stream.

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opencode_runtime::{Body, HostError};

/// Sends `request` to the `http://` URL in its URI and streams the response back.
pub async fn http_fetch(request: http::Request<Bytes>) -> Result<http::Response<Body>, HostError> {
    let connect = |e: &dyn std::fmt::Display| HostError::Connect(e.to_string());
    let uri = request.uri().clone();
    if uri.scheme_str() != Some("http") {
        return Err(HostError::Refused(format!("{uri}: the test fetch speaks plain http only")));
    }
    let authority = uri.authority().ok_or_else(|| HostError::Refused(format!("{uri}: no host")))?.clone();
    let stream = tokio::net::TcpStream::connect((authority.host(), authority.port_u16().unwrap_or(80)))
        .await
        .map_err(|e| connect(&e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| connect(&e))?;
    tokio::spawn(connection);

    let (mut parts, body) = request.into_parts();
    parts.uri = uri.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(|e| connect(&e))?;
    let host = http::HeaderValue::from_str(authority.as_str()).map_err(|e| connect(&e))?;
    parts.headers.insert(http::header::HOST, host);
    let response =
        sender.send_request(http::Request::from_parts(parts, Full::new(body))).await.map_err(|e| connect(&e))?;
    let (parts, incoming) = response.into_parts();
    let chunks = incoming.into_data_stream().map(|chunk| chunk.map_err(|e| HostError::Body(e.to_string())));
    Ok(http::Response::from_parts(parts, Body::Stream(chunks.boxed_local())))
}
