//! Redaction of anything key-like in text that came from outside (a vendor's error message, a
//! connection error), before it is logged. Vendors echo parts of keys ("Incorrect API key
//! provided: sk-proj-****abcd"), prompts carry tokens, URLs carry credentials.
//!
//! A word (a run of letters, digits and `-_+/=.~`) is replaced by `[redacted]` when it looks
//! like a secret: a known key prefix (`sk-`, `sk_`, `AIza`, `ghp_`, `xox`, `ock_`, `eyJ` for a
//! JWT), the word after `Bearer` or `Basic`, the value of `key=`, `token=`, `password=` and the
//! like, the password of a URL's userinfo, or 24 characters or more mixing letters and digits. Ordinary words, numbers, ids
//! of a few characters and model names survive.

use std::borrow::Cow;

/// What a redacted word is replaced by.
pub const REDACTED: &str = "[redacted]";

/// Prefixes of vendors' keys and tokens.
const KEY_PREFIXES: &[&str] = &["sk-", "sk_", "AIza", "ghp_", "gho_", "github_pat_", "xox", "ock_", "eyJ", "whsec_"];

/// Authorization schemes: the next word is a secret whatever it looks like.
const SCHEMES: &[&str] = &["Bearer", "Basic"];

/// `name=value` pairs whose value is a secret.
const SECRET_KEYS: &[&str] = &["key", "api_key", "apikey", "token", "access_token", "password", "secret", "sig"];

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_+/=.~".contains(&b)
}

/// `text` with every key-like word replaced by [`REDACTED`]; borrowed when nothing was.
pub fn redact(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut after_secret_name = false;
    while i < bytes.len() {
        if !bytes.get(i).copied().is_some_and(is_word_byte) {
            i = i.saturating_add(1);
            continue;
        }
        let start = i;
        while bytes.get(i).copied().is_some_and(is_word_byte) {
            i = i.saturating_add(1);
        }
        // A sentence's full stop is not part of the word (a word of dots keeps its first).
        while let Some(last) = i.checked_sub(1).filter(|&last| last > start && bytes.get(last) == Some(&b'.')) {
            i = last;
        }
        let word = text.get(start..i).unwrap_or_default();
        // `scheme://user:password@host`: the word between `:` and `@`.
        let userinfo =
            start.checked_sub(1).and_then(|before| bytes.get(before)) == Some(&b':') && bytes.get(i) == Some(&b'@');
        let secret = std::mem::take(&mut after_secret_name) || userinfo || looks_secret(word);
        after_secret_name = SCHEMES.contains(&word);
        let replacement = if secret { Some(Cow::Borrowed(REDACTED)) } else { redact_pair(word) };
        if let Some(replacement) = replacement {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(text.get(copied..start).unwrap_or_default());
            out.push_str(&replacement);
            copied = i;
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(text.get(copied..).unwrap_or_default());
            Cow::Owned(out)
        }
    }
}

/// `key=value` with a secret key keeps the key and loses the value.
fn redact_pair(word: &str) -> Option<Cow<'static, str>> {
    if let Some((name, value)) = word.split_once('=') {
        let name_is_secret = SECRET_KEYS.iter().any(|key| name.eq_ignore_ascii_case(key));
        if name_is_secret && !value.is_empty() {
            return Some(Cow::Owned(format!("{name}={REDACTED}")));
        }
    }
    None
}

fn looks_secret(word: &str) -> bool {
    if KEY_PREFIXES.iter().any(|prefix| word.strip_prefix(prefix).is_some_and(|rest| rest.len() > 4)) {
        return true;
    }
    let letters = word.bytes().filter(u8::is_ascii_alphabetic).count();
    let digits = word.bytes().filter(u8::is_ascii_digit).count();
    word.len() >= 24 && letters > 0 && digits > 0 && !word.contains('.') && !word.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tokens_and_credentials_are_redacted() {
        let cases = [
            (
                "Incorrect API key provided: sk-proj-AbCdEf123456. You can find",
                "Incorrect API key provided: [redacted]. You can find",
            ),
            ("invalid x-api-key sk-ant-api03-abcdefgh", "invalid x-api-key [redacted]"),
            ("API key not valid: AIzaSyA1b2C3d4E5f6G7h8I9j0", "API key not valid: [redacted]"),
            ("Authorization: Bearer abc", "Authorization: Bearer [redacted]"),
            ("GET /search?q=rust&key=hunter2&n=3", "GET /search?q=rust&key=[redacted]&n=3"),
            ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "token [redacted]"),
            ("a3f9c2e1b7d4a6f8e0c1b2d3a4f5e6c7 leaked", "[redacted] leaked"),
            ("key ock_0123456789abcdefghijklmnopqrstuv", "key [redacted]"),
            (
                "connect to https://admin:hunter2@db.internal/x failed",
                "connect to https://admin:[redacted]@db.internal/x failed",
            ),
            ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Basic [redacted]"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone_and_borrowed() {
        for text in [
            "model `gpt-4.1-mini-2025-04-14` does not exist",
            "Rate limit reached for requests, retry after 20s",
            "https://api.openai.com/v1/chat/completions returned 503",
            "request req_0d54a87d909dd567 failed",
            "a basic error: bearer tokens are refused",
            "",
        ] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
