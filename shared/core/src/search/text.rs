//! Text the search vendors send or receive: queries, snippets with markup, URLs.

use super::{MAX_QUERY_CHARS, MAX_QUERY_WORDS};

pub(super) const MAX_TITLE_CHARS: usize = 200;
pub(super) const MAX_SNIPPET_CHARS: usize = 600;

/// The query to send: whitespace collapsed, at most [`MAX_QUERY_WORDS`] words and
/// [`MAX_QUERY_CHARS`] characters (cut at a word boundary). `None` when nothing is left.
pub fn normalize_query(text: &str) -> Option<String> {
    let mut query = String::new();
    for word in text.split_whitespace().take(MAX_QUERY_WORDS) {
        let extra = word.chars().count().saturating_add(usize::from(!query.is_empty()));
        if query.chars().count().saturating_add(extra) > MAX_QUERY_CHARS {
            if query.is_empty() {
                // One giant word: keep its first characters rather than nothing.
                query = word.chars().take(MAX_QUERY_CHARS).collect();
            }
            break;
        }
        if !query.is_empty() {
            query.push(' ');
        }
        query.push_str(word);
    }
    (!query.is_empty()).then_some(query)
}

/// An absolute `http(s)` URL with a host: the only kind worth citing.
pub(super) fn is_web_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else { return false };
    matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some_and(|h| !h.is_empty())
}

/// Plain text from a vendor's snippet: tags removed (Brave marks matches with `<strong>`),
/// the common entities decoded, whitespace collapsed, cut to `max` characters.
pub(super) fn plain(text: &str, max: usize) -> String {
    let mut stripped = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => stripped.push(c),
            _ => {}
        }
    }
    let decoded = decode_entities(&stripped);
    let collapsed = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn decode_entities(text: &str) -> String {
    const NAMED: &[(&str, &str)] = &[
        ("&amp;", "&"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#x27;", "'"),
        ("&#39;", "'"),
        ("&apos;", "'"),
        ("&nbsp;", " "),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let tail = rest.get(at..).unwrap_or_default();
        match NAMED.iter().find(|(entity, _)| tail.starts_with(entity)) {
            Some((entity, plain)) => {
                out.push_str(plain);
                rest = tail.get(entity.len()..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// A string field of a vendor's JSON object, or empty when missing or of another type.
pub(super) fn field(value: &serde_json::Value, key: &str) -> String {
    value.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_string()
}

/// Percent-encodes a query-string value: RFC 3986 unreserved characters stay, every other
/// byte of the UTF-8 text becomes `%XX`.
pub(super) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len().saturating_mul(3));
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_trimmed_collapsed_and_capped_at_a_word_boundary() {
        assert_eq!(normalize_query("  what   is\nrust?  ").as_deref(), Some("what is rust?"));
        assert_eq!(normalize_query(" \n\t "), None);
        let long = "word ".repeat(200);
        let query = normalize_query(&long).unwrap_or_default();
        assert_eq!(query.split(' ').count(), MAX_QUERY_WORDS);
        let wide = "abcdefghij ".repeat(60);
        let query = normalize_query(&wide).unwrap_or_default();
        assert!(query.chars().count() <= MAX_QUERY_CHARS && query.ends_with("abcdefghij"), "{query}");
        let giant = "x".repeat(1000);
        assert_eq!(normalize_query(&giant).map(|q| q.len()), Some(MAX_QUERY_CHARS));
    }

    #[test]
    fn snippets_lose_markup_and_entities_and_are_cut() {
        assert_eq!(
            plain("Search <strong>privately</strong> &amp; it doesn&#x27;t  track\nyou", 100),
            "Search privately & it doesn't track you"
        );
        assert_eq!(plain("a &unknown; b", 100), "a &unknown; b");
        let cut = plain(&"é".repeat(50), 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn only_absolute_web_urls_count() {
        assert!(is_web_url("https://example.com/a?b=c"));
        assert!(is_web_url("http://127.0.0.1:8080/x"));
        for bad in ["ftp://example.com/", "/relative", "example.com", "", "https://", "javascript:alert(1)"] {
            assert!(!is_web_url(bad), "{bad}");
        }
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(percent_encode("rust & wasm?"), "rust%20%26%20wasm%3F");
        assert_eq!(percent_encode("café"), "caf%C3%A9");
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
    }
}
