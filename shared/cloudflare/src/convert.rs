//! Conversions between the Workers (`web_sys`) request and response objects and the `http`
//! types the core speaks. None of them panics: the runtime's values are checked, and what does
//! not fit becomes an error the caller turns into a response or a `HostError`.

use bytes::Bytes;
use opencode_runtime::{Body, HostError};
use worker::js_sys::{self, Array, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::web_sys;

use crate::stream;

/// The message of a JavaScript exception or rejection, for logs and `HostError`s.
pub(crate) fn js_message(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        String::from(error.message())
    } else if let Some(text) = value.as_string() {
        text
    } else {
        String::from("unknown JavaScript error")
    }
}

/// An incoming request, straight from the runtime.
pub(crate) async fn request_from_web(request: &web_sys::Request) -> Result<http::Request<Body>, &'static str> {
    let method =
        http::Method::from_bytes(request.method().as_bytes()).map_err(|_| "the request method is not valid")?;
    let uri = parse_uri(&request.url()).ok_or("the request URL is not valid")?;
    let (headers, body) = headers_and_body(&request.headers(), request.body(), || request.array_buffer())
        .await
        .map_err(|_| "the request body could not be read")?;
    let mut converted = http::Request::new(body);
    *converted.method_mut() = method;
    *converted.uri_mut() = uri;
    *converted.headers_mut() = headers;
    Ok(converted)
}

/// An outgoing request for `fetch` or a service binding. `service` names the sibling function
/// when the core gave only a path: service bindings still need an absolute URL, whose host
/// the bound Worker sees but the network never does.
pub(crate) fn request_to_web(
    request: http::Request<Bytes>,
    service: Option<&str>,
) -> Result<web_sys::Request, HostError> {
    let (parts, body) = request.into_parts();
    let url = if parts.uri.scheme().is_some() && parts.uri.authority().is_some() {
        parts.uri.to_string()
    } else if let Some(service) = service {
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let separator = if path.starts_with('/') { "" } else { "/" };
        format!("https://{service}.internal{separator}{path}")
    } else {
        return Err(HostError::Refused(String::from("the URL is not absolute")));
    };

    let init = web_sys::RequestInit::new();
    init.set_method(parts.method.as_str());
    // A redirect is answered as it is, never followed: a provider's key must not go to
    // wherever a redirect points (`fetch` would resend the request, headers and all).
    init.set_redirect(web_sys::RequestRedirect::Manual);
    let headers = headers_to_web(&parts.headers).map_err(HostError::Refused)?;
    init.set_headers(headers.as_ref());
    if !body.is_empty() {
        init.set_body(&Uint8Array::new_from_slice(body.as_ref()).into());
    }
    web_sys::Request::new_with_str_and_init(&url, &init).map_err(|error| HostError::Refused(js_message(&error)))
}

/// A response from `fetch` or a service binding; its body streams as it arrives, unless it is
/// small and declares its length (see [`stream::body_from_web`]).
pub(crate) async fn response_from_web(response: &web_sys::Response) -> Result<http::Response<Body>, HostError> {
    let status = http::StatusCode::from_u16(response.status())
        .map_err(|_| HostError::Connect(String::from("the response status is not valid")))?;
    let (headers, body) = headers_and_body(&response.headers(), response.body(), || response.array_buffer()).await?;
    let mut converted = http::Response::new(body);
    *converted.status_mut() = status;
    *converted.headers_mut() = headers;
    Ok(converted)
}

/// A runtime message's headers and its body, read as [`stream::body_from_web`] decides.
async fn headers_and_body(
    from: &web_sys::Headers,
    body: Option<web_sys::ReadableStream>,
    array_buffer: impl FnOnce() -> Result<js_sys::Promise, JsValue>,
) -> Result<(http::HeaderMap, Body), HostError> {
    let mut headers = http::HeaderMap::new();
    copy_headers_from_web(from, &mut headers);
    let body = stream::body_from_web(&headers, body, array_buffer).await?;
    Ok((headers, body))
}

