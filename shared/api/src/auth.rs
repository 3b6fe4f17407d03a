//! Authentication: `Authorization: Bearer <JWT>`, HS256 with `JWT_SECRET`.
//!
//! Tokens carry `sub`, `tenant`, `role` (one of owner, admin, member, viewer) and `exp`; all
//! four are required. A token exchanged for an API key also names the key (`key_id`), so the
//! key's restrictions, limits and revocation still apply to it. `JWT_ISSUER` and
//! `JWT_AUDIENCE`, when set, must match the token's `iss` and `aud`; no token may live longer
//! than `JWT_MAX_TTL_SECS` (from its `iat`, or from now without one). Time comes from the host
//! (wall clocks are not available the same way on every runtime), so expiry is checked against
//! `Host::now_ms`. The token itself is read by [`crate::jwt`].

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::json;

use opencode_runtime::host::Host;

use opencode_core::access::{self, Action, Role};

use crate::error::ApiError;
use crate::jwt::{self, same_bytes, Refused};

/// Seconds of clock skew tolerated between the token's issuer and us (SSO tokens' too).
pub(crate) const LEEWAY_SECS: u64 = 30;
/// The shortest `JWT_SECRET`: RFC 7518 §3.2 asks for an HS256 key of at least 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;
/// The longest a token may live unless `JWT_MAX_TTL_SECS` says otherwise: a day.
pub const DEFAULT_MAX_TTL_SECS: u64 = 86_400;

/// How tokens are checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    secret: String,
    issuer: Option<String>,
    audience: Option<String>,
    max_ttl_secs: u64,
}

impl std::fmt::Debug for Settings {
    // The secret never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("max_ttl_secs", &self.max_ttl_secs)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads `JWT_SECRET`, `JWT_ISSUER`, `JWT_AUDIENCE` and `JWT_MAX_TTL_SECS`. Without a usable
    /// secret no token can be checked: the error says why, naming the variable, never its value.
    pub fn from_host<H: Host>(host: &H) -> Result<Settings, ApiError> {
        Settings::from_vars(|name| host.var(name))
    }

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings, ApiError> {
        let secret = var("JWT_SECRET").ok_or_else(|| ApiError::NotConfigured("JWT_SECRET is not set".into()))?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ApiError::NotConfigured(format!(
                "JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes: set a longer random secret"
            )));
        }
        let max_ttl_secs =
            match var("JWT_MAX_TTL_SECS") {
                None => DEFAULT_MAX_TTL_SECS,
                Some(value) => value.trim().parse::<u64>().ok().filter(|secs| *secs > 0).ok_or_else(|| {
                    ApiError::NotConfigured("JWT_MAX_TTL_SECS must be a positive whole number".into())
                })?,
            };
        let set = |name| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(Settings { secret, issuer: set("JWT_ISSUER"), audience: set("JWT_AUDIENCE"), max_ttl_secs })
    }
}

/// Who is calling, once the credential checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`, or the key's id for an API key.
    pub subject: String,
    pub tenant: String,
    pub role: Role,
    /// The API key the caller presented, or exchanged for its token.
    pub key_id: Option<String>,
}

impl Principal {
    /// Whether the caller may do `action` (the one permission table, `opencode_core::access`).
    pub fn may(&self, action: Action) -> bool {
        access::allows(self.role, action)
    }

    /// Refuses what the caller may not do, naming the role.
    pub fn require(&self, action: Action, what: &str) -> Result<(), ApiError> {
        if self.may(action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("role `{}` may not {what}", self.role.as_str())))
        }
    }
}

/// The request's bearer credential (`Authorization: Bearer ...`; `x-api-key` becomes one).
pub fn bearer(headers: &http::HeaderMap) -> Result<&str, ApiError> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or(ApiError::MissingToken)?;
    let value = value.to_str().map_err(|_| ApiError::InvalidToken("the authorization header is not text".into()))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::InvalidToken("expected `Bearer <API key or JWT>`".into()))
}

/// Checks the request's bearer token (a JWT) and returns the caller.
pub fn authenticate(headers: &http::HeaderMap, settings: &Settings, now_ms: u64) -> Result<Principal, ApiError> {
    verify(bearer(headers)?, settings, now_ms)
}

