//! Fault directives: `sim:<target>:<fault>[=<number>][*<times>]` tokens found in a request.
//!
//! The scanner is the only place that knows the grammar; the server asks it for a
//! [`FaultPlan`] (what this one request should suffer) and for the user text with the
//! directives taken out.

use std::collections::{HashMap, HashSet};

/// One parsed `sim:` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    /// The whole token as written, e.g. `sim:openai:status=503*2`.
    pub raw: String,
    /// Provider label it aims at, or `any`.
    pub target: String,
    pub fault: Fault,
    /// `*K`: only the first K matching requests get the fault.
    pub times: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Status(u16),
    RetryAfter(u64),
    DelayMs(u64),
    ChunkDelayMs(u64),
    Hang,
    Drop,
    Malformed(u64),
    Cut(u64),
    ErrorEvent(u64),
    Think,
    /// Search APIs: a well-formed answer with no results.
    Empty,
    /// Well-formed token with a fault name (or missing number) we do not know: ignored.
    Unknown,
}

/// What one request should suffer, merged from every directive that applies to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FaultPlan {
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub delay_ms: Option<u64>,
    pub chunk_delay_ms: Option<u64>,
    pub hang: bool,
    pub drop: bool,
    pub malformed: Option<u64>,
    pub cut: Option<u64>,
    pub error_event: Option<u64>,
    pub think: bool,
    pub empty: bool,
}

impl FaultPlan {
    /// The error status to answer with, if any: `status=N`, or 429 when only
    /// `retry_after` was asked for.
    pub fn error_status(&self) -> Option<u16> {
        match (self.status, self.retry_after) {
            (Some(s), _) => Some(s),
            (None, Some(_)) => Some(429),
            (None, None) => None,
        }
    }
}

const PREFIX: &str = "sim:";

fn is_target_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_fault_char(c: char) -> bool {
    c.is_ascii_lowercase() || c == '_'
}

