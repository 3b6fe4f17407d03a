//! Limits and budgets as data: what a key or tenant allows, the windows they are counted in,
//! and which limit a refused request hit. Counting itself is the runtime's (one atomic SQL
//! statement per scope, `opencode_runtime::control::counters`).

use serde::{Deserialize, Serialize};

/// Requests, tokens and concurrent requests allowed (each unlimited when absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.concurrency.is_none()
    }
}

/// Spend allowed per UTC day or month, in US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub usd: f64,
    pub period: Period,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub fn parse(name: &str) -> Option<Period> {
        match name {
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            _ => None,
        }
    }
}

/// The length of a rate window: limits count per fixed, aligned minute.
pub const WINDOW_MS: u64 = 60_000;

/// The start of the minute `now_ms` is in.
pub fn window_start(now_ms: u64) -> u64 {
    now_ms.saturating_sub(now_ms % WINDOW_MS)
}

/// The budget period `now_ms` is in, as its UTC date (`2026-12-07`) or month (`2026-12`).
pub fn period_key(period: Period, now_ms: u64) -> String {
    let (year, month, day) = crate::calendar::civil_from_days(now_ms / 86_400_000);
    match period {
        Period::Day => format!("{year:04}-{month:02}-{day:02}"),
        Period::Month => format!("{year:04}-{month:02}"),
    }
}

/// Whole micro-dollars (counters keep money as exact integers).
pub fn micros(usd: f64) -> i64 {
    // Saturating float-to-int cast; budgets are validated finite and non-negative.
    (usd * 1_000_000.0).round() as i64
}

/// A wait as OpenAI's `x-ratelimit-reset-*` headers write it: `20ms`, `6s`, `1m0s`.
pub fn reset_text(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{}s", ms.div_ceil(1_000)),
        _ => {
            let secs = ms.div_ceil(1_000);
            format!("{}m{}s", secs / 60, secs % 60)
        }
    }
}

/// What a scope's counters hold now (in the current window and period).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub requests: u64,
    pub tokens: u64,
    pub inflight: u64,
    pub spent_micros: i64,
}

/// The limit a refused request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Requests,
    Tokens,
    Concurrency,
    Budget,
}

/// Which limit refuses one more request asking `tokens` on top of `counted`, if any. Budgets
/// admit while what is spent or reserved is under them, so spend passes a budget by at most
/// one request.
pub fn refused_by(limits: &Limits, budget_micros: Option<i64>, counted: &Counted, tokens: u64) -> Option<Hit> {
    let over = |limit: Option<u64>, next: u64| limit.is_some_and(|limit| next > limit);
    if over(limits.concurrency, counted.inflight.saturating_add(1)) {
        Some(Hit::Concurrency)
    } else if over(limits.rpm, counted.requests.saturating_add(1)) {
        Some(Hit::Requests)
    } else if over(limits.tpm, counted.tokens.saturating_add(tokens)) {
        Some(Hit::Tokens)
    } else if budget_micros.is_some_and(|budget| counted.spent_micros >= budget) {
        Some(Hit::Budget)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_days_and_months() {
        // 2026-12-07T11:24:16Z
        let now = 1_796_642_656_000;
        assert_eq!(period_key(Period::Day, now), "2026-12-07");
        assert_eq!(period_key(Period::Month, now), "2026-12");
        assert_eq!(period_key(Period::Day, 0), "1970-01-01");
        // 2024-02-29T23:59:59Z, a leap day, and the second after.
        assert_eq!(period_key(Period::Day, 1_709_251_199_000), "2024-02-29");
        assert_eq!(period_key(Period::Month, 1_709_251_200_000), "2024-03");
        assert_eq!(period_key(Period::Day, 1_767_225_600_000), "2026-01-01");
    }

    #[test]
    fn windows_align_to_minutes_and_resets_read_as_openai_writes_them() {
        assert_eq!(window_start(125_000), 120_000);
        assert_eq!(reset_text(20), "20ms");
        assert_eq!(reset_text(5_200), "6s");
        assert_eq!(reset_text(60_000), "1m0s");
        assert_eq!(micros(1.25), 1_250_000);
    }

    #[test]
    fn the_first_limit_a_request_would_pass_is_the_one_named() {
        let limits = Limits { rpm: Some(10), tpm: Some(1_000), concurrency: Some(2) };
        let counted = Counted { requests: 9, tokens: 900, inflight: 1, spent_micros: 0 };
        assert_eq!(refused_by(&limits, None, &counted, 100), None);
        assert_eq!(refused_by(&limits, None, &counted, 101), Some(Hit::Tokens));
        assert_eq!(refused_by(&limits, None, &Counted { requests: 10, ..counted }, 1), Some(Hit::Requests));
        assert_eq!(refused_by(&limits, None, &Counted { inflight: 2, ..counted }, 1), Some(Hit::Concurrency));
        assert_eq!(
            refused_by(&Limits::default(), Some(5), &Counted { spent_micros: 5, ..counted }, 1),
            Some(Hit::Budget)
        );
        assert_eq!(refused_by(&Limits::default(), Some(5), &Counted { spent_micros: 4, ..counted }, 1), None);
    }
}
