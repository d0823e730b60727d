//! RFC 3339 timestamps (UTC, whole seconds) as status files store them,
//! formatted and read back without a calendar library.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An RFC 3339 UTC time with seconds precision, e.g. `2026-11-25T16:30:00Z`:
/// the form Kubernetes uses for `lastTransitionTime`.
pub type Timestamp = String;

const SECONDS_PER_DAY: i64 = 86_400;

/// Formats `t` as a [`Timestamp`], dropping fractions of a second. Times
/// before 1970 are formatted too (proleptic Gregorian calendar).
pub fn timestamp(t: SystemTime) -> Timestamp {
    let seconds = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        // Before the epoch: round towards the past so `.5 s before` is `-1`.
        Err(before) => {
            let d = before.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(d.subsec_nanos() > 0)
        }
    };
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Reads a timestamp in the form [`timestamp`] writes (`YYYY-MM-DDTHH:MM:SSZ`);
/// `None` for anything else, including impossible dates like February 30.
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        let digits = text.get(from..to)?;
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let month = u32::try_from(month).ok()?;
    let day = u32::try_from(day).ok()?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs()))
    }
}

/// `t` plus `d` as a timestamp (for "retry at ..." messages); `None` when
/// `t` is not a timestamp [`parse_timestamp`] reads.
pub fn add(t: &str, d: Duration) -> Option<Timestamp> {
    parse_timestamp(t)?.checked_add(d).map(timestamp)
}

/// A duration in the short form `kubectl` prints ages in: `45s`, `12m`,
/// `3h20m`, `5d`; fractions of the last unit are dropped.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s}s"),
        120..600 => match s % 60 {
            0 => format!("{}m", s / 60),
            rest => format!("{}m{rest}s", s / 60),
        },
        600..10_800 => format!("{}m", s / 60),
        10_800..172_800 => match s % 3600 / 60 {
            0 => format!("{}h", s / 3600),
            minutes if s < 28_800 => format!("{}h{minutes}m", s / 3600),
            _ => format!("{}h", s / 3600),
        },
        _ => format!("{}d", s / 86_400),
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Year, month and day of the `days`-th day after 1970-01-01, by counting
/// 400-year eras of 146 097 days that start on March 1st (so the leap day
/// is the last day of an era's year and needs no special case).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both fit: month is 1..=12 and day 1..=31 by construction.
    (year, month as u32, day as u32)
}

/// Inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let march_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * march_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> SystemTime {
        if seconds >= 0 {
            UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
        }
    }

    #[test]
    fn known_instants_format_as_rfc3339_utc() {
        // Values checked against `date -u -d @N +%Y-%m-%dT%H:%M:%SZ`.
        for (seconds, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_955_199, "2000-03-01T23:59:59Z"),
            (1_078_012_800, "2004-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_709_251_200, "2024-03-01T00:00:00Z"),
            (1_735_689_599, "2024-12-31T23:59:59Z"),
            (1_795_624_200, "2026-11-25T16:30:00Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (-2_208_988_800, "1900-01-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(timestamp(at(seconds)), text, "{seconds}");
            assert_eq!(parse_timestamp(text), Some(at(seconds)), "{text}");
        }
    }

    #[test]
    fn fractions_of_a_second_are_dropped_towards_the_past() {
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_millis(1_999)),
            "1970-01-01T00:00:01Z"
        );
        assert_eq!(
            timestamp(UNIX_EPOCH - Duration::from_millis(500)),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        let mut previous = None;
        // 1900-01-01 to 2300-01-01 covers leap and non-leap century years.
        for days in -25_567..120_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d >= 1 && d <= days_in_month(y, m), "{y}-{m}-{d}");
            if let Some((py, pm, pd)) = previous {
                let next_day = (py, pm, pd + 1);
                let next_month = (py, pm + 1, 1);
                let next_year = (py + 1, 1, 1);
                assert!(
                    [next_day, next_month, next_year].contains(&(y, m, d)),
                    "{py}-{pm}-{pd} is followed by {y}-{m}-{d}"
                );
            }
            previous = Some((y, m, d));
        }
    }

    #[test]
    fn february_29_exists_only_in_leap_years() {
        assert!(parse_timestamp("2024-02-29T00:00:00Z").is_some());
        assert!(parse_timestamp("2000-02-29T00:00:00Z").is_some());
        assert!(parse_timestamp("1900-02-29T00:00:00Z").is_none());
        assert!(parse_timestamp("2023-02-29T00:00:00Z").is_none());
        assert!(parse_timestamp("2100-02-29T00:00:00Z").is_none());
    }

    #[test]
    fn other_forms_are_not_read() {
        for text in [
            "",
            "2026-11-25",
            "2026-11-25T16:30:00",
            "2026-11-25T16:30:00+00:00",
            "2026-11-25T16:30:00.5Z",
            "2026-13-01T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T16:60:00Z",
            "2026-11-25 16:30:00Z",
            "+026-11-25T16:30:00Z",
            "2026-1a-25T16:30:00Z",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }

    #[test]
    fn adding_a_duration_crosses_midnight_and_years() {
        assert_eq!(
            add("2024-12-31T23:59:30Z", Duration::from_secs(45)).unwrap(),
            "2025-01-01T00:00:15Z"
        );
        assert_eq!(add("yesterday", Duration::from_secs(1)), None);
    }

    #[test]
    fn durations_print_like_kubectl_ages() {
        for (seconds, text) in [
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (3599, "59m"),
            (10_800, "3h"),
            (12_000, "3h20m"),
            (30_000, "8h"),
            (172_799, "47h"),
            (172_800, "2d"),
            (1_000_000, "11d"),
        ] {
            assert_eq!(short_duration(Duration::from_secs(seconds)), text);
        }
    }
}
