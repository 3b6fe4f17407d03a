//! SSO: tokens from the users' identity provider, RS256 or ES256, checked against its JSON Web
//! Key Set (`JWKS_URL`).
//!
//! A token's header names its algorithm and, usually, its key (`kid`); the key comes from the
//! JWKS, fetched with `Host::fetch` and kept per instance for `JWKS_CACHE_SECS`. A `kid` the
//! cached set does not hold (the provider rotated its keys) fetches the set again, at most once
//! a minute, so tokens naming made-up keys cannot turn every request into a fetch. The claims
//! are checked as [`crate::auth`] checks its own tokens (`exp`, `nbf`, `iat` with the same
//! leeway, `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_MAX_TTL_SECS`); the tenant and the role are read
//! from the claims `JWT_TENANT_CLAIM` and `JWT_ROLE_CLAIM` name (a dotted name reaches into
//! nested objects, `org.id`, when no claim has the whole name, as namespaced URLs do).
//!
//! Verification only, with RustCrypto's `rsa` (PKCS#1 v1.5) and `p256` (ECDSA); the SHA-256 is
//! hmac-sha256's, which the HS256 tokens already link. No key is generated and no randomness is
//! needed. The token's signed part is checked before any claim is read.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use serde_json::{Map, Value};

use opencode_runtime::executor::with_timeout;
use opencode_runtime::host::Host;

use crate::auth::{DEFAULT_MAX_TTL_SECS, LEEWAY_SECS};
use crate::error::ApiError;
use crate::jwt;

/// How long fetched keys are used unless `JWKS_CACHE_SECS` says otherwise.
pub const DEFAULT_JWKS_CACHE_SECS: u64 = 600;
/// A `kid` missing from the cached keys fetches them again at most this often.
const REFETCH_AFTER_MS: u64 = 60_000;
/// How long the JWKS may take to answer.
const FETCH_TIMEOUT_MS: u64 = 5_000;
/// The largest JWKS read (providers publish a few keys: a few KiB, certificate chains included).
const MAX_JWKS_BYTES: usize = 262_144;
/// Keys past this many in one set are ignored (a token without `kid` tries each that fits).
const MAX_KEYS: usize = 64;
/// RFC 7518 §3.3: RS256 keys are 2048 bits or more.
const MIN_RSA_BITS: usize = 2048;
/// A header longer than this is not one [`is_sso_token`] decodes.
const MAX_HEADER_CHARS: usize = 2048;
/// RFC 8017 §9.2, note 1: the DER `DigestInfo` prefix of a SHA-256 digest.
const SHA256_DIGEST_INFO: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// How SSO tokens are checked; there is nothing secret in it.
#[derive(Clone, PartialEq, Eq)]
pub struct SsoSettings {
    jwks_url: String,
    /// `jwks_url` without its query string or user info, for messages and logs.
    shown_url: String,
    issuer: Option<String>,
    audience: Option<String>,
    tenant_claim: String,
    role_claim: String,
    max_ttl_secs: u64,
    jwks_cache_secs: u64,
}

impl std::fmt::Debug for SsoSettings {
    // A JWKS URL may carry a key in its query string: only the rest is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoSettings")
            .field("jwks_url", &self.shown_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("tenant_claim", &self.tenant_claim)
            .field("role_claim", &self.role_claim)
            .field("max_ttl_secs", &self.max_ttl_secs)
            .field("jwks_cache_secs", &self.jwks_cache_secs)
            .finish()
    }
}

impl SsoSettings {
    /// `None` when `JWKS_URL` is unset (SSO off). Reads `JWKS_URL` (https, or http to the
    /// loopback host), `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_TENANT_CLAIM` (default `tenant`),
    /// `JWT_ROLE_CLAIM` (default `role`), `JWT_MAX_TTL_SECS` (as [`crate::auth::Settings`]) and
    /// `JWKS_CACHE_SECS` (default 600). Errors name the variable, never its value.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<SsoSettings>, ApiError> {
        let set = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let Some(jwks_url) = set("JWKS_URL") else { return Ok(None) };
        let shown_url = shown(&jwks_url)?;
        let positive = |name: &str, default: u64| match var(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| *secs > 0)
                .ok_or_else(|| ApiError::NotConfigured(format!("{name} must be a positive whole number"))),
        };
        Ok(Some(SsoSettings {
            jwks_url,
            shown_url,
            issuer: set("JWT_ISSUER"),
            audience: set("JWT_AUDIENCE"),
            tenant_claim: set("JWT_TENANT_CLAIM").unwrap_or_else(|| "tenant".to_owned()),
            role_claim: set("JWT_ROLE_CLAIM").unwrap_or_else(|| "role".to_owned()),
            max_ttl_secs: positive("JWT_MAX_TTL_SECS", DEFAULT_MAX_TTL_SECS)?,
            jwks_cache_secs: positive("JWKS_CACHE_SECS", DEFAULT_JWKS_CACHE_SECS)?,
        }))
    }
}

/// `url` as messages show it: scheme, host, port and path. Only https is fetched, or http to
/// this machine (a development identity provider).
fn shown(url: &str) -> Result<String, ApiError> {
    let refused = || ApiError::NotConfigured("JWKS_URL must be an https URL".into());
    let uri = url.parse::<http::Uri>().map_err(|_| refused())?;
    let host = uri.host().filter(|host| !host.is_empty()).ok_or_else(refused)?;
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    let scheme = uri.scheme_str().filter(|scheme| *scheme == "https" || (*scheme == "http" && loopback));
    let scheme = scheme.ok_or_else(refused)?;
    let port = uri.port_u16().map(|port| format!(":{port}")).unwrap_or_default();
    Ok(format!("{scheme}://{host}{port}{}", uri.path()))
}

/// Whether `token` is a JWT signed with an algorithm this module verifies (its header's `alg`
/// is RS256 or ES256). Only the header is decoded.
pub fn is_sso_token(token: &str) -> bool {
    let Some((header, _)) = token.split_once('.') else { return false };
    if header.len() > MAX_HEADER_CHARS {
        return false;
    }
    let Ok(header) = Base64UrlSafeNoPadding::decode_to_vec(header, None) else { return false };
    serde_json::from_slice::<Value>(&header)
        .is_ok_and(|header| header.get("alg").and_then(Value::as_str).and_then(Algorithm::from_name).is_some())
}

/// Who the token names, once it checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoClaims {
    pub subject: String,
    pub tenant: String,
    pub role: String,
    /// `exp`, in milliseconds.
    pub expires_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Rs256,
    Es256,
}

impl Algorithm {
    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }
}

