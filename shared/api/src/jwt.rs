//! HS256 JSON Web Tokens (RFC 7519 over RFC 7515's compact serialization): a token's signature
//! checked against the secret, and its claims read, nothing more.
//!
//! Written here rather than taken from jwt-simple, which this replaced: its errors are `anyhow`
//! errors, whose formatting links std's backtrace printer and symbol demangler, and with its
//! Unicode case tables it cost every function about 52 KiB gzipped on Spin, an eighth of the
//! size budget, for one HMAC and two small JSON objects. The primitives are crates (HMAC-SHA256,
//! base64url, serde_json); the tests check tokens against jwt-simple's own in both directions.

use serde::Deserialize;
use serde_json::Value;

use ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};

/// Why a token was refused; the messages are safe to show (no key material, no token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Malformed(&'static str),
    /// Another algorithm than HS256 (`none` included), or a critical extension.
    Unsupported,
    Signature,
}

/// The claims the platform reads; any other claim is ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    pub sub: Option<String>,
    pub tenant: Option<String>,
    pub role: Option<String>,
    /// The API key a token was exchanged for.
    pub key_id: Option<String>,
    pub iss: Option<String>,
    /// A string or a list of them.
    pub aud: Option<Value>,
    /// NumericDates: seconds since the epoch, maybe with a fraction.
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
}

impl Claims {
    /// Whether `aud` names `audience`.
    pub fn has_audience(&self, audience: &str) -> bool {
        match &self.aud {
            Some(Value::String(one)) => one == audience,
            Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        }
    }
}

/// A NumericDate in whole milliseconds (fractions of a millisecond dropped, negatives as 0).
pub fn millis(seconds: f64) -> u64 {
    let ms = (seconds * 1000.0).floor();
    if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    }
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

/// The claims of `token` when its signature is `secret`'s; the times are the caller's to check.
pub fn verify(token: &str, secret: &[u8]) -> Result<Claims, Refused> {
    const PARTS: Refused = Refused::Malformed("a token is three base64url parts joined by dots");
    // `header.payload` is what the signature covers.
    let (signed, signature) = token.rsplit_once('.').ok_or(PARTS)?;
    let (header, payload) = signed.split_once('.').filter(|(_, payload)| !payload.contains('.')).ok_or(PARTS)?;
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| Refused::Malformed("bad header"))?;
    if header.alg.as_deref() != Some("HS256") || header.crit.is_some() {
        return Err(Refused::Unsupported);
    }
    if header.typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
        return Err(Refused::Malformed("the header's `typ` is not JWT"));
    }
    let expected = hmac_sha256::HMAC::mac(signed.as_bytes(), secret);
    let given = decode(signature)?;
    if !same_bytes(&given, &expected) {
        return Err(Refused::Signature);
    }
    serde_json::from_slice(&decode(payload)?).map_err(|_| Refused::Malformed("bad claims"))
}