/// The core's response for the runtime. A streamed body becomes a `ReadableStream` that pulls
/// the core's stream, so each chunk is sent as soon as the core yields it.
///
/// A whole body is sent with its `content-length`. The runtime knows the length anyway, but
/// a service binding does not pass it on unless the header says so, and without it the caller
/// (the gateway, say) must read the answer chunk by chunk and stream it on: on Miniflare that
/// was most of what the gateway added to a request.
pub(crate) fn response_to_web(response: http::Response<Body>) -> Result<web_sys::Response, String> {
    let (parts, body) = response.into_parts();
    let status = parts.status.as_u16();
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    let headers = headers_to_web(&parts.headers)?;

    // The Fetch standard forbids a body on these statuses; the constructor would throw.
    let null_body_status = matches!(status, 101 | 103 | 204 | 205 | 304);
    if let Body::Full(bytes) = &body {
        if !null_body_status && !bytes.is_empty() {
            headers.set("content-length", &bytes.len().to_string()).map_err(|error| js_message(&error))?;
        }
    }
    init.set_headers(headers.as_ref());
    let built = match body {
        _ if null_body_status => web_sys::Response::new_with_opt_str_and_init(None, &init),
        Body::Full(bytes) if bytes.is_empty() => web_sys::Response::new_with_opt_str_and_init(None, &init),
        Body::Full(bytes) => {
            let array = Uint8Array::new_from_slice(bytes.as_ref());
            web_sys::Response::new_with_opt_buffer_source_and_init(Some(&array), &init)
        }
        Body::Stream(stream) => {
            web_sys::Response::new_with_opt_readable_stream_and_init(Some(&stream::to_web(stream)), &init)
        }
    };
    built.map_err(|error| js_message(&error))
}

/// A small JSON error response in the core's error shape, built without the core: for a
/// request the adapter could not even read, or a response it could not build.
pub(crate) fn plain_response(status: u16, message: &str) -> worker::Result<web_sys::Response> {
    let kind = if status == 400 { "invalid_request" } else { "internal_error" };
    // `message` is always one of this crate's fixed strings, so it needs no JSON escaping.
    let body = format!(r#"{{"error":{{"type":"{kind}","code":"{kind}","message":"{message}"}}}}"#);
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "application/json")?;
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(headers.as_ref());
    Ok(web_sys::Response::new_with_opt_str_and_init(Some(&body), &init)?)
}

/// Header values on the web platform are byte strings: each char is one byte (U+0000–U+00FF).
/// Going through Latin-1 both ways keeps non-ASCII bytes intact instead of re-encoding them.
fn copy_headers_from_web(from: &web_sys::Headers, to: &mut http::HeaderMap) {
    for entry in from.entries() {
        let Ok(entry) = entry else { continue };
        let Ok(pair) = entry.dyn_into::<Array>() else {
            continue;
        };
        let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) else {
            continue;
        };
        let bytes: Vec<u8> = value.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect();
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_bytes(&bytes))
        {
            to.append(name, value);
        }
    }
}

fn headers_to_web(headers: &http::HeaderMap) -> Result<web_sys::Headers, String> {
    let output = web_sys::Headers::new().map_err(|error| js_message(&error))?;
    for (name, value) in headers {
        let value: String = value.as_bytes().iter().map(|&b| char::from(b)).collect();
        output.append(name.as_str(), &value).map_err(|error| js_message(&error))?;
    }
    Ok(output)
}

/// Parses the URL the runtime reports. WHATWG URLs may keep a few characters raw (`{`, `|`,
/// `^`, ...) that `http::Uri` refuses; those are percent-encoded and parsing is tried again.
fn parse_uri(url: &str) -> Option<http::Uri> {
    if let Ok(uri) = url.parse::<http::Uri>() {
        return Some(uri);
    }
    const ALLOWED: &str = "-._~:/?#[]@!$&'()*+,;=%";
    let mut encoded = String::with_capacity(url.len() + 16);
    for byte in url.bytes() {
        if byte.is_ascii_alphanumeric() || ALLOWED.as_bytes().contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded.parse::<http::Uri>().ok()
}