/// One key of the set, as it was read.
struct Jwk {
    kid: Option<String>,
    /// The JWK's `alg`, when it names one: the key is for that algorithm only.
    alg: Option<String>,
    /// `use` is `sig` (or absent) and `key_ops`, if present, holds `verify`.
    for_signatures: bool,
    key: Key,
}

enum Key {
    Rsa(rsa::RsaPublicKey),
    Ec(p256::ecdsa::VerifyingKey),
    /// A key of another type or curve, or one that did not read (an RSA key under 2048 bits):
    /// its `kid` is known, so a token naming it is refused rather than fetching the set again.
    Unusable,
}

impl Jwk {
    fn fits(&self, alg: Algorithm) -> bool {
        let typed = matches!((&self.key, alg), (Key::Rsa(_), Algorithm::Rs256) | (Key::Ec(_), Algorithm::Es256));
        typed && self.for_signatures && self.alg.as_deref().is_none_or(|a| a == alg.name())
    }
}

/// A key set fetched for one URL.
struct Fetched {
    url: String,
    keys: Rc<[Jwk]>,
    fetched_at_ms: u64,
    /// The last fetch, the failed ones included: an unknown `kid` waits a minute from it.
    tried_at_ms: u64,
}

/// More JWKS URLs than this in one instance's life empty the table (one is the norm).
const MAX_SETS: usize = 8;

thread_local! {
    /// By URL: a list, as there is one URL (a map's code cost more Wasm than it could save).
    static JWKS: RefCell<Vec<Fetched>> = const { RefCell::new(Vec::new()) };
}

/// Checks `token`'s signature against the JWKS and its claims against `settings`. Refusals are
/// [`ApiError::InvalidToken`], naming the problem (never the token); a JWKS that cannot be
/// fetched or read is [`ApiError::NotConfigured`].
pub async fn verify<H: Host>(host: &H, token: &str, settings: &SsoSettings) -> Result<SsoClaims, ApiError> {
    let invalid = |why: &str| ApiError::InvalidToken(why.into());
    let malformed = || invalid("token is malformed");
    let (signed, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    let (header, payload) =
        signed.split_once('.').filter(|(_, payload)| !payload.contains('.')).ok_or_else(malformed)?;
    // Read as a `Value`, as the claims are: the JSON the gateway already parses, no new parser.
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|_| malformed())?;
    let Value::Object(header) = header else { return Err(malformed()) };
    let text = |name: &str| match header.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.as_str())),
        Some(_) => Err(malformed()),
    };
    let alg = text("alg")?
        .and_then(Algorithm::from_name)
        .ok_or_else(|| invalid("token is not RS256 or ES256 (the algorithms accepted from the identity provider)"))?;
    if header.contains_key("crit") {
        return Err(invalid("token has critical header extensions (`crit`), which are not supported"));
    }
    let typ = text("typ")?;
    if typ.is_some_and(|typ| !["JWT", "at+jwt", "application/at+jwt"].iter().any(|t| typ.eq_ignore_ascii_case(t))) {
        return Err(invalid("token's `typ` is not JWT"));
    }
    let kid = text("kid")?;
    let signature = decode(signature)?;
    let digest = hmac_sha256::Hash::hash(signed.as_bytes());
    let now_ms = host.now_ms();

    let knows = |keys: &[Jwk], kid: &str| keys.iter().any(|key| key.kid.as_deref() == Some(kid));
    // Fresh keys are used as they are, unless the token names a key they lack and the last
    // fetch was a minute ago or more.
    let keys = match cached(settings, now_ms) {
        Some((keys, tried_at_ms))
            if kid.is_none_or(|kid| knows(&keys, kid)) || now_ms.saturating_sub(tried_at_ms) < REFETCH_AFTER_MS =>
        {
            keys
        }
        _ => fetch(host, settings, now_ms).await?,
    };
    let candidates = keys.iter().filter(|key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)));
    let mut candidates = candidates.filter(|key| key.fits(alg)).peekable();
    if candidates.peek().is_none() {
        return Err(if kid.is_some_and(|kid| knows(&keys, kid)) {
            ApiError::InvalidToken(format!("the JWKS key the token names (`kid`) is not usable for {}", alg.name()))
        } else if kid.is_some() {
            invalid("token's signing key (`kid`) is not in the JWKS")
        } else {
            ApiError::InvalidToken(format!("the JWKS has no key for {}", alg.name()))
        });
    }
    if !candidates.any(|key| signed_by(&key.key, &digest, &signature)) {
        return Err(invalid("signature does not match"));
    }

    let claims: Value = serde_json::from_slice(&decode(payload)?).map_err(|_| malformed())?;
    let Value::Object(claims) = claims else { return Err(malformed()) };
    check_claims(&claims, settings, now_ms)
}

/// Whether `signature` over the SHA-256 `digest` is `key`'s.
fn signed_by(key: &Key, digest: &[u8; 32], signature: &[u8]) -> bool {
    match key {
        Key::Rsa(key) => {
            let scheme = rsa::Pkcs1v15Sign { hash_len: Some(digest.len()), prefix: Box::from(SHA256_DIGEST_INFO) };
            key.verify(scheme, digest, signature).is_ok()
        }
        // JWS signs ES256 as r || s, 32 bytes each (RFC 7518 §3.4), not as DER.
        Key::Ec(key) => {
            signature.len() == 64
                && p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|sig| key.verify_prehash(digest, &sig).is_ok())
        }
        Key::Unusable => false,
    }
}

