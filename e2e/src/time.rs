//! Engine timestamps (RFC 3339, as `docker inspect` prints them) as comparable instants.

use std::fmt;

/// An instant with nanosecond precision, ordered, as the engine recorded it.
///
/// The engine writes `0001-01-01T00:00:00Z` for "never" (a container that
/// never started); [`Timestamp::is_never`] tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    nanos: i128,
}

const NANOS_PER_SEC: i128 = 1_000_000_000;

impl Timestamp {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `None` when the
    /// text is not such a timestamp.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (date, rest) = text.split_once(['T', 't', ' '])?;
        let mut date_parts = date.splitn(3, '-');
        let year: i64 = date_parts.next()?.parse().ok()?;
        let month: u32 = date_parts.next()?.parse().ok()?;
        let day: u32 = date_parts.next()?.parse().ok()?;
        let zone_at = rest.find(['Z', 'z', '+', '-'])?;
        let (clock, zone) = rest.split_at(zone_at);
        let (hms, fraction) = match clock.split_once('.') {
            Some((hms, fraction)) => (hms, fraction),
            None => (clock, ""),
        };
        let mut hms_parts = hms.splitn(3, ':');
        let hour: i64 = hms_parts.next()?.parse().ok()?;
        let minute: i64 = hms_parts.next()?.parse().ok()?;
        let second: i64 = hms_parts.next()?.parse().ok()?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        let mut frac_nanos: i128 = 0;
        if !fraction.is_empty() {
            if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let digits: i128 = fraction.parse().ok()?;
            frac_nanos = digits * 10_i128.pow(9 - fraction.len() as u32);
        }
        let offset_secs: i64 = match zone {
            "Z" | "z" => 0,
            _ => {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let (h, m) = zone.get(1..)?.split_once(':')?;
                sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
            }
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        Some(Self {
            nanos: i128::from(secs) * NANOS_PER_SEC + frac_nanos,
        })
    }

    /// The current time of this host's clock (the engine's clock, on a
    /// local engine): comparable with what the engine records.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            nanos: i128::try_from(since.as_nanos()).unwrap_or(i128::MAX),
        }
    }

    /// True for the engine's "never" (any instant before the year 1970).
    pub fn is_never(self) -> bool {
        self.nanos < 0
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(self) -> i128 {
        self.nanos
    }

    /// Milliseconds from `earlier` to `self` (negative when `self` is earlier).
    pub fn millis_since(self, earlier: Timestamp) -> i128 {
        (self.nanos - earlier.nanos) / 1_000_000
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.nanos.div_euclid(NANOS_PER_SEC);
        let nanos = self.nanos.rem_euclid(NANOS_PER_SEC);
        write!(f, "{secs}.{nanos:09}")
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn the_epoch_parses_to_zero() {
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00Z")
                .unwrap()
                .unix_nanos(),
            0
        );
    }

    #[test]
    fn fractions_of_any_length_order_correctly() {
        let a = Timestamp::parse("2026-11-25T14:54:03.5Z").unwrap();
        let b = Timestamp::parse("2026-11-25T14:54:03.123456789Z").unwrap();
        assert!(b < a);
        assert_eq!(a.millis_since(b), 376);
    }

    #[test]
    fn an_offset_is_applied() {
        let utc = Timestamp::parse("2026-11-25T14:00:00Z").unwrap();
        let cet = Timestamp::parse("2026-11-25T15:00:00+01:00").unwrap();
        assert_eq!(utc, cet);
    }

    #[test]
    fn the_engines_never_is_recognised() {
        assert!(Timestamp::parse("0001-01-01T00:00:00Z").unwrap().is_never());
        assert!(!Timestamp::parse("2026-01-01T00:00:00Z").unwrap().is_never());
    }

    #[test]
    fn a_known_date_has_the_known_unix_time() {
        let t = Timestamp::parse("2000-03-01T00:00:00Z").unwrap();
        assert_eq!(t.unix_nanos() / 1_000_000_000, 951_868_800);
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(Timestamp::parse("2026-13-01T00:00:00Z").is_none());
    }
}
