//! W3C Trace Context (`traceparent`, version 00): `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
//! A header that is not valid starts a new trace, as the recommendation says; a later version
//! is read by its first four fields.

/// The caller's trace and the span that called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    /// The caller recorded its span (flag `01`).
    pub sampled: bool,
}

impl TraceParent {
    /// Reads a `traceparent` value; `None` when it is not a valid one.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let value = value.trim();
        let mut fields = value.split('-');
        let (version, trace, parent, flags) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        let extra = fields.next();
        // Version ff is forbidden; 00 has exactly four fields; later versions may add more.
        if version.len() != 2 || version == "ff" || (version == "00" && extra.is_some()) || flags.len() != 2 {
            return None;
        }
        hex_array::<1>(version)?;
        let trace_id = hex_array::<16>(trace)?;
        let parent_id = hex_array::<8>(parent)?;
        let [flags] = hex_array::<1>(flags)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent { trace_id, parent_id, sampled: flags & 1 == 1 })
    }

    /// The header value naming `span_id` as the parent of what it is sent with.
    pub fn header(trace_id: &[u8; 16], span_id: &[u8; 8], sampled: bool) -> String {
        let mut value = String::with_capacity(55);
        value.push_str("00-");
        value.push_str(&crate::hex(trace_id));
        value.push('-');
        value.push_str(&crate::hex(span_id));
        value.push_str(if sampled { "-01" } else { "-00" });
        value
    }
}

/// `N` bytes from exactly `2N` lower-case hex digits (the spec allows no upper case).
fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N.checked_mul(2)? {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(c.wrapping_sub(b'a').wrapping_add(10)),
        _ => None,
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *byte = (nibble(*high)? << 4) | nibble(*low)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specs_example_reads_back() {
        let parent = TraceParent::parse(VALID).unwrap();
        assert_eq!(crate::hex(&parent.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(crate::hex(&parent.parent_id), "00f067aa0ba902b7");
        assert!(parent.sampled);
        assert_eq!(TraceParent::header(&parent.trace_id, &parent.parent_id, true), VALID);
        let unsampled = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!unsampled.sampled);
    }

    #[test]
    fn invalid_headers_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "00-4bf92f3577b34da6a3ce929d0e0é736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        assert!(TraceParent::parse(later).is_some());
    }
}