/// The times, issuer, audience and lifetime checked as auth.rs checks them; then who it is.
fn check_claims(claims: &Map<String, Value>, settings: &SsoSettings, now_ms: u64) -> Result<SsoClaims, ApiError> {
    let invalid = |why: &str| ApiError::InvalidToken(why.into());
    let date = |name: &str| match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_f64()
            .map(|secs| Some(jwt::millis(secs)))
            .ok_or_else(|| ApiError::InvalidToken(format!("token's `{name}` claim is not a NumericDate"))),
    };
    let expires_at = date("exp")?.ok_or_else(|| invalid("token has no `exp` claim"))?;
    if now_ms.saturating_sub(LEEWAY_SECS.saturating_mul(1000)) > expires_at {
        return Err(invalid("token has expired"));
    }
    let (not_before, issued_at) = (date("nbf")?, date("iat")?);
    let latest_start = now_ms.saturating_add(LEEWAY_SECS.saturating_mul(1000));
    if [not_before, issued_at].into_iter().flatten().any(|at| at > latest_start) {
        return Err(invalid("token is not valid yet"));
    }
    if settings.issuer.as_deref().is_some_and(|issuer| claims.get("iss").and_then(Value::as_str) != Some(issuer)) {
        return Err(invalid("token's issuer (`iss`) is not JWT_ISSUER"));
    }
    let audiences = jwt::Claims { aud: claims.get("aud").cloned(), ..jwt::Claims::default() };
    if settings.audience.as_deref().is_some_and(|audience| !audiences.has_audience(audience)) {
        return Err(invalid("token's audience (`aud`) is not JWT_AUDIENCE"));
    }
    if expires_at.saturating_sub(issued_at.unwrap_or(now_ms)) > settings.max_ttl_secs.saturating_mul(1000) {
        return Err(ApiError::InvalidToken(format!(
            "token lives longer than JWT_MAX_TTL_SECS allows ({} s)",
            settings.max_ttl_secs
        )));
    }
    let text = |name: &str| match claim(claims, name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            Err(ApiError::InvalidToken(format!("token has no `{name}` claim")))
        }
        Some(_) => Err(ApiError::InvalidToken(format!("token's `{name}` claim is not a string"))),
    };
    Ok(SsoClaims {
        subject: text("sub")?,
        tenant: text(&settings.tenant_claim)?,
        role: text(&settings.role_claim)?,
        expires_at_ms: expires_at,
    })
}

/// The claim called `name`; failing that, a dotted name is a path into nested objects (`org.id`;
/// `https://example.com/claims.tenant` finds the `tenant` of the claim named by the URL).
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    name.match_indices('.').find_map(|(at, _)| {
        let (outer, rest) = name.split_at(at);
        claim(claims.get(outer)?.as_object()?, rest.strip_prefix('.')?)
    })
}

fn decode(segment: &str) -> Result<Vec<u8>, ApiError> {
    Base64UrlSafeNoPadding::decode_to_vec(segment, None)
        .map_err(|_| ApiError::InvalidToken("token is malformed".into()))
}

/// The keys cached for `settings`' URL and when they were last fetched, while still fresh.
fn cached(settings: &SsoSettings, now_ms: u64) -> Option<(Rc<[Jwk]>, u64)> {
    let max_age_ms = settings.jwks_cache_secs.saturating_mul(1000);
    JWKS.with(|sets| {
        let sets = sets.borrow();
        let fetched = sets.iter().find(|set| set.url == settings.jwks_url)?;
        (now_ms.saturating_sub(fetched.fetched_at_ms) < max_age_ms).then(|| (fetched.keys.clone(), fetched.tried_at_ms))
    })
}

/// Fetches the set (`GET JWKS_URL`) and caches it. A failure still counts as a try, so an
/// unknown `kid` does not fetch again within the minute; the keys held before stay.
async fn fetch<H: Host>(host: &H, settings: &SsoSettings, now_ms: u64) -> Result<Rc<[Jwk]>, ApiError> {
    let fetched = get(host, settings).await;
    JWKS.with(|sets| {
        let mut sets = sets.borrow_mut();
        match (&fetched, sets.iter_mut().find(|set| set.url == settings.jwks_url)) {
            (Ok(keys), Some(held)) => {
                (held.keys, held.fetched_at_ms, held.tried_at_ms) = (keys.clone(), now_ms, now_ms);
            }
            (Ok(keys), None) => {
                if sets.len() >= MAX_SETS {
                    sets.clear();
                }
                let url = settings.jwks_url.clone();
                sets.push(Fetched { url, keys: keys.clone(), fetched_at_ms: now_ms, tried_at_ms: now_ms });
            }
            (Err(_), Some(held)) => held.tried_at_ms = now_ms,
            (Err(_), None) => {}
        }
    });
    fetched
}

async fn get<H: Host>(host: &H, settings: &SsoSettings) -> Result<Rc<[Jwk]>, ApiError> {
    let shown = &settings.shown_url;
    let unavailable = |why: String| ApiError::NotConfigured(format!("the JWKS at {shown} {why}"));
    let request = http::Request::get(settings.jwks_url.as_str())
        .header(http::header::ACCEPT, "application/json")
        .body(Bytes::new())
        .map_err(|_| unavailable("is not a URL that can be fetched".into()))?;
    // A runtime's message may quote the URL: never with its query string.
    let failed = |what: &str, error: opencode_runtime::HostError| {
        unavailable(format!("{what} ({})", error.to_string().replace(&settings.jwks_url, shown)))
    };
    let call = async {
        let response = host.fetch(request).await.map_err(|e| failed("could not be fetched", e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("answered {}", status.as_u16())));
        }
        let body = response.into_body().collect(MAX_JWKS_BYTES).await.map_err(|e| failed("could not be read", e))?;
        read_jwks(&body).ok_or_else(|| unavailable("is not a JSON Web Key Set".into()))
    };
    with_timeout(host, FETCH_TIMEOUT_MS, call)
        .await
        .unwrap_or_else(|| Err(unavailable(format!("did not answer within {} s", FETCH_TIMEOUT_MS / 1000))))
}

