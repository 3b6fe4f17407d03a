//! `POST /api/v1/auth/token`, the seed's token path: a valid API key exchanged for a short-lived
//! HS256 token (`{"access_token","token_type":"bearer","expires_in"}`, at most an hour) that
//! carries the key's id, so its restrictions, limits and revocation still apply. The key comes
//! as the bearer credential (`Authorization` or `x-api-key`), as `api_key` in a JSON or form
//! body, or as the `password` of an OAuth2 password-grant form. A username and password alone
//! are refused: the platform keeps no passwords.

use serde_json::{json, Value};

use opencode_core::access;
use opencode_runtime::host::{Body, Host};

use super::access::identify;
use crate::auth::{self, Settings};
use crate::error::ApiError;
use crate::web;

/// The longest an exchanged token lives, and the default.
pub const MAX_EXPIRES_IN: u64 = 3_600;
/// The shortest a caller may ask for.
const MIN_EXPIRES_IN: u64 = 60;
/// Token requests are small.
const MAX_BODY: usize = 8 * 1024;

pub(super) async fn exchange<H: Host>(
    host: &H,
    request: http::Request<Body>,
    request_id: &str,
) -> Result<http::Response<Body>, ApiError> {
    let (mut parts, body) = request.into_parts();
    if parts.method != http::Method::POST {
        return Err(ApiError::MethodNotAllowed { method: parts.method.to_string(), path: parts.uri.path().to_owned() });
    }
    let bytes = web::read_body(&parts, body, MAX_BODY).await?;
    let form = fields(&parts.headers, &bytes)?;
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let from_body = field("api_key").or_else(|| field("password").filter(|p| access::looks_like_key(p)));
    let presented = auth::bearer(&parts.headers).ok().filter(|t| access::looks_like_key(t));
    let key = match (presented, from_body) {
        (Some(key), _) | (None, Some(key)) => key.to_owned(),
        (None, None) if field("username").is_some() || field("password").is_some() => {
            return Err(ApiError::InvalidToken(
                "a username and password are not accepted: exchange an API key (`api_key`, or as the bearer)".into(),
            ))
        }
        (None, None) => return Err(ApiError::MissingToken),
    };
    let expires_in = match field("expires_in") {
        None => MAX_EXPIRES_IN,
        Some(text) => {
            text.trim().parse::<u64>().ok().filter(|s| (MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(s)).ok_or_else(
                || {
                    ApiError::param(
                        "expires_in",
                        format!("`expires_in` must be {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN} seconds"),
                    )
                },
            )?
        }
    };
    let value = http::HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| ApiError::InvalidToken("the API key is not text".into()))?;
    parts.headers.insert(http::header::AUTHORIZATION, value);
    let caller = identify::<H, super::Gateway>(host, &parts.headers, request_id).await?;
    if caller.key.is_none() {
        return Err(ApiError::InvalidToken("only an API key can be exchanged for a token".into()));
    }
    let settings = Settings::from_host(host)?;
    let token = auth::issue_for(&settings, &caller.principal, host.now_ms(), expires_in)?;
    let body = json!({ "access_token": token, "token_type": "bearer", "expires_in": expires_in });
    let mut response = web::json(http::StatusCode::OK, &body);
    web::set_header(&mut response, "cache-control", "no-store");
    Ok(response)
}

/// The body's fields: a JSON object's string and number values, or a URL-encoded form's.
fn fields(headers: &http::HeaderMap, bytes: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let text = std::str::from_utf8(bytes).map_err(|_| ApiError::InvalidRequest("the form is not UTF-8".into()))?;
        return Ok(text
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect());
    }
    let object: serde_json::Map<String, Value> =
        serde_json::from_slice(bytes).map_err(|err| ApiError::MalformedJson(err.to_string()))?;
    Ok(object
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(text) => Some((k, text)),
            Value::Number(n) => Some((k, n.to_string())),
            _ => None,
        })
        .collect())
}

/// A form value: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}