/// Tokens that passed [`verify`] in this instance, with their expiry. An app or a bot sends the
/// same token on every call, and checking its signature again (base64, JSON and HMAC in Wasm)
/// was the largest single piece of a chat request's own work. Once a token has passed, only
/// its expiry can turn it invalid (time moves one way, and no other check depends on it), so a
/// hit checks the expiry exactly as the library does. Per instance, bounded, and emptied when
/// the settings change.
struct Verified {
    settings: Option<Settings>,
    /// By the token's signed part (header and claims, which are no secret); the signature is
    /// compared in constant time, so a lookup's timing tells nothing about a stored one.
    tokens: HashMap<String, Remembered>,
}

struct Remembered {
    signature: String,
    principal: Principal,
    /// `exp`, in milliseconds.
    expires_at: u64,
}

/// More distinct tokens than this in one instance's life empty the table and start again.
const MAX_VERIFIED: usize = 64;

thread_local! {
    static VERIFIED: RefCell<Verified> = RefCell::new(Verified { settings: None, tokens: HashMap::new() });
}

/// Verifies one token.
pub fn verify(token: &str, settings: &Settings, now_ms: u64) -> Result<Principal, ApiError> {
    let (signed, signature) = token.rsplit_once('.').unwrap_or((token, ""));
    let known = VERIFIED.with(|verified| {
        let verified = verified.borrow();
        let remembered = verified.tokens.get(signed).filter(|_| verified.settings.as_ref() == Some(settings))?;
        same_bytes(remembered.signature.as_bytes(), signature.as_bytes())
            .then(|| (remembered.principal.clone(), remembered.expires_at))
    });
    if let Some((principal, expires_at)) = known {
        return if expired(expires_at, now_ms) {
            Err(ApiError::InvalidToken("token has expired".into()))
        } else {
            Ok(principal)
        };
    }
    let (principal, expires_at) = verify_signed(token, settings, now_ms)?;
    VERIFIED.with(|verified| {
        let mut verified = verified.borrow_mut();
        if verified.settings.as_ref() != Some(settings) || verified.tokens.len() >= MAX_VERIFIED {
            verified.tokens.clear();
            verified.settings = Some(settings.clone());
        }
        let remembered = Remembered { signature: signature.to_owned(), principal: principal.clone(), expires_at };
        verified.tokens.insert(signed.to_owned(), remembered);
    });
    Ok(principal)
}

/// Whether a token whose `exp` is `expires_at` (ms) has expired at `now_ms`, the leeway given.
fn expired(expires_at: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(LEEWAY_SECS.saturating_mul(1000)) > expires_at
}

/// Checks the signature and the claims of a token not seen before: the caller and `exp` (ms).
fn verify_signed(token: &str, settings: &Settings, now_ms: u64) -> Result<(Principal, u64), ApiError> {
    let invalid = |why: &str| ApiError::InvalidToken(why.into());
    let claims = jwt::verify(token, settings.secret.as_bytes()).map_err(|refused| match refused {
        Refused::Signature => invalid("signature does not match"),
        Refused::Unsupported => invalid("token is not HS256 (the only algorithm accepted)"),
        Refused::Malformed(_) => invalid("token is malformed"),
    })?;
    let expires_at = claims.exp.map(jwt::millis).ok_or_else(|| invalid("token has no `exp` claim"))?;
    if expired(expires_at, now_ms) {
        return Err(invalid("token has expired"));
    }
    let latest_start = now_ms.saturating_add(LEEWAY_SECS.saturating_mul(1000));
    if [claims.nbf, claims.iat].into_iter().flatten().any(|at| jwt::millis(at) > latest_start) {
        return Err(invalid("token is not valid yet"));
    }
    if settings.issuer.as_ref().is_some_and(|issuer| claims.iss.as_ref() != Some(issuer)) {
        return Err(invalid("token's issuer (`iss`) is not JWT_ISSUER"));
    }
    if settings.audience.as_ref().is_some_and(|audience| !claims.has_audience(audience)) {
        return Err(invalid("token's audience (`aud`) is not JWT_AUDIENCE"));
    }
    let from = claims.iat.map_or(now_ms, jwt::millis);
    if expires_at.saturating_sub(from) > settings.max_ttl_secs.saturating_mul(1000) {
        return Err(ApiError::InvalidToken(format!(
            "token lives longer than JWT_MAX_TTL_SECS allows ({} s)",
            settings.max_ttl_secs
        )));
    }
    let required = |value: Option<String>, name: &str| {
        value.filter(|v| !v.is_empty()).ok_or_else(|| ApiError::InvalidToken(format!("token has no `{name}` claim")))
    };
    let role = role_claim(&required(claims.role, "role")?)?;
    let principal = Principal {
        subject: required(claims.sub, "sub")?,
        tenant: required(claims.tenant, "tenant")?,
        role,
        key_id: claims.key_id.filter(|id| !id.is_empty()),
    };
    Ok((principal, expires_at))
}