/// Takes the longest prefix of `s` whose chars satisfy `pred`; returns (taken, rest).
fn take_while(s: &str, pred: fn(char) -> bool) -> (&str, &str) {
    let end = s.find(|c: char| !pred(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// Parses `=<digits>` or `*<digits>` at the start of `s`.
fn take_number(s: &str, sign: char) -> (Option<u64>, &str) {
    let Some(after) = s.strip_prefix(sign) else {
        return (None, s);
    };
    let (digits, rest) = take_while(after, |c| c.is_ascii_digit());
    match digits.parse::<u64>() {
        Ok(n) => (Some(n), rest),
        Err(_) => (None, s),
    }
}

/// Parses one token that starts right after `sim:`; returns it and its length in bytes
/// (not counting the prefix).
fn parse_after_prefix(s: &str) -> Option<(Directive, usize)> {
    let (target, rest) = take_while(s, is_target_char);
    if target.is_empty() {
        return None;
    }
    let Some(after_colon) = rest.strip_prefix(':') else {
        // `sim:think` is the one directive without a target.
        if target == "think" {
            let d =
                Directive { raw: format!("{PREFIX}think"), target: "any".to_owned(), fault: Fault::Think, times: None };
            return Some((d, target.len()));
        }
        return None;
    };
    let (name, rest) = take_while(after_colon, is_fault_char);
    if name.is_empty() {
        return None;
    }
    let (value, rest) = take_number(rest, '=');
    let (times, rest) = take_number(rest, '*');
    let len = s.len() - rest.len();
    let fault = match (name, value) {
        // Only error statuses: `status=200` would be no fault at all.
        ("status", Some(n @ 400..=599)) => u16::try_from(n).map_or(Fault::Unknown, Fault::Status),
        ("retry_after", Some(n)) => Fault::RetryAfter(n),
        ("delay_ms", Some(n)) => Fault::DelayMs(n),
        ("chunk_delay_ms", Some(n)) => Fault::ChunkDelayMs(n),
        ("hang", None) => Fault::Hang,
        ("drop", None) => Fault::Drop,
        ("malformed", n) => Fault::Malformed(n.unwrap_or(0)),
        ("cut", Some(n)) => Fault::Cut(n),
        ("error_event", Some(n)) => Fault::ErrorEvent(n),
        ("think", None) => Fault::Think,
        ("empty", None) => Fault::Empty,
        _ => Fault::Unknown,
    };
    let raw = format!("{PREFIX}{}", s.get(..len).unwrap_or_default());
    Some((Directive { raw, target: target.to_owned(), fault, times }, len))
}

/// Every directive in `text`, with its byte span (prefix included).
pub(crate) fn scan(text: &str) -> Vec<(std::ops::Range<usize>, Directive)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(found) = text.get(pos..).and_then(|t| t.find(PREFIX)) {
        let start = pos + found;
        let after = start + PREFIX.len();
        match text.get(after..).and_then(parse_after_prefix) {
            Some((d, len)) => {
                out.push((start..after + len, d));
                pos = after + len;
            }
            None => pos = after,
        }
    }
    out
}

/// `text` with every directive removed and whitespace runs collapsed to one space.
pub(crate) fn strip(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut pos = 0;
    for (span, _) in scan(text) {
        kept.push_str(text.get(pos..span.start).unwrap_or_default());
        kept.push(' ');
        pos = span.end;
    }
    kept.push_str(text.get(pos..).unwrap_or_default());
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Per-directive request counters, for `*K`.
#[derive(Debug, Default)]
pub(crate) struct Counters(HashMap<String, u64>);

impl Counters {
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Counts this request against the directive and says whether it is within `times`.
    fn hit(&mut self, label: &str, directive: &Directive, message: &str) -> bool {
        let Some(times) = directive.times else {
            return true;
        };
        let key = format!("{label}\u{1f}{}\u{1f}{message}", directive.raw);
        let seen = self.0.entry(key).or_insert(0);
        *seen = seen.saturating_add(1);
        *seen <= times
    }
}

/// Builds the plan for a request to provider `label` whose raw body is `raw` and whose
/// last user message (directives removed) is `message`.
pub(crate) fn plan(raw: &str, label: &str, message: &str, counters: &mut Counters) -> FaultPlan {
    let mut plan = FaultPlan::default();
    // A directive repeated in the history (or in several messages) counts once per request.
    let mut seen = HashSet::new();
    for (_, d) in scan(raw) {
        if d.target != label && d.target != "any" {
            continue;
        }
        if !seen.insert(d.raw.clone()) || !counters.hit(label, &d, message) {
            continue;
        }
        match d.fault {
            Fault::Status(n) => plan.status = Some(n),
            Fault::RetryAfter(n) => plan.retry_after = Some(n),
            Fault::DelayMs(n) => plan.delay_ms = Some(n),
            Fault::ChunkDelayMs(n) => plan.chunk_delay_ms = Some(n),
            Fault::Hang => plan.hang = true,
            Fault::Drop => plan.drop = true,
            Fault::Malformed(n) => plan.malformed = Some(n),
            Fault::Cut(n) => plan.cut = Some(n),
            Fault::ErrorEvent(n) => plan.error_event = Some(n),
            Fault::Think => plan.think = true,
            Fault::Empty => plan.empty = true,
            Fault::Unknown => {}
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn parses_value_and_times() {
        let found = scan("hi sim:openai:status=503*2, bye");
        assert_eq!(found.len(), 1);
        let (span, d) = &found[0];
        assert_eq!(d.raw, "sim:openai:status=503*2");
        assert_eq!(d.fault, Fault::Status(503));
        assert_eq!(d.times, Some(2));
        assert_eq!(&"hi sim:openai:status=503*2, bye"[span.clone()], d.raw);
    }

    #[test]
    fn think_needs_no_target() {
        let found = scan("please sim:think now");
        assert_eq!(found[0].1.fault, Fault::Think);
        assert_eq!(found[0].1.target, "any");
    }

    #[test]
    fn strip_removes_directives_and_collapses_space() {
        assert_eq!(strip("  a sim:any:drop   b\nsim:x:cut=3 c "), "a b c");
        assert_eq!(strip("no directive: sim: here"), "no directive: sim: here");
    }

    #[test]
    fn times_counts_per_label_directive_and_message() {
        let mut c = Counters::default();
        let raw = "sim:openai:status=500*1";
        assert_eq!(plan(raw, "openai", "m", &mut c).status, Some(500));
        assert_eq!(plan(raw, "openai", "m", &mut c).status, None);
        assert_eq!(plan(raw, "openai", "other", &mut c).status, Some(500));
        assert_eq!(plan(raw, "anthropic", "m", &mut c).status, None);
    }

    #[test]
    fn retry_after_alone_means_429() {
        let mut c = Counters::default();
        let p = plan("sim:any:retry_after=3", "gemini", "m", &mut c);
        assert_eq!(p.error_status(), Some(429));
        assert_eq!(p.retry_after, Some(3));
    }
}
