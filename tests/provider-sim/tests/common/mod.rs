//! A small HTTP/1.1 client for the simulator's tests: hyper's low-level client for normal
//! exchanges, and a raw TCP exchange to see exactly how a connection ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A whole exchange: status, headers, body frames with their arrival times, and how the
/// body ended.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    /// Each body frame and when it arrived, measured from sending the request.
    pub frames: Vec<(Duration, Bytes)>,
    /// When the response head arrived.
    pub head_after: Duration,
    /// The body error, if the body did not end cleanly.
    pub body_error: Option<String>,
}

impl Reply {
    pub fn bytes(&self) -> Vec<u8> {
        self.frames.iter().flat_map(|(_, b)| b.iter().copied()).collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.bytes()).unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn events(&self) -> Vec<SseEvent> {
        parse_sse(&self.text())
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
    try_send(addr, method, path, headers, body).await.unwrap()
}

/// Like [`send`], but a failure before the response head is an `Err`.
pub async fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<Reply, hyper::Error> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", addr.to_string());
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let started = Instant::now();
    let response = sender.send_request(req.body(Full::new(payload)).unwrap()).await?;
    let head_after = started.elapsed();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut incoming = response.into_body();
    let mut frames = Vec::new();
    let mut body_error = None;
    while let Some(frame) = incoming.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    frames.push((started.elapsed(), data));
                }
            }
            Err(e) => {
                body_error = Some(e.to_string());
                break;
            }
        }
    }
    Ok(Reply { status, headers, frames, head_after, body_error })
}

/// POST of a JSON body.
pub async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    send(addr, "POST", path, headers, Some(body)).await
}

pub const OPENAI_KEY: (&str, &str) = ("authorization", "Bearer sk-test-secret");
pub const ANTHROPIC_HEADERS: [(&str, &str); 2] = [("x-api-key", "sk-ant-secret"), ("anthropic-version", "2023-06-01")];
pub const GEMINI_KEY: (&str, &str) = ("x-goog-api-key", "goog-secret");

pub fn openai_body(model: &str, text: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}],
        "stream": stream,
        "stream_options": if stream { serde_json::json!({"include_usage": true}) } else { Value::Null },
    })
}

pub fn anthropic_body(model: &str, text: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": model, "max_tokens": 64, "system": "You are terse.", "stream": stream,
        "messages": [{"role": "user", "content": text}],
    })
}

pub fn gemini_body(text: &str) -> Value {
    serde_json::json!({
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        "generationConfig": {"maxOutputTokens": 64},
    })
}

/// One provider call, by label, so fault tests can run against all three.
pub async fn call(addr: SocketAddr, provider: &str, text: &str, stream: bool) -> Reply {
    match provider {
        "openai" => post(addr, "/v1/chat/completions", &[OPENAI_KEY], &openai_body("gpt-4o-mini", text, stream)).await,
        "anthropic" => {
            post(addr, "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_body("claude-sonnet-4-5", text, stream)).await
        }
        "gemini" if stream => {
            post(
                addr,
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                &[GEMINI_KEY],
                &gemini_body(text),
            )
            .await
        }
        "gemini" => {
            post(addr, "/v1beta/models/gemini-2.5-flash:generateContent", &[GEMINI_KEY], &gemini_body(text)).await
        }
        other => {
            let path = format!("/{other}/v1/chat/completions");
            post(addr, &path, &[], &openai_body("llama3.2", text, stream)).await
        }
    }
}

/// The text of a non-streamed answer, read as each vendor documents it.
pub fn answer_text(provider: &str, body: &Value) -> String {
    let text = match provider {
        "anthropic" => &body["content"][0]["text"],
        "gemini" => &body["candidates"][0]["content"]["parts"][0]["text"],
        _ => &body["choices"][0]["message"]["content"],
    };
    text.as_str().unwrap().to_owned()
}

/// Concatenated text deltas of a stream, read as each vendor documents it.
pub fn stream_text(provider: &str, events: &[SseEvent]) -> String {
    let mut out = String::new();
    for e in events {
        let Some(v) = e.json() else { continue };
        let piece = match provider {
            "anthropic" if v["type"] == "content_block_delta" => v["delta"]["text"].as_str(),
            "anthropic" => None,
            "gemini" => v["candidates"][0]["content"]["parts"][0]["text"].as_str(),
            _ => v["choices"][0]["delta"]["content"].as_str(),
        };
        out.push_str(piece.unwrap_or_default());
    }
    out
}

/// The number of events that carry answer text (non-empty deltas).
pub fn content_events(provider: &str, events: &[SseEvent]) -> usize {
    events.iter().filter(|e| !stream_text(provider, std::slice::from_ref(e)).is_empty()).count()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// A plain SSE parser: CRLF or LF lines, blank line ends an event, `data:` lines joined.
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let (mut event, mut data): (Option<String>, Vec<String>) = (None, Vec::new());
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            if !data.is_empty() || event.is_some() {
                events.push(SseEvent { event: event.take(), data: data.join("\n") });
                data.clear();
            }
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    if !data.is_empty() {
        events.push(SseEvent { event, data: data.join("\n") });
    }
    events
}

/// How a raw connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The server closed the connection (FIN or reset).
    Closed,
    /// Nothing happened before the timeout.
    TimedOut,
}

/// Sends `POST path` with `Connection: close` over a plain socket and reads until the
/// server closes it (or `timeout`). Returns every byte received.
pub async fn raw_post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
    timeout: Duration,
) -> (Vec<u8>, End) {
    let body = body.to_string();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (received, End::TimedOut),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, End::Closed),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Splits a raw HTTP/1.1 response into its head and body bytes.
pub fn split_head(raw: &[u8]) -> (String, Vec<u8>) {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no response head");
    (String::from_utf8_lossy(&raw[..at]).into_owned(), raw[at + 4..].to_vec())
}

/// Decodes a chunked body as far as it goes; says whether the terminating chunk came.
pub fn dechunk(mut body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size = usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap().trim(), 16).unwrap();
        body = &body[eol + 2..];
        if size == 0 {
            return (out, body.starts_with(b"\r\n"));
        }
        if body.len() < size {
            out.extend_from_slice(body);
            return (out, false);
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or_default();
    }
}