/// A token's role claim (the platform's tokens and SSO tokens alike): one of the four roles.
pub(crate) fn role_claim(role: &str) -> Result<Role, ApiError> {
    Role::parse(role).ok_or_else(|| {
        let role: String = role.chars().take(32).collect();
        ApiError::InvalidToken(format!("token's role `{role}` is not one of owner, admin, member, viewer"))
    })
}

/// Mints a token (development tooling and tests; production tokens come from the users'
/// identity provider).
pub fn issue(
    secret: &str,
    subject: &str,
    tenant: &str,
    role: &str,
    now_ms: u64,
    valid_secs: u64,
) -> Result<String, ApiError> {
    issue_claims(secret, json!({ "sub": subject, "tenant": tenant, "role": role }), now_ms, valid_secs)
}

/// Mints a token for `principal` (the token exchange, and the gateway's token for a caller it
/// identified by SSO), with the issuer and audience the settings check.
pub fn issue_for(settings: &Settings, principal: &Principal, now_ms: u64, valid_secs: u64) -> Result<String, ApiError> {
    let mut claims = json!({ "sub": principal.subject, "tenant": principal.tenant, "role": principal.role.as_str() });
    if let Some(map) = claims.as_object_mut() {
        if let Some(key_id) = &principal.key_id {
            map.insert("key_id".into(), json!(key_id));
        }
        if let Some(issuer) = &settings.issuer {
            map.insert("iss".into(), json!(issuer));
        }
        if let Some(audience) = &settings.audience {
            map.insert("aud".into(), json!(audience));
        }
    }
    issue_claims(&settings.secret, claims, now_ms, valid_secs.min(settings.max_ttl_secs))
}