/// A token of `claims` (a JSON object) signed with `secret`.
pub fn sign(claims: &Value, secret: &[u8]) -> Result<String, Refused> {
    let header = encode(br#"{"alg":"HS256","typ":"JWT"}"#)?;
    let payload = encode(claims.to_string().as_bytes())?;
    let signed = format!("{header}.{payload}");
    let signature = encode(&hmac_sha256::HMAC::mac(signed.as_bytes(), secret))?;
    Ok(format!("{signed}.{signature}"))
}

fn decode(segment: &str) -> Result<Vec<u8>, Refused> {
    Base64UrlSafeNoPadding::decode_to_vec(segment, None).map_err(|_| Refused::Malformed("a part is not base64url"))
}

fn encode(bytes: &[u8]) -> Result<String, Refused> {
    Base64UrlSafeNoPadding::encode_to_string(bytes).map_err(|_| Refused::Malformed("too long to encode"))
}

/// Equality whose time depends on the lengths only.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret-0123456789-0123456789";

    fn part(value: &Value) -> String {
        encode(value.to_string().as_bytes()).unwrap()
    }

    /// A token with any header, signed.
    fn with_header(header: Value, claims: Value) -> String {
        let signed = format!("{}.{}", part(&header), part(&claims));
        format!("{signed}.{}", encode(&hmac_sha256::HMAC::mac(signed.as_bytes(), SECRET)).unwrap())
    }

    #[test]
    fn a_signed_token_gives_its_claims() {
        let token =
            sign(&json!({"sub": "alice", "tenant": "acme", "role": "user", "exp": 10, "aud": ["a", "b"]}), SECRET)
                .unwrap();
        let claims = verify(&token, SECRET).unwrap();
        assert_eq!(
            (claims.sub.as_deref(), claims.tenant.as_deref(), claims.exp),
            (Some("alice"), Some("acme"), Some(10.0))
        );
        assert!(claims.has_audience("b") && !claims.has_audience("c"));
        assert_eq!(verify(&token, b"another-secret-0123456789-0123456").unwrap_err(), Refused::Signature);
    }

    #[test]
    fn other_algorithms_critical_headers_and_broken_tokens_are_refused() {
        let claims = json!({"sub": "alice"});
        for header in [
            json!({"alg": "none"}),
            json!({"alg": "HS512"}),
            json!({"alg": "RS256"}),
            json!({}),
            json!({"alg": "HS256", "crit": ["exp"]}),
        ] {
            assert_eq!(
                verify(&with_header(header.clone(), claims.clone()), SECRET).unwrap_err(),
                Refused::Unsupported,
                "{header}"
            );
        }
        let unsigned = format!("{}.{}.", part(&json!({"alg": "none"})), part(&claims));
        assert!(verify(&unsigned, SECRET).is_err());
        let token = with_header(json!({"alg": "HS256", "typ": "jwt"}), claims.clone());
        assert!(verify(&token, SECRET).is_ok(), "typ is case-insensitive");
        assert!(verify(&with_header(json!({"alg": "HS256", "typ": "JOSE+JSON"}), claims), SECRET).is_err());
        for broken in ["", "a.b", "a.b.c.d", "!!.e30.AA", &format!("{token}=")] {
            assert!(matches!(verify(broken, SECRET), Err(Refused::Malformed(_))), "{broken}");
        }
    }

    #[test]
    fn numeric_dates_read_as_milliseconds() {
        assert_eq!((millis(1.5), millis(-3.0), millis(f64::NAN), millis(1e300)), (1500, 0, 0, u64::MAX));
    }

    /// Tokens minted by jwt-simple, a maintained implementation, verify here, and ours there.
    #[test]
    fn tokens_agree_with_jwt_simple_both_ways() {
        use jwt_simple::prelude::*;
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Custom {
            tenant: String,
            role: String,
        }
        let key = HS256Key::from_bytes(SECRET);
        let custom = Custom { tenant: "acme".into(), role: "admin".into() };
        let claims = Claims::with_custom_claims(custom, Duration::from_secs(60))
            .with_subject("alice")
            .with_issuer("https://idp.example")
            .with_audiences(HashSet::from(["opencode".to_owned(), "other".to_owned()]));
        let theirs = key.authenticate(claims).unwrap();
        let read = verify(&theirs, SECRET).unwrap();
        assert_eq!(
            (read.sub.as_deref(), read.role.as_deref(), read.iss.as_deref()),
            (Some("alice"), Some("admin"), Some("https://idp.example"))
        );
        assert!(read.has_audience("opencode") && read.exp.is_some() && read.iat.is_some());
        let ours =
            sign(&json!({"sub": "bob", "tenant": "t", "role": "user", "exp": 4_000_000_000u64}), SECRET).unwrap();
        let checked = key.verify_token::<Custom>(&ours, None).unwrap();
        assert_eq!((checked.subject.as_deref(), checked.custom.tenant.as_str()), (Some("bob"), "t"));
        assert!(HS256Key::from_bytes(b"wrong").verify_token::<Custom>(&ours, None).is_err());
    }
}
