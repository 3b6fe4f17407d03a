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

/// Days from 1970-01-01 to the proleptic Gregorian date (the inverse of [`civil_from_days`]);
/// `None` for a date before 1970 or that does not exist (2026-02-30).
pub fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&year) || day == 0 || day > days_in_month {
        return None;
    }
    let y = if month <= 2 { year.checked_sub(1)? } else { year };
    let era = y / 400;
    let yoe = y.checked_sub(era.checked_mul(400)?)?;
    let mp = if month > 2 { month.checked_sub(3)? } else { month.checked_add(9)? };
    let doy = (153u64.checked_mul(mp)?.checked_add(2)? / 5).checked_add(day)?.checked_sub(1)?;
    let doe = yoe.checked_mul(365)?.checked_add(yoe / 4)?.checked_sub(yoe / 100)?.checked_add(doy)?;
    era.checked_mul(146_097)?.checked_add(doe)?.checked_sub(719_468)
}

/// `YYYY-MM-DD` as milliseconds since the Unix epoch (its midnight, UTC).
pub fn parse_date_ms(text: &str) -> Option<u64> {
    let mut parts = text.splitn(3, '-');
    let mut next = || parts.next().filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))?.parse().ok();
    let (year, month, day) = (next()?, next()?, next()?);
    days_from_civil(year, month, day)?.checked_mul(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_both_ways() {
        for days in [0, 59, 365, 10_957, 20_454, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), Some(days), "{y}-{m}-{d}");
        }
        assert_eq!(parse_date_ms("2026-01-01"), Some(1_767_225_600_000));
        assert_eq!(parse_date_ms("2026-02-30"), None);
        assert_eq!(parse_date_ms("1969-12-31"), None);
        assert_eq!(parse_date_ms("2026-1"), None);
        assert_eq!(parse_date_ms("2026-01-01x"), None);
    }
}
