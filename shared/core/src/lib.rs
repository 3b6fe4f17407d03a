//! opencode-core: the platform's model and every pure translation it makes.
//!
//! It is the chat model the providers map to (`model`), the vendors' wire formats
//! (`providers`, `search`, `sandbox`: each builds an `http::Request` and reads a response, and
//! never sends one), the ComplexityAnalyzer (`routing`) and list prices (`pricing`). It is not
//! a runtime: it has no host, does no I/O, reads no configuration and keeps no state, so every
//! function here is tested natively against fixtures. It builds for the native target,
//! `wasm32-unknown-unknown` and `wasm32-wasip2`.

#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod access;
pub mod calendar;
pub mod flags;
pub mod guard;
pub mod limits;
pub mod model;
pub mod outbound;
pub mod pricing;
pub mod providers;
pub mod redact;
pub mod routing;
pub mod sandbox;
pub mod search;
pub mod telemetry;
pub mod tokens;
pub mod webhooks;

/// Lower-case hex of `bytes` (request ids, cache and store keys).
pub fn hex(bytes: &[u8]) -> String {
    // Digit by digit: `write!` with `{:02x}` went through the formatting machinery per byte.
    let digit = |nibble: u8| char::from_digit(u32::from(nibble), 16).unwrap_or('0');
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for byte in bytes {
        out.push(digit(byte >> 4));
        out.push(digit(byte & 0xf));
    }
    out
}

/// A decimal number (`0.25`, `3`, `1e-3`) as JSON writes one. Parsed by serde_json, which every
/// function links anyway: `str::parse::<f64>` links core's own float parser, 8 KiB more Wasm.
pub fn decimal(text: &str) -> Option<f64> {
    serde_json::from_str::<f64>(text.trim()).ok().filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimals_are_json_numbers() {
        assert_eq!(super::decimal(" 0.25 "), Some(0.25));
        assert_eq!(super::decimal("2"), Some(2.0));
        assert_eq!(super::decimal("1e-3"), Some(0.001));
        assert_eq!(super::decimal("abc"), None);
        assert_eq!(super::decimal(""), None);
    }

    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}
