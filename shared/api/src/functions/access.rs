//! Who is calling: an API key (`ock_...`, as `Authorization: Bearer` or `x-api-key`), an HS256
//! token (the platform's own, or one exchanged for a key), or, at the gateway, an SSO token
//! (RS256/ES256 against `JWKS_URL`), which the gateway exchanges for a short-lived HS256 token
//! of the same caller before passing the request on, so that only its Wasm carries RSA and
//! elliptic-curve code. Refused credentials are audited (`auth.refused`, sampled).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use opencode_core::access;
use opencode_runtime::control::audit::{self, AuditEntry};
use opencode_runtime::control::keys::{self, KeyRecord};
use opencode_runtime::host::Host;

use crate::auth::{self, Principal, Settings};
use crate::error::ApiError;
use crate::sso::{self, SsoSettings};

use super::Function;

/// An identified caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The key presented (or exchanged for the token), with its restrictions and limits.
    pub key: Option<Rc<KeyRecord>>,
}

/// Identifies the caller of function `F` by the request's credential; a refusal is audited
/// (sampled), except by the functions only the gateway calls, which leave that to the gateway
/// (it refused the credential first).
pub async fn identify<H: Host, F: Function + ?Sized>(
    host: &H,
    headers: &http::HeaderMap,
    request_id: &str,
) -> Result<Caller, ApiError> {
    match identify_credential(host, headers).await {
        Ok(caller) => Ok(caller),
        Err((err, tenant)) => {
            if F::REACHED_DIRECTLY && matches!(err, ApiError::InvalidToken(_)) {
                audit_refusal(host, &err, tenant, request_id);
            }
            Err(err)
        }
    }
}

async fn identify_credential<H: Host>(
    host: &H,
    headers: &http::HeaderMap,
) -> Result<Caller, (ApiError, Option<String>)> {
    let token = auth::bearer(headers).map_err(|err| (err, None))?;
    let now = host.now_ms();
    if access::looks_like_key(token) {
        let key = keys::find_by_key(host, token).await.map_err(|err| (err.into(), None))?;
        let key = live(key, now)?;
        let principal = Principal {
            subject: key.id.clone(),
            tenant: key.tenant.clone(),
            role: key.role,
            key_id: Some(key.id.clone()),
        };
        return Ok(Caller { principal, key: Some(key) });
    }
    let settings = Settings::from_host(host).map_err(|err| (err, None))?;
    let mut principal = auth::verify(token, &settings, now).map_err(|err| (err, None))?;
    let key = match &principal.key_id {
        None => None,
        Some(id) => {
            let key = keys::find_by_id(host, id).await.map_err(|err| (err.into(), None))?;
            let key = live(key, now)?;
            if key.tenant != principal.tenant {
                return Err((ApiError::InvalidToken("token's key belongs to another tenant".into()), None));
            }
            // The key's role now, not when the token was made: a key changed since answers so.
            principal.role = key.role;
            Some(key)
        }
    };
    Ok(Caller { principal, key })
}

/// A key that can be used now.
fn live(key: Option<Rc<KeyRecord>>, now_ms: u64) -> Result<Rc<KeyRecord>, (ApiError, Option<String>)> {
    let key = key.ok_or_else(|| (ApiError::InvalidToken("unknown API key".into()), None))?;
    if key.revoked_at.is_some() {
        return Err((ApiError::InvalidToken("API key has been revoked".into()), Some(key.tenant.clone())));
    }
    if !key.is_live(now_ms) {
        return Err((ApiError::InvalidToken("API key has expired".into()), Some(key.tenant.clone())));
    }
    Ok(key)
}

fn audit_refusal<H: Host>(host: &H, err: &ApiError, tenant: Option<String>, request_id: &str) {
    let now = host.now_ms();
    let Some(count) = audit::sample_refusal(now) else { return };
    let entry = AuditEntry {
        id: 0,
        ts: now,
        action: "auth.refused".into(),
        actor: "anonymous".into(),
        tenant: tenant.unwrap_or_default(),
        target: None,
        request_id: request_id.to_owned(),
        detail: Some(format!(
            "{{\"reason\":{},\"refused_since_last_entry\":{count}}}",
            serde_json::Value::from(err.to_string())
        )),
    };
    let task_host = host.clone();
    host.spawn_background(Box::pin(async move {
        // Best effort: the refusal stands whether or not it is written.
        let _ = audit::record(&task_host, &entry).await;
    }));
}

/// Whether the request carries an SSO token (which only the gateway verifies).
pub fn carries_sso_token(headers: &http::HeaderMap) -> bool {
    auth::bearer(headers).is_ok_and(sso::is_sso_token)
}

/// How long the gateway's own token for an SSO caller lives (or less, when the SSO token does).
const EXCHANGED_SECS: u64 = 300;

thread_local! {
    /// SSO tokens already exchanged by this instance: by the SSO token, the platform's token and
    /// when it expires (ms). Bounded like auth.rs's table.
    static EXCHANGED: RefCell<HashMap<String, (String, u64)>> = RefCell::new(HashMap::new());
}

const MAX_EXCHANGED: usize = 64;

/// At the gateway: replaces an SSO token with the platform's HS256 token for the same caller,
/// so that the functions it calls check a token they can. Other credentials pass unchanged.
pub async fn exchange_sso<H: Host>(host: &H, headers: &mut http::HeaderMap) -> Result<(), ApiError> {
    let Ok(token) = auth::bearer(headers) else { return Ok(()) };
    if !sso::is_sso_token(token) {
        return Ok(());
    }
    let token = token.to_owned();
    let now = host.now_ms();
    let known = EXCHANGED.with(|exchanged| {
        exchanged
            .borrow()
            .get(&token)
            .filter(|(_, expires)| *expires > now.saturating_add(10_000))
            .map(|(t, _)| t.clone())
    });
    let platform_token = match known {
        Some(platform_token) => platform_token,
        None => {
            let settings = SsoSettings::from_vars(|name| host.var(name))?.ok_or_else(|| {
                ApiError::InvalidToken("an RS256/ES256 token needs SSO, and JWKS_URL is not set".into())
            })?;
            let claims = sso::verify(host, &token, &settings).await?;
            let role = auth::role_claim(&claims.role)?;
            let principal = Principal { subject: claims.subject, tenant: claims.tenant, role, key_id: None };
            let secs = (claims.expires_at_ms.saturating_sub(now) / 1_000).min(EXCHANGED_SECS);
            let platform_token = auth::issue_for(&Settings::from_host(host)?, &principal, now, secs)?;
            EXCHANGED.with(|exchanged| {
                let mut exchanged = exchanged.borrow_mut();
                if exchanged.len() >= MAX_EXCHANGED {
                    exchanged.clear();
                }
                exchanged.insert(token, (platform_token.clone(), now.saturating_add(secs.saturating_mul(1_000))));
            });
            platform_token
        }
    };
    let value = http::HeaderValue::from_str(&format!("Bearer {platform_token}"))
        .map_err(|_| ApiError::Internal("could not write the exchanged token".into()))?;
    headers.insert(http::header::AUTHORIZATION, value);
    Ok(())
}