/// The keys of a JWKS document (RFC 7517 §5): `None` unless it is an object with a `keys` list.
/// Keys that do not read are kept as unusable, by their `kid`. Read as a `Value`, like the
/// token's header and claims: derived deserializers for these shapes cost the gateway ~6 KB of
/// gzipped Wasm more.
fn read_jwks(body: &[u8]) -> Option<Rc<[Jwk]>> {
    let set: Value = serde_json::from_slice(body).ok()?;
    let keys = set.get("keys")?.as_array()?.iter().take(MAX_KEYS).filter(|key| key.is_object()).map(|jwk| {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let for_signatures = text("use").is_none_or(|usage| usage == "sig")
            && jwk
                .get("key_ops")
                .is_none_or(|ops| ops.as_array().is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify"))));
        let key = match (text("kty"), text("crv")) {
            (Some("RSA"), _) => rsa_key(text("n"), text("e")),
            (Some("EC"), Some("P-256")) => ec_key(text("x"), text("y")),
            _ => None,
        };
        let (kid, alg) = (text("kid").map(str::to_owned), text("alg").map(str::to_owned));
        Jwk { kid, alg, for_signatures, key: key.unwrap_or(Key::Unusable) }
    });
    Some(keys.collect())
}

fn rsa_key(n: Option<&str>, e: Option<&str>) -> Option<Key> {
    let number = |part: Option<&str>| Base64UrlSafeNoPadding::decode_to_vec(part?, None).ok();
    let (n, e) = (rsa::BigUint::from_bytes_be(&number(n)?), rsa::BigUint::from_bytes_be(&number(e)?));
    if n.bits() < MIN_RSA_BITS {
        return None;
    }
    rsa::RsaPublicKey::new(n, e).ok().map(Key::Rsa)
}

fn ec_key(x: Option<&str>, y: Option<&str>) -> Option<Key> {
    let coordinate = |part: Option<&str>| {
        let bytes = Base64UrlSafeNoPadding::decode_to_vec(part?, None).ok()?;
        <[u8; 32]>::try_from(bytes).ok().map(p256::FieldBytes::from)
    };
    // From the affine coordinates: the point is checked to be on the curve.
    let point = p256::EncodedPoint::from_affine_coordinates(&coordinate(x)?, &coordinate(y)?, false);
    p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok().map(Key::Ec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    use std::cell::RefCell;
    use std::time::Duration;

    use ct_codecs::Encoder;
    use opencode_testkit::{json_response, TestHost};
    use p256::ecdsa::signature::Signer;
    use rsa::traits::PublicKeyParts;
    use serde_json::json;
    use sha2::Digest;

    /// The scalar of the P-256 test key (any value below the group order is a key).
    const EC_SCALAR: [u8; 32] = [7; 32];
    const ISSUER: &str = "https://idp.example";

    fn b64(bytes: &[u8]) -> String {
        Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
    }

    fn rsa_private(fixture: &str) -> rsa::RsaPrivateKey {
        let jwk: Value = serde_json::from_str(fixture).unwrap();
        let int = |name: &str| {
            rsa::BigUint::from_bytes_be(
                &Base64UrlSafeNoPadding::decode_to_vec(jwk[name].as_str().unwrap(), None).unwrap(),
            )
        };
        rsa::RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")]).unwrap()
    }

    fn rsa_2048() -> rsa::RsaPrivateKey {
        rsa_private(include_str!("../tests/fixtures/sso/rsa-2048.jwk.json"))
    }

    fn ec_p256() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&EC_SCALAR).unwrap()
    }

    fn rsa_jwk(key: &rsa::RsaPrivateKey, kid: &str) -> Value {
        let (n, e) = (b64(&key.n().to_bytes_be()), b64(&key.e().to_bytes_be()));
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": n, "e": e})
    }

    fn ec_jwk(key: &p256::ecdsa::SigningKey, kid: &str) -> Value {
        let point = key.verifying_key().to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
    }

    /// A token of any header and claims, signed over its first two parts by `sign`.
    fn token(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
        let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let signature = sign(signed.as_bytes());
        format!("{signed}.{}", b64(&signature))
    }

    fn rs256_signature(key: &rsa::RsaPrivateKey, signed: &[u8]) -> Vec<u8> {
        key.sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &sha2::Sha256::digest(signed)).unwrap()
    }

    fn rs256(key: &rsa::RsaPrivateKey, kid: Option<&str>, claims: &Value) -> String {
        let header = match kid {
            Some(kid) => json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            None => json!({"alg": "RS256", "typ": "JWT"}),
        };
        token(&header, claims, |signed| rs256_signature(key, signed))
    }

    fn es256(key: &p256::ecdsa::SigningKey, kid: Option<&str>, claims: &Value) -> String {
        let header = match kid {
            Some(kid) => json!({"alg": "ES256", "kid": kid}),
            None => json!({"alg": "ES256"}),
        };
        token(&header, claims, |signed| {
            let signature: p256::ecdsa::Signature = key.sign(signed);
            signature.to_bytes().to_vec()
        })
    }

    /// An identity provider: its JWKS (which a test may change) served to a test host.
    struct Idp {
        host: TestHost,
        jwks: Rc<RefCell<Value>>,
        /// The status the JWKS is served with (an outage is a 503).
        status: Rc<std::cell::Cell<u16>>,
        url: String,
    }

    impl Idp {
        /// `name` keeps each test's cache entry its own (the cache is per thread, by URL).
        fn new(name: &str, keys: Value) -> Idp {
            let jwks = Rc::new(RefCell::new(json!({ "keys": keys })));
            let status = Rc::new(std::cell::Cell::new(200));
            let (served, answered) = (jwks.clone(), status.clone());
            let host = TestHost::new().with_upstream(move |_request| {
                let (body, status) = (served.borrow().to_string(), answered.get());
                async move { Ok(json_response(status, &body)) }
            });
            Idp { host, jwks, status, url: format!("https://idp.example/{name}/jwks?api-key=not-shown") }
        }

        fn settings(&self, vars: &[(&str, &str)]) -> SsoSettings {
            let url = self.url.clone();
            let vars: Vec<(String, String)> = vars.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
            let var = move |name: &str| match name {
                "JWKS_URL" => Some(url.clone()),
                _ => vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
            };
            SsoSettings::from_vars(var).unwrap().unwrap()
        }

        fn fetches(&self) -> usize {
            self.host.requests().len()
        }

        /// Claims valid for an hour from the host's now.
        fn claims(&self) -> Value {
            let now = self.host.now_ms() / 1000;
            json!({"sub": "alice", "tenant": "acme", "role": "user", "iss": ISSUER, "aud": "opencode",
                "iat": now, "nbf": now, "exp": now + 3600})
        }
    }

    fn both_keys() -> Value {
        json!([rsa_jwk(&rsa_2048(), "rsa-1"), ec_jwk(&ec_p256(), "ec-1")])
    }

    fn refused(result: Result<SsoClaims, ApiError>) -> String {
        match result {
            Err(ApiError::InvalidToken(message)) => message,
            other => panic!("not refused as an invalid token: {other:?}"),
        }
    }

    fn with(claims: &Value, changes: Value) -> Value {
        let mut claims = claims.clone();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    #[tokio::test(start_paused = true)]
    async fn sso_rs256_and_es256_tokens_name_the_caller() {
        let idp = Idp::new("valid", both_keys());
        let settings = idp.settings(&[("JWT_ISSUER", ISSUER), ("JWT_AUDIENCE", "opencode")]);
        let claims = idp.claims();
        let expires_at_ms = claims["exp"].as_u64().unwrap() * 1000;
        let alice = SsoClaims { subject: "alice".into(), tenant: "acme".into(), role: "user".into(), expires_at_ms };
        for token in [rs256(&rsa_2048(), Some("rsa-1"), &claims), es256(&ec_p256(), Some("ec-1"), &claims)] {
            assert!(is_sso_token(&token));
            assert_eq!(verify(&idp.host, &token, &settings).await, Ok(alice.clone()));
        }
        // Without `kid`, every key of the token's type is tried.
        for token in [rs256(&rsa_2048(), None, &claims), es256(&ec_p256(), None, &claims)] {
            assert_eq!(verify(&idp.host, &token, &settings).await, Ok(alice.clone()));
        }
        // `aud` may be a list; an `iss` or `aud` is not required when its variable is unset.
        let listed = with(&claims, json!({"aud": ["other", "opencode"]}));
        assert!(verify(&idp.host, &es256(&ec_p256(), Some("ec-1"), &listed), &settings).await.is_ok());
        let bare = with(&claims, json!({"iss": null, "aud": null}));
        assert!(verify(&idp.host, &rs256(&rsa_2048(), Some("rsa-1"), &bare), &idp.settings(&[])).await.is_ok());
        assert_eq!(idp.fetches(), 1);
        let request = &idp.host.requests()[0];
        assert_eq!((request.method(), request.uri().to_string()), (&http::Method::GET, idp.url.clone()));
    }

    #[tokio::test(start_paused = true)]
    async fn sso_tenant_and_role_come_from_the_configured_claims() {
        let idp = Idp::new("claim-names", both_keys());
        let settings =
            idp.settings(&[("JWT_TENANT_CLAIM", "org.id"), ("JWT_ROLE_CLAIM", "https://opencode.example/role")]);
        let claims = with(
            &idp.claims(),
            json!({"tenant": "not-this", "role": null, "org": {"id": "acme", "name": "Acme"},
                "https://opencode.example/role": "admin"}),
        );
        let who = verify(&idp.host, &rs256(&rsa_2048(), Some("rsa-1"), &claims), &settings).await.unwrap();
        assert_eq!((who.tenant.as_str(), who.role.as_str()), ("acme", "admin"));
        // A namespaced claim holding an object is reached through its dotted name too.
        let nested = with(&idp.claims(), json!({"https://opencode.example/claims": {"tenant": "globex"}}));
        let settings = idp.settings(&[("JWT_TENANT_CLAIM", "https://opencode.example/claims.tenant")]);
        let who = verify(&idp.host, &es256(&ec_p256(), Some("ec-1"), &nested), &settings).await.unwrap();
        assert_eq!(who.tenant, "globex");

        let settings = idp.settings(&[("JWT_TENANT_CLAIM", "org.id")]);
        for (changes, expected) in [
            (json!({"org": {"name": "Acme"}}), "token has no `org.id` claim"),
            (json!({"org": {"id": 42}}), "token's `org.id` claim is not a string"),
            (json!({"org": {"id": ""}}), "token has no `org.id` claim"),
            (json!({"org": {"id": "acme"}, "role": ["user"]}), "token's `role` claim is not a string"),
            (json!({"org": {"id": "acme"}, "sub": null}), "token has no `sub` claim"),
        ] {
            let token = es256(&ec_p256(), Some("ec-1"), &with(&idp.claims(), changes));
            assert_eq!(refused(verify(&idp.host, &token, &settings).await), expected);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sso_issuer_audience_times_and_lifetime_are_checked() {
        let idp = Idp::new("claims", both_keys());
        let strict = idp.settings(&[("JWT_ISSUER", ISSUER), ("JWT_AUDIENCE", "opencode")]);
        let now = idp.host.now_ms() / 1000;
        let claims = idp.claims();
        for (changes, expected) in [
            (json!({"iss": "https://evil.example"}), "token's issuer (`iss`) is not JWT_ISSUER"),
            (json!({"iss": null}), "token's issuer (`iss`) is not JWT_ISSUER"),
            (json!({"aud": "other"}), "token's audience (`aud`) is not JWT_AUDIENCE"),
            (json!({"aud": ["a", "b"]}), "token's audience (`aud`) is not JWT_AUDIENCE"),
            (json!({"aud": null}), "token's audience (`aud`) is not JWT_AUDIENCE"),
            (json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 60}), "token has expired"),
            (json!({"exp": null}), "token has no `exp` claim"),
            (json!({"exp": "tomorrow"}), "token's `exp` claim is not a NumericDate"),
            (json!({"nbf": now + 600}), "token is not valid yet"),
            (json!({"iat": null, "exp": now + 86_401}), "token lives longer than JWT_MAX_TTL_SECS allows (86400 s)"),
        ] {
            for token in [
                rs256(&rsa_2048(), Some("rsa-1"), &with(&claims, changes.clone())),
                es256(&ec_p256(), Some("ec-1"), &with(&claims, changes.clone())),
            ] {
                assert_eq!(refused(verify(&idp.host, &token, &strict).await), expected, "{changes}");
            }
        }
        // The leeway is auth.rs's: 30 s past `exp` still passes, 31 s does not.
        let short = with(&claims, json!({"exp": now + 60}));
        let token = es256(&ec_p256(), Some("ec-1"), &short);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert!(verify(&idp.host, &token, &strict).await.is_ok());
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(refused(verify(&idp.host, &token, &strict).await), "token has expired");
        let hour = idp.settings(&[("JWT_MAX_TTL_SECS", "3600")]);
        let now = idp.host.now_ms() / 1000;
        let long = with(&claims, json!({"iat": now, "nbf": now, "exp": now + 3601}));
        assert!(refused(verify(&idp.host, &rs256(&rsa_2048(), Some("rsa-1"), &long), &hour).await)
            .contains("JWT_MAX_TTL_SECS"));
    }

    #[tokio::test(start_paused = true)]
    async fn sso_forged_tampered_and_confused_tokens_are_refused() {
        let idp = Idp::new("forged", both_keys());
        let settings = idp.settings(&[]);
        let claims = idp.claims();
        let good = rs256(&rsa_2048(), Some("rsa-1"), &claims);
        let (header, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();

        // Another payload under the first one's signature.
        let admin = b64(with(&claims, json!({"role": "admin"})).to_string().as_bytes());
        let tampered = format!("{header}.{admin}.{signature}");
        assert_eq!(refused(verify(&idp.host, &tampered, &settings).await), "signature does not match");
        let ec_good = es256(&ec_p256(), Some("ec-1"), &claims);
        let (ec_signed, ec_signature) = ec_good.rsplit_once('.').unwrap();
        let flipped = if ec_signature.starts_with('A') { 'B' } else { 'A' };
        let tampered = format!("{ec_signed}.{flipped}{}", &ec_signature[1..]);
        assert_eq!(refused(verify(&idp.host, &tampered, &settings).await), "signature does not match");
        // Signed by another key that claims the provider's `kid`.
        let impostor = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
        let forged = es256(&impostor, Some("ec-1"), &claims);
        assert_eq!(refused(verify(&idp.host, &forged, &settings).await), "signature does not match");
        // An ES256 signature in DER (not JWS's r || s) is not one.
        let der = token(&json!({"alg": "ES256", "kid": "ec-1"}), &claims, |signed| {
            let signature: p256::ecdsa::Signature = ec_p256().sign(signed);
            signature.to_der().as_bytes().to_vec()
        });
        assert_eq!(refused(verify(&idp.host, &der, &settings).await), "signature does not match");

        // `none`, and HS256 keyed with the public key (algorithm confusion), are not accepted.
        let public_jwk = rsa_jwk(&rsa_2048(), "rsa-1").to_string();
        let n = b64(&rsa_2048().n().to_bytes_be());
        let confused = [
            token(&json!({"alg": "none"}), &claims, |_| Vec::new()),
            token(&json!({"alg": "HS256", "kid": "rsa-1"}), &claims, |signed| {
                hmac_sha256::HMAC::mac(signed, public_jwk.as_bytes()).to_vec()
            }),
            token(&json!({"alg": "HS256", "kid": "rsa-1"}), &claims, |signed| {
                hmac_sha256::HMAC::mac(signed, n.as_bytes()).to_vec()
            }),
            token(&json!({"alg": "RS512", "kid": "rsa-1"}), &claims, |signed| rs256_signature(&rsa_2048(), signed)),
            token(&json!({"kid": "rsa-1"}), &claims, |signed| rs256_signature(&rsa_2048(), signed)),
        ];
        for token in confused {
            assert!(!is_sso_token(&token));
            let message = refused(verify(&idp.host, &token, &settings).await);
            assert_eq!(message, "token is not RS256 or ES256 (the algorithms accepted from the identity provider)");
        }
        // A header naming the other algorithm than the key's: an RSA signature under ES256, an
        // ES256 signature under RS256.
        let swapped = token(&json!({"alg": "ES256", "kid": "rsa-1"}), &claims, |s| rs256_signature(&rsa_2048(), s));
        let message = refused(verify(&idp.host, &swapped, &settings).await);
        assert_eq!(message, "the JWKS key the token names (`kid`) is not usable for ES256");
        let swapped = token(&json!({"alg": "RS256", "kid": "ec-1"}), &claims, |signed| {
            let signature: p256::ecdsa::Signature = ec_p256().sign(signed);
            signature.to_bytes().to_vec()
        });
        let message = refused(verify(&idp.host, &swapped, &settings).await);
        assert_eq!(message, "the JWKS key the token names (`kid`) is not usable for RS256");

        let crit = token(&json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}), &claims, |signed| {
            rs256_signature(&rsa_2048(), signed)
        });
        assert!(refused(verify(&idp.host, &crit, &settings).await).contains("crit"));
        let typed = token(&json!({"alg": "RS256", "kid": "rsa-1", "typ": "JOSE+JSON"}), &claims, |signed| {
            rs256_signature(&rsa_2048(), signed)
        });
        assert_eq!(refused(verify(&idp.host, &typed, &settings).await), "token's `typ` is not JWT");
        let access = token(&json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}), &claims, |signed| {
            rs256_signature(&rsa_2048(), signed)
        });
        assert!(verify(&idp.host, &access, &settings).await.is_ok(), "RFC 9068 access tokens");
        for broken in ["", "abc", "a.b", "a.b.c.d", "!!.e30.AA", &format!("{good}=")] {
            assert_eq!(refused(verify(&idp.host, broken, &settings).await), "token is malformed", "{broken}");
        }
        // No message repeats the token.
        assert!(!refused(verify(&idp.host, &tampered, &settings).await).contains(signature));
    }

    #[tokio::test(start_paused = true)]
    async fn sso_keys_of_the_wrong_type_use_or_algorithm_are_not_used() {
        let rsa = rsa_2048();
        let small = rsa_private(include_str!("../tests/fixtures/sso/rsa-1024.jwk.json"));
        let mut enc = rsa_jwk(&rsa, "rsa-enc");
        enc["use"] = json!("enc");
        let mut rs512 = rsa_jwk(&rsa, "rsa-512");
        rs512["alg"] = json!("RS512");
        let mut wrap_only = rsa_jwk(&rsa, "rsa-wrap");
        wrap_only["key_ops"] = json!(["wrapKey"]);
        let mut p384 = ec_jwk(&ec_p256(), "ec-384");
        p384["crv"] = json!("P-384");
        // A point off the curve (its `y` another point's) is no key.
        let mut off_curve = ec_jwk(&ec_p256(), "ec-off-curve");
        off_curve["y"] = ec_jwk(&p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap(), "other")["y"].clone();
        let mut no_alg = rsa_jwk(&rsa, "rsa-plain");
        no_alg.as_object_mut().unwrap().remove("alg");
        no_alg.as_object_mut().unwrap().remove("use");
        let keys = json!([
            enc, rs512, wrap_only, p384, off_curve, no_alg,
            rsa_jwk(&small, "rsa-1024"),
            // Claims the RSA key's `kid` with another type: an EC key and a symmetric one.
            ec_jwk(&ec_p256(), "rsa-typed"),
            {"kty": "oct", "kid": "shared", "k": b64(b"a-symmetric-key-0123456789-0123456789")},
        ]);
        let idp = Idp::new("wrong-keys", keys);
        let settings = idp.settings(&[]);
        let claims = idp.claims();
        for kid in ["rsa-enc", "rsa-512", "rsa-wrap", "rsa-1024", "rsa-typed", "shared"] {
            let token = rs256(if kid == "rsa-1024" { &small } else { &rsa }, Some(kid), &claims);
            let message = refused(verify(&idp.host, &token, &settings).await);
            assert_eq!(message, "the JWKS key the token names (`kid`) is not usable for RS256", "{kid}");
        }
        for kid in ["ec-384", "ec-off-curve"] {
            let message = refused(verify(&idp.host, &es256(&ec_p256(), Some(kid), &claims), &settings).await);
            assert_eq!(message, "the JWKS key the token names (`kid`) is not usable for ES256", "{kid}");
        }
        // The same RSA key, published without `use` or `alg`, verifies.
        assert!(verify(&idp.host, &rs256(&rsa, Some("rsa-plain"), &claims), &settings).await.is_ok());
        // Without `kid` only the usable key of the right type is tried.
        assert!(verify(&idp.host, &rs256(&rsa, None, &claims), &settings).await.is_ok());
        let message = refused(verify(&idp.host, &rs256(&small, None, &claims), &settings).await);
        assert_eq!(message, "signature does not match");
        let idp = Idp::new("no-ec-keys", json!([rsa_jwk(&rsa, "rsa-1")]));
        let message = refused(verify(&idp.host, &es256(&ec_p256(), None, &claims), &idp.settings(&[])).await);
        assert_eq!(message, "the JWKS has no key for ES256");
        assert_eq!(idp.fetches(), 1, "a known key set is not fetched again for a token without `kid`");
    }

    #[tokio::test(start_paused = true)]
    async fn sso_the_jwks_is_fetched_once_for_many_tokens_until_it_is_stale() {
        let idp = Idp::new("cached", both_keys());
        let settings = idp.settings(&[("JWKS_CACHE_SECS", "300")]);
        for n in 0..20 {
            let claims = with(&idp.claims(), json!({"sub": format!("user-{n}")}));
            let token = if n % 2 == 0 {
                rs256(&rsa_2048(), Some("rsa-1"), &claims)
            } else {
                es256(&ec_p256(), Some("ec-1"), &claims)
            };
            assert_eq!(verify(&idp.host, &token, &settings).await.unwrap().subject, format!("user-{n}"));
        }
        assert_eq!(idp.fetches(), 1);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(verify(&idp.host, &es256(&ec_p256(), Some("ec-1"), &idp.claims()), &settings).await.is_ok());
        assert_eq!(idp.fetches(), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(verify(&idp.host, &es256(&ec_p256(), Some("ec-1"), &idp.claims()), &settings).await.is_ok());
        assert_eq!(idp.fetches(), 2, "kept for JWKS_CACHE_SECS, then fetched again");
        // A key removed from the set stops verifying once the set is fetched again.
        idp.jwks.replace(json!({"keys": [rsa_jwk(&rsa_2048(), "rsa-1")]}));
        tokio::time::advance(Duration::from_secs(300)).await;
        let message = refused(verify(&idp.host, &es256(&ec_p256(), Some("ec-1"), &idp.claims()), &settings).await);
        assert_eq!(message, "token's signing key (`kid`) is not in the JWKS");
        assert_eq!(idp.fetches(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn sso_an_unknown_kid_fetches_the_jwks_again_at_most_once_a_minute() {
        let idp = Idp::new("rotation", json!([rsa_jwk(&rsa_2048(), "rsa-1")]));
        let settings = idp.settings(&[]);
        let rotated = |idp: &Idp| es256(&ec_p256(), Some("ec-2"), &idp.claims());
        assert!(verify(&idp.host, &rs256(&rsa_2048(), Some("rsa-1"), &idp.claims()), &settings).await.is_ok());
        assert_eq!(idp.fetches(), 1);
        let unknown = "token's signing key (`kid`) is not in the JWKS";
        // Fetched a moment ago: refused without another fetch, however many such tokens come.
        for _ in 0..5 {
            assert_eq!(refused(verify(&idp.host, &rotated(&idp), &settings).await), unknown);
        }
        assert_eq!(idp.fetches(), 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(refused(verify(&idp.host, &rotated(&idp), &settings).await), unknown);
        assert_eq!(idp.fetches(), 2, "a minute on, an unknown kid fetches the set again");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(refused(verify(&idp.host, &rotated(&idp), &settings).await), unknown);
        assert_eq!(idp.fetches(), 2);
        // The provider rotates: the new key is found by the next allowed fetch.
        idp.jwks.replace(json!({"keys": [rsa_jwk(&rsa_2048(), "rsa-1"), ec_jwk(&ec_p256(), "ec-2")]}));
        assert_eq!(refused(verify(&idp.host, &rotated(&idp), &settings).await), unknown);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(verify(&idp.host, &rotated(&idp), &settings).await.is_ok());
        assert!(verify(&idp.host, &rs256(&rsa_2048(), Some("rsa-1"), &idp.claims()), &settings).await.is_ok());
        assert_eq!(idp.fetches(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn sso_a_failed_refetch_keeps_the_keys_held_and_still_waits_a_minute() {
        let idp = Idp::new("refetch-outage", both_keys());
        let settings = idp.settings(&[]);
        assert!(verify(&idp.host, &es256(&ec_p256(), Some("ec-1"), &idp.claims()), &settings).await.is_ok());
        idp.status.set(503);
        tokio::time::advance(Duration::from_secs(60)).await;
        let unknown = es256(&ec_p256(), Some("ec-2"), &idp.claims());
        let outage = verify(&idp.host, &unknown, &settings).await;
        assert!(matches!(&outage, Err(ApiError::NotConfigured(m)) if m.ends_with("answered 503")), "{outage:?}");
        assert_eq!(idp.fetches(), 2);
        assert!(verify(&idp.host, &rs256(&rsa_2048(), Some("rsa-1"), &idp.claims()), &settings).await.is_ok());
        let message = refused(verify(&idp.host, &unknown, &settings).await);
        assert_eq!(message, "token's signing key (`kid`) is not in the JWKS");
        assert_eq!(idp.fetches(), 2, "the failed fetch counted as the minute's one");
    }

    #[tokio::test(start_paused = true)]
    async fn sso_a_jwks_that_cannot_be_had_is_a_configuration_error_without_the_query() {
        let claims = json!({"sub": "a", "tenant": "t", "role": "r", "exp": 4_000_000_000u64});
        let token = rs256(&rsa_2048(), Some("rsa-1"), &claims);
        let url = "https://idp.example/outage/jwks?api-key=secret-value";
        let settings = SsoSettings::from_vars(|name| (name == "JWKS_URL").then(|| url.to_owned())).unwrap().unwrap();
        let answers: [(u16, &str, &str); 4] = [
            (503, "{}", "answered 503"),
            (200, "<html>", "is not a JSON Web Key Set"),
            (200, r#"{"keys": {}}"#, "is not a JSON Web Key Set"),
            (200, "[]", "is not a JSON Web Key Set"),
        ];
        for (status, body, why) in answers {
            let host = TestHost::new().with_upstream(move |_| async move { Ok(json_response(status, body)) });
            let Err(ApiError::NotConfigured(message)) = verify(&host, &token, &settings).await else {
                panic!("{status} {body}")
            };
            assert_eq!(message, format!("the JWKS at https://idp.example/outage/jwks {why}"));
        }
        let host = TestHost::new().with_upstream(|_| async {
            Err(opencode_runtime::HostError::Connect(
                "could not reach https://idp.example/outage/jwks?api-key=secret-value".into(),
            ))
        });
        let Err(ApiError::NotConfigured(message)) = verify(&host, &token, &settings).await else { panic!() };
        assert!(message.contains("could not be fetched") && !message.contains("secret"), "{message}");
        // A provider that never answers, or sends headers and then nothing.
        let silent = TestHost::new().with_upstream(|_| std::future::pending());
        let stalled = TestHost::new().with_upstream(|_| async { Ok(opencode_testkit::hanging_response()) });
        for host in [silent, stalled] {
            let Err(ApiError::NotConfigured(message)) = verify(&host, &token, &settings).await else { panic!() };
            assert!(message.ends_with("did not answer within 5 s"), "{message}");
        }
        assert!(!format!("{settings:?}").contains("secret"));
    }

    #[tokio::test(start_paused = true)]
    async fn sso_tokens_minted_by_jwt_simple_verify_here() {
        use jwt_simple::prelude::{
            Claims, Duration as Valid, ECDSAP256KeyPairLike, ES256KeyPair, RS256KeyPair, RSAKeyPairLike,
        };
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Custom {
            tenant: String,
            role: String,
        }
        let idp = Idp::new("jwt-simple", both_keys());
        // jwt-simple stamps the real time.
        let real_now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        idp.host.set_now_ms(Some(real_now.as_millis() as u64));
        let settings = idp.settings(&[("JWT_ISSUER", ISSUER), ("JWT_AUDIENCE", "opencode")]);
        let claims = || {
            Claims::with_custom_claims(Custom { tenant: "acme".into(), role: "admin".into() }, Valid::from_secs(600))
                .with_subject("alice")
                .with_issuer(ISSUER)
                .with_audience("opencode")
        };
        let rsa =
            RS256KeyPair::from_pem(include_str!("../tests/fixtures/sso/rsa-2048.pem")).unwrap().with_key_id("rsa-1");
        let ec = ES256KeyPair::from_bytes(&EC_SCALAR).unwrap().with_key_id("ec-1");
        for token in [rsa.sign(claims()).unwrap(), ec.sign(claims()).unwrap()] {
            assert!(is_sso_token(&token));
            let who = verify(&idp.host, &token, &settings).await.unwrap();
            assert_eq!((who.subject.as_str(), who.tenant.as_str(), who.role.as_str()), ("alice", "acme", "admin"));
        }
    }

    #[test]
    fn sso_is_off_without_jwks_url_and_settings_read_their_defaults() {
        assert_eq!(SsoSettings::from_vars(|_| None), Ok(None));
        assert_eq!(SsoSettings::from_vars(|name| (name == "JWKS_URL").then(|| " ".to_owned())), Ok(None));
        let settings = SsoSettings::from_vars(|name| (name == "JWKS_URL").then(|| "https://idp.example/jwks".into()))
            .unwrap()
            .unwrap();
        assert_eq!((settings.tenant_claim.as_str(), settings.role_claim.as_str()), ("tenant", "role"));
        assert_eq!((settings.max_ttl_secs, settings.jwks_cache_secs), (DEFAULT_MAX_TTL_SECS, 600));
        assert_eq!((settings.issuer.as_deref(), settings.audience.as_deref()), (None, None));
        let loopback = "http://127.0.0.1:8080/jwks";
        let local = SsoSettings::from_vars(|name| (name == "JWKS_URL").then(|| loopback.into())).unwrap().unwrap();
        assert_eq!(local.shown_url, loopback);
    }

    #[test]
    fn sso_settings_errors_name_the_variable_not_its_value() {
        let read = |vars: &'static [(&'static str, &'static str)]| {
            SsoSettings::from_vars(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
        };
        for (vars, variable) in [
            (&[("JWKS_URL", "http://idp.example/jwks")][..], "JWKS_URL"),
            (&[("JWKS_URL", "idp.example/jwks")][..], "JWKS_URL"),
            (&[("JWKS_URL", "ftp://idp.example/jwks")][..], "JWKS_URL"),
            (&[("JWKS_URL", "https://idp.example/jwks"), ("JWKS_CACHE_SECS", "0")][..], "JWKS_CACHE_SECS"),
            (&[("JWKS_URL", "https://idp.example/jwks"), ("JWKS_CACHE_SECS", "ten")][..], "JWKS_CACHE_SECS"),
            (&[("JWKS_URL", "https://idp.example/jwks"), ("JWT_MAX_TTL_SECS", "-1")][..], "JWT_MAX_TTL_SECS"),
        ] {
            let Err(ApiError::NotConfigured(message)) = read(vars) else { panic!("{vars:?}") };
            assert!(message.contains(variable), "{message}");
            assert!(!message.contains("idp.example"), "{message}");
        }
        let set = read(&[
            ("JWKS_URL", " https://user:pw@idp.example:8443/keys?key=secret "),
            ("JWT_ISSUER", ISSUER),
            ("JWT_AUDIENCE", "opencode"),
            ("JWT_TENANT_CLAIM", "org.id"),
            ("JWT_ROLE_CLAIM", "roles"),
            ("JWT_MAX_TTL_SECS", "3600"),
            ("JWKS_CACHE_SECS", "60"),
        ])
        .unwrap()
        .unwrap();
        let shown = format!("{set:?}");
        assert!(shown.contains("https://idp.example:8443/keys") && shown.contains("org.id"), "{shown}");
        assert!(!shown.contains("secret") && !shown.contains("pw"), "{shown}");
        assert_eq!((set.max_ttl_secs, set.jwks_cache_secs), (3600, 60));
        assert_eq!(set.clone(), set);
    }

    #[test]
    fn sso_tokens_are_told_from_the_platforms_own_by_their_header_alone() {
        let own = crate::auth::issue("test-secret-0123456789-0123456789", "a", "t", "r", 1_000, 60).unwrap();
        assert!(!is_sso_token(&own));
        let header = |alg: &str| b64(json!({"alg": alg, "kid": "k"}).to_string().as_bytes());
        assert!(is_sso_token(&format!("{}.not-even-read", header("RS256"))));
        assert!(is_sso_token(&format!("{}.x.y", header("ES256"))));
        for other in ["HS256", "none", "RS512", "ES384", "PS256", "EdDSA"] {
            assert!(!is_sso_token(&format!("{}.x.y", header(other))), "{other}");
        }
        for junk in ["", "abc", ".", "!!.x.y", &format!("{}.x.y", b64(b"[\"RS256\"]"))] {
            assert!(!is_sso_token(junk), "{junk}");
        }
        let huge = b64(format!("{{\"alg\":\"RS256\",\"x\":\"{}\"}}", "a".repeat(4096)).as_bytes());
        assert!(!is_sso_token(&format!("{huge}.x.y")));
    }

    #[test]
    fn sso_the_sha256_digest_info_is_the_one_the_rsa_crate_derives_from_the_oid() {
        let derived = rsa::Pkcs1v15Sign::new::<sha2::Sha256>();
        assert_eq!((&*derived.prefix, derived.hash_len), (&SHA256_DIGEST_INFO[..], Some(32)));
    }
}