fn issue_claims(secret: &str, mut claims: serde_json::Value, now_ms: u64, valid_secs: u64) -> Result<String, ApiError> {
    let now = now_ms / 1000;
    let expires_at = now
        .checked_add(valid_secs)
        .filter(|exp| *exp < 1 << 53)
        .ok_or_else(|| ApiError::InvalidRequest(format!("a token cannot be valid for {valid_secs} s")))?;
    if let Some(map) = claims.as_object_mut() {
        map.insert("iat".into(), json!(now));
        map.insert("nbf".into(), json!(now));
        map.insert("exp".into(), json!(expires_at));
    }
    jwt::sign(&claims, secret.as_bytes()).map_err(|_| ApiError::Internal("could not sign a token".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const NOW: u64 = 1_767_225_600_000;
    const SECRET: &str = "test-secret-0123456789-0123456789";
    const OTHER: &str = "other-secret-0123456789-012345678";

    fn settings(secret: &str) -> Settings {
        Settings::from_vars(|name| (name == "JWT_SECRET").then(|| secret.to_owned())).unwrap()
    }

    fn bearer(token: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn a_valid_token_names_the_caller() {
        let token = issue(SECRET, "alice", "acme", "member", NOW, 3600).unwrap();
        let who = authenticate(&bearer(&token), &settings(SECRET), NOW + 1000).unwrap();
        assert_eq!(who, Principal { subject: "alice".into(), tenant: "acme".into(), role: Role::Member, key_id: None });
        assert!(!who.may(Action::ReadAudit));
    }

    #[test]
    fn missing_expired_tampered_and_foreign_tokens_are_refused() {
        assert_eq!(authenticate(&http::HeaderMap::new(), &settings(SECRET), NOW), Err(ApiError::MissingToken));
        let token = issue(SECRET, "alice", "acme", "member", NOW, 60).unwrap();
        let expired = authenticate(&bearer(&token), &settings(SECRET), NOW + 3_600_000).unwrap_err();
        assert_eq!(expired, ApiError::InvalidToken("token has expired".into()));
        let foreign = authenticate(&bearer(&token), &settings(OTHER), NOW).unwrap_err();
        assert_eq!(foreign, ApiError::InvalidToken("signature does not match".into()));
        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert!(matches!(authenticate(&bearer(&tampered), &settings(SECRET), NOW), Err(ApiError::InvalidToken(_))));
        assert!(matches!(authenticate(&bearer("abc"), &settings(SECRET), NOW), Err(ApiError::InvalidToken(_))));
        let mut basic = http::HeaderMap::new();
        basic.insert(http::header::AUTHORIZATION, "Basic YTpi".parse().unwrap());
        assert!(matches!(authenticate(&basic, &settings(SECRET), NOW), Err(ApiError::InvalidToken(_))));
    }

    #[test]
    fn claims_are_all_required() {
        let token = issue(SECRET, "alice", "", "member", NOW, 60).unwrap();
        assert_eq!(
            authenticate(&bearer(&token), &settings(SECRET), NOW),
            Err(ApiError::InvalidToken("token has no `tenant` claim".into()))
        );
        let token = issue(SECRET, "alice", "acme", "", NOW, 60).unwrap();
        assert_eq!(
            authenticate(&bearer(&token), &settings(SECRET), NOW),
            Err(ApiError::InvalidToken("token has no `role` claim".into()))
        );
    }

    #[test]
    fn a_lifetime_past_the_end_of_time_is_refused_not_a_panic() {
        // now + valid_secs overflowed.
        assert!(matches!(issue(SECRET, "alice", "acme", "member", NOW, u64::MAX), Err(ApiError::InvalidRequest(_))));
    }

    #[test]
    fn a_token_seen_before_still_expires_and_still_needs_the_right_secret() {
        let (secret, checked) = (SECRET, &settings(SECRET));
        let token = issue(secret, "alice", "acme", "member", NOW, 60).unwrap();
        let alice = Principal { subject: "alice".into(), tenant: "acme".into(), role: Role::Member, key_id: None };
        assert_eq!(authenticate(&bearer(&token), checked, NOW), Ok(alice.clone()));
        assert_eq!(authenticate(&bearer(&token), checked, NOW + 1000), Ok(alice.clone()));
        // The library's edge: valid through exp + leeway, expired a millisecond later.
        let last_valid_ms = NOW + (60 + LEEWAY_SECS) * 1000;
        assert_eq!(authenticate(&bearer(&token), checked, last_valid_ms), Ok(alice.clone()));
        let expired = ApiError::InvalidToken("token has expired".into());
        assert_eq!(authenticate(&bearer(&token), checked, last_valid_ms + 1), Err(expired));
        let foreign = authenticate(&bearer(&token), &settings(OTHER), NOW).unwrap_err();
        assert_eq!(foreign, ApiError::InvalidToken("signature does not match".into()));
        assert_eq!(authenticate(&bearer(&token), checked, NOW), Ok(alice));
    }

    #[test]
    fn a_remembered_token_with_another_signature_is_checked_again() {
        let (secret, checked) = (SECRET, &settings(SECRET));
        let token = issue(secret, "alice", "acme", "member", NOW, 60).unwrap();
        assert!(authenticate(&bearer(&token), checked, NOW).is_ok());
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{signed}.{flipped}{}", &signature[1..]);
        let refused = authenticate(&bearer(&forged), checked, NOW).unwrap_err();
        assert_eq!(refused, ApiError::InvalidToken("signature does not match".into()));
        assert!(authenticate(&bearer(&format!("{signed}.")), checked, NOW).is_err());
        assert!(authenticate(&bearer(signed), checked, NOW).is_err());
        assert!(authenticate(&bearer(&token), checked, NOW).is_ok());
        assert!(!same_bytes(b"ab", b"abc") && !same_bytes(b"abc", b"abd") && same_bytes(b"abc", b"abc"));
    }

    #[test]
    fn more_tokens_than_are_remembered_all_verify() {
        let (secret, checked) = (SECRET, &settings(SECRET));
        let tokens: Vec<String> = (0..2 * MAX_VERIFIED + 1)
            .map(|n| issue(secret, &format!("user-{n}"), "acme", "member", NOW, 60).unwrap())
            .collect();
        for round in 0..2 {
            for (n, token) in tokens.iter().enumerate() {
                let who = authenticate(&bearer(token), checked, NOW + round).unwrap();
                assert_eq!(who.subject, format!("user-{n}"));
            }
        }
    }

    #[test]
    fn no_secret_means_not_configured() {
        assert!(matches!(Settings::from_vars(|_| None), Err(ApiError::NotConfigured(_))));
    }

    #[test]
    fn a_secret_shorter_than_32_bytes_is_a_configuration_error_naming_it() {
        let short = Settings::from_vars(|name| (name == "JWT_SECRET").then(|| "short-secret-0123456789".to_owned()));
        let Err(ApiError::NotConfigured(message)) = short else { panic!("{short:?}") };
        assert!(message.contains("JWT_SECRET") && message.contains("32"), "{message}");
        assert!(!message.contains("short-secret"), "the value is never shown: {message}");
    }

    fn with(vars: &'static [(&'static str, &'static str)]) -> Settings {
        Settings::from_vars(|name| match name {
            "JWT_SECRET" => Some(SECRET.to_owned()),
            other => vars.iter().find(|(n, _)| *n == other).map(|(_, v)| (*v).to_owned()),
        })
        .unwrap()
    }

    fn token_from(issuer: Option<&str>, audience: Option<&str>, valid_secs: u64) -> String {
        let now = NOW / 1000;
        let mut claims = json!({"sub": "alice", "tenant": "acme", "role": "member", "iat": now, "nbf": now, "exp": now + valid_secs});
        let map = claims.as_object_mut().unwrap();
        if let Some(issuer) = issuer {
            map.insert("iss".into(), json!(issuer));
        }
        if let Some(audience) = audience {
            map.insert("aud".into(), json!(audience));
        }
        jwt::sign(&claims, SECRET.as_bytes()).unwrap()
    }

    #[test]
    fn issuer_and_audience_are_checked_when_set() {
        let strict = with(&[("JWT_ISSUER", "https://idp.example"), ("JWT_AUDIENCE", "opencode")]);
        let good = token_from(Some("https://idp.example"), Some("opencode"), 60);
        assert!(authenticate(&bearer(&good), &strict, NOW).is_ok());
        for (token, why) in [
            (token_from(Some("https://evil.example"), Some("opencode"), 60), "JWT_ISSUER"),
            (token_from(None, Some("opencode"), 60), "JWT_ISSUER"),
            (token_from(Some("https://idp.example"), Some("other"), 60), "JWT_AUDIENCE"),
        ] {
            let Err(ApiError::InvalidToken(message)) = authenticate(&bearer(&token), &strict, NOW) else {
                panic!("accepted: {why}")
            };
            assert!(message.contains(why), "{message}");
        }
        assert!(authenticate(&bearer(&good), &settings(SECRET), NOW).is_ok(), "unset means unchecked");
    }

    #[test]
    fn a_token_living_longer_than_the_maximum_is_refused() {
        let day = token_from(None, None, DEFAULT_MAX_TTL_SECS);
        assert!(authenticate(&bearer(&day), &settings(SECRET), NOW).is_ok());
        let longer = token_from(None, None, DEFAULT_MAX_TTL_SECS + 1);
        let refused = authenticate(&bearer(&longer), &settings(SECRET), NOW).unwrap_err();
        assert!(matches!(&refused, ApiError::InvalidToken(m) if m.contains("JWT_MAX_TTL_SECS")), "{refused:?}");
        let hour = with(&[("JWT_MAX_TTL_SECS", "3600")]);
        assert!(authenticate(&bearer(&token_from(None, None, 3600)), &hour, NOW).is_ok());
        assert!(authenticate(&bearer(&token_from(None, None, 3601)), &hour, NOW).is_err());
    }
}
