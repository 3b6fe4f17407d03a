//! Dates from Unix time, for log timestamps and budget periods (UTC).

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
// Cannot overflow: `days` is capped at 2^40 (callers pass milliseconds / 86_400_000, < 2^38),
// no intermediate exceeds days + 719_468, and the algorithm keeps each difference non-negative.
#[allow(clippy::arithmetic_side_effects)]
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days.min(1 << 40) + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
