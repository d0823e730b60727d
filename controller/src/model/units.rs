//! Compose's unit-bearing scalars: durations, byte sizes, CPU counts and
//! file modes, parsed the way compose accepts them and printed the way
//! `docker compose config` prints them.
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a duration, size, CPU count or file mode could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The duration text was empty (or only a sign).
    #[error("invalid duration {input:?}: empty (expected a number with a unit such as 10s)")]
    DurationEmpty {
        /// The text as given.
        input: String,
    },
    /// The duration text is not a sequence of `<number><unit>` parts.
    #[error(
        "invalid duration {input:?}: expected a number with a unit such as 10s, 1m30s or 1.5h"
    )]
    DurationMalformed {
        /// The text as given.
        input: String,
    },
    /// A number in the duration has no unit after it.
    #[error("invalid duration {input:?}: missing unit (one of ns, us, ms, s, m, h, d, w)")]
    DurationMissingUnit {
        /// The text as given.
        input: String,
    },
    /// A unit in the duration is not one compose knows.
    #[error("invalid duration {input:?}: unknown unit {unit:?} (expected one of ns, us, ms, s, m, h, d, w)")]
    DurationUnknownUnit {
        /// The unit as given.
        unit: String,
        /// The text as given.
        input: String,
    },
    /// The duration does not fit in 64-bit nanoseconds (about 292 years).
    #[error("invalid duration {input:?}: out of range (at most about 292 years)")]
    DurationOverflow {
        /// The text as given.
        input: String,
    },
    /// The size text is not `<number>[ ][k|m|g|t|p][i][b]`.
    #[error("invalid size {input:?}: expected a number with an optional unit b, k, m, g, t or p (such as 512m, 1.5g, 2gb)")]
    SizeMalformed {
        /// The text as given.
        input: String,
    },
    /// The size does not fit in a signed 64-bit byte count.
    #[error("invalid size {input:?}: out of range (at most 8 EiB)")]
    SizeOverflow {
        /// The text as given.
        input: String,
    },
    /// The CPU count is not a decimal number.
    #[error("invalid cpus {input:?}: expected a decimal number such as 0.5 or 2")]
    CpusMalformed {
        /// The text as given.
        input: String,
    },
    /// The file mode is not an octal number.
    #[error("invalid file mode {input:?}: expected an octal number such as 0440")]
    FileModeMalformed {
        /// The text as given.
        input: String,
    },
}

const NANOSECOND: i64 = 1;
const MICROSECOND: i64 = 1_000 * NANOSECOND;
const MILLISECOND: i64 = 1_000 * MICROSECOND;
const SECOND: i64 = 1_000 * MILLISECOND;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// A signed span of time with nanosecond precision, as compose stores it.
///
/// Negative values are kept: compose accepts them (`interval: -5s`) and
/// leaves rejecting them to whoever uses the value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(i64);

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: i64) -> Self {
        Duration(nanos)
    }

    /// A duration of `secs` seconds, saturating at the 64-bit nanosecond range.
    pub const fn from_secs(secs: i64) -> Self {
        Duration(secs.saturating_mul(SECOND))
    }

    /// The length in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whether this is exactly zero.
    pub const fn is_zero(&self) -> bool {
        self.0 == 0
    }

    /// The standard-library duration, or `None` when this one is negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.0)
            .ok()
            .map(std::time::Duration::from_nanos)
    }
}

/// Parses a compose duration: Go's `time.ParseDuration` syntax plus the
/// `d` (24h) and `w` (168h) units compose also takes, e.g. `1m30s`, `1.5h`,
/// `100ms`, `2us`, `-5s`, `1d`.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let owned = || input.to_owned();
    let (negative, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(UnitError::DurationEmpty { input: owned() });
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let bytes = rest.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return Err(UnitError::DurationMalformed { input: owned() });
        }
        let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut whole: i64 = 0;
        for &digit in &bytes[..int_len] {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(i64::from(digit - b'0')))
                .ok_or_else(|| UnitError::DurationOverflow { input: owned() })?;
        }
        rest = &rest[int_len..];
        let mut fraction: i64 = 0;
        let mut scale: f64 = 1.0;
        let mut fraction_len = 0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            fraction_len = after_dot.bytes().take_while(|b| b.is_ascii_digit()).count();
            // Digits past i64's precision are ignored rather than rejected,
            // as Go does.
            for digit in after_dot[..fraction_len].bytes() {
                match fraction
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(i64::from(digit - b'0')))
                {
                    Some(next) => {
                        fraction = next;
                        scale *= 10.0;
                    }
                    None => break,
                }
            }
            rest = &after_dot[fraction_len..];
        }
        if int_len == 0 && fraction_len == 0 {
            return Err(UnitError::DurationMalformed { input: owned() });
        }
        let unit_len = rest
            .bytes()
            .take_while(|b| !(*b == b'.' || b.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(UnitError::DurationMissingUnit { input: owned() });
        }
        let unit_text = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit = match unit_text {
            "ns" => NANOSECOND,
            "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
            "ms" => MILLISECOND,
            "s" => SECOND,
            "m" => MINUTE,
            "h" => HOUR,
            "d" => 24 * HOUR,
            "w" => 168 * HOUR,
            _ => {
                return Err(UnitError::DurationUnknownUnit {
                    unit: unit_text.to_owned(),
                    input: owned(),
                })
            }
        };
        let mut part = whole
            .checked_mul(unit)
            .ok_or_else(|| UnitError::DurationOverflow { input: owned() })?;
        if fraction > 0 {
            // f64 keeps fractions of the largest unit nanosecond-exact.
            let extra = (fraction as f64 * (unit as f64 / scale)) as i64;
            part = part
                .checked_add(extra)
                .ok_or_else(|| UnitError::DurationOverflow { input: owned() })?;
        }
        total = total
            .checked_add(part)
            .ok_or_else(|| UnitError::DurationOverflow { input: owned() })?;
    }
    Ok(Duration(if negative { -total } else { total }))
}

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s)
    }
}

/// Appends `value / 10^precision` with its fraction, trailing zeros and a
/// bare decimal point dropped, as Go prints durations.
fn push_with_fraction(out: &mut String, value: u64, precision: u32) {
    let divisor = 10u64.pow(precision);
    let whole = value / divisor;
    let fraction = value % divisor;
    out.push_str(&whole.to_string());
    if fraction != 0 {
        let digits = format!("{fraction:0width$}", width = precision as usize);
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// Go's `time.Duration.String()`: `1h30m0s`, `1m0s`, `1.5s`, `500ms`,
/// `2µs`, `0s`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.unsigned_abs();
        let mut out = String::new();
        if self.0 < 0 {
            out.push('-');
        }
        const US: u64 = MICROSECOND as u64;
        const MS: u64 = MILLISECOND as u64;
        const S: u64 = SECOND as u64;
        if nanos == 0 {
            return f.write_str("0s");
        } else if nanos < US {
            out.push_str(&nanos.to_string());
            out.push_str("ns");
        } else if nanos < MS {
            push_with_fraction(&mut out, nanos, 3);
            out.push_str("\u{b5}s");
        } else if nanos < S {
            push_with_fraction(&mut out, nanos, 6);
            out.push_str("ms");
        } else {
            let total_minutes = nanos / S / 60;
            if total_minutes > 0 {
                let hours = total_minutes / 60;
                if hours > 0 {
                    out.push_str(&hours.to_string());
                    out.push('h');
                }
                out.push_str(&(total_minutes % 60).to_string());
                out.push('m');
            }
            push_with_fraction(&mut out, nanos % (60 * S), 9);
            out.push('s');
        }
        f.write_str(&out)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 10s, 1m30s or 1.5h")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map_err(E::custom)
            }

            // A bare number is read as its text, so `0` is zero and `10`
            // reports the missing unit, as compose does.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                parse_duration(&v.to_string()).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                parse_duration(&v.to_string()).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as 10s, 1m30s, 1.5h or 500ms."
        })
    }
}

/// A byte count (`mem_limit`, `shm_size`, ...). Printed as a decimal string,
/// as compose does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub i64);

impl ByteSize {
    /// The number of bytes.
    pub const fn bytes(self) -> i64 {
        self.0
    }

    /// Whether this is zero (compose's "not set").
    pub const fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

/// Parses a compose size: a decimal number (fractions allowed), an optional
/// space, then an optional binary unit `k`, `m`, `g`, `t` or `p`, optionally
/// followed by `i` and/or `b`, case-insensitively: `512m`, `1.5G`, `2gb`,
/// `10 MiB`, `1024`. The result is truncated to whole bytes.
pub fn parse_byte_size(input: &str) -> Result<i64, UnitError> {
    let malformed = || UnitError::SizeMalformed {
        input: input.to_owned(),
    };
    let bytes = input.as_bytes();
    let mut end = 0;
    // <digits>(.<digits>)* ; more than one dot passes this shape but then
    // fails to parse as a number, as in compose.
    loop {
        let digits = bytes[end..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(malformed());
        }
        end += digits;
        if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(|b| b.is_ascii_digit()) {
            end += 1;
        } else {
            break;
        }
    }
    let number = &input[..end];
    let mut rest = &bytes[end..];
    if let Some(after) = rest.strip_prefix(b" ") {
        rest = after;
    }
    let mut multiplier: i64 = 1;
    if let Some((first, after)) = rest.split_first() {
        let power = match first.to_ascii_lowercase() {
            b'k' => Some(1),
            b'm' => Some(2),
            b'g' => Some(3),
            b't' => Some(4),
            b'p' => Some(5),
            _ => None,
        };
        if let Some(power) = power {
            multiplier = 1024i64.pow(power);
            rest = after;
        }
    }
    if let Some(after) = rest.strip_prefix(b"i").or_else(|| rest.strip_prefix(b"I")) {
        rest = after;
    }
    if let Some(after) = rest.strip_prefix(b"b").or_else(|| rest.strip_prefix(b"B")) {
        rest = after;
    }
    if !rest.is_empty() {
        return Err(malformed());
    }
    let value: f64 = number.parse().map_err(|_| malformed())?;
    let scaled = value * multiplier as f64;
    // 2^63 is exactly representable; anything at or above it does not fit.
    if !scaled.is_finite() || scaled >= i64::MAX as f64 {
        return Err(UnitError::SizeOverflow {
            input: input.to_owned(),
        });
    }
    Ok(scaled as i64)
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_byte_size(s).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ByteSizeVisitor;
        impl Visitor<'_> for ByteSizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count or a size such as 512m or 1.5g")
            }

            // Printed sizes may be negative (`memswap_limit: -1`), which the
            // unit syntax cannot express, so plain integers come first.
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                if let Ok(bytes) = v.parse::<i64>() {
                    return Ok(ByteSize(bytes));
                }
                parse_byte_size(v).map(ByteSize).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            // Compose silently drops a size written as a float (`2e9`); the
            // loader hands it over as null, which reads as no size at all.
            fn visit_unit<E: de::Error>(self) -> Result<ByteSize, E> {
                Ok(ByteSize(0))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                i64::try_from(v).map(ByteSize).map_err(|_| {
                    E::custom(UnitError::SizeOverflow {
                        input: v.to_string(),
                    })
                })
            }
        }
        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A byte count, or a size with a binary unit such as 512m or 1.5g."
        })
    }
}

/// Parses a CPU count given as text (`"0.5"`, `"2"`), as compose does: a
/// 64-bit decimal narrowed to 32 bits.
pub fn parse_cpus(input: &str) -> Result<f32, UnitError> {
    let value: f64 = input.parse().map_err(|_| UnitError::CpusMalformed {
        input: input.to_owned(),
    })?;
    Ok(value as f32)
}

/// Go's `fmt.Sprint` of a float64 (`%v`): shortest round-trip digits, with an
/// exponent (`1e+06`, `1.5e-07`) when the decimal exponent is below -4 or at
/// least 6.
pub fn format_go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits as `d.ddde<exp>`.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    let point = exponent + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if digits.len() <= point {
            format!("{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

/// Serde helpers for compose's 32-bit floats (`cpus`, `cpu_percent`,
/// `max_failure_ratio`): read from a number or a decimal string, written
/// with the shortest digits that identify the 32-bit value (`0.001`, not
/// `0.0010000000474974513`) and as an integer when whole, as Go does.
pub(crate) mod go_f32 {
    use super::{de, fmt, parse_cpus, Deserializer, Serializer, Visitor};

    pub(crate) fn serialize<S: Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
        // Rust's shortest f32 text names the same decimal Go prints.
        let decimal: f64 = value.to_string().parse().unwrap_or(f64::from(*value));
        if decimal.fract() == 0.0 && decimal.abs() < i64::MAX as f64 {
            return serializer.serialize_i64(decimal as i64);
        }
        serializer.serialize_f64(decimal)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f32, D::Error> {
        struct F32Visitor;
        impl Visitor<'_> for F32Visitor {
            type Value = f32;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a decimal string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<f32, E> {
                parse_cpus(v).map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f32, E> {
                Ok(v as f32)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f32, E> {
                Ok(v as f32)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f32, E> {
                Ok(v as f32)
            }
        }
        deserializer.deserialize_any(F32Visitor)
    }

    /// Whether the value is zero (compose's "not set").
    pub(crate) fn is_zero(value: &f32) -> bool {
        *value == 0.0
    }
}

/// A file permission mode for a secret or config mount, printed in octal
/// with a leading zero (`"0440"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileMode(pub i64);

/// Parses an octal file mode such as `0440` or `440`.
pub fn parse_file_mode(input: &str) -> Result<FileMode, UnitError> {
    let malformed = || UnitError::FileModeMalformed {
        input: input.to_owned(),
    };
    let (negative, digits) = match input.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, input.strip_prefix('+').unwrap_or(input)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(malformed());
    }
    let value = i64::from_str_radix(digits, 8).map_err(|_| malformed())?;
    Ok(FileMode(if negative { -value } else { value }))
}

impl FromStr for FileMode {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_file_mode(s)
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            write!(f, "0-{:o}", self.0.unsigned_abs())
        } else {
            write!(f, "0{:o}", self.0)
        }
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileModeVisitor;
        impl Visitor<'_> for FileModeVisitor {
            type Value = FileMode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal string such as \"0440\" or an integer")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                parse_file_mode(v).map_err(E::custom)
            }

            // An integer is the mode's value (YAML already read `0440` as
            // octal), not octal digits.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
                Ok(FileMode(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileMode, E> {
                i64::try_from(v)
                    .map(FileMode)
                    .map_err(|_| E::custom(format!("file mode {v} is out of range")))
            }
        }
        deserializer.deserialize_any(FileModeVisitor)
    }
}

impl JsonSchema for FileMode {
    fn schema_name() -> Cow<'static, str> {
        "FileMode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A file mode in octal, such as 0440."
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(text: &str) -> i64 {
        parse_duration(text).unwrap().as_nanos()
    }

    #[test]
    fn durations_parse_every_unit() {
        assert_eq!(d("1ns"), 1);
        assert_eq!(d("2us"), 2_000);
        assert_eq!(d("2\u{b5}s"), 2_000);
        assert_eq!(d("2\u{3bc}s"), 2_000);
        assert_eq!(d("100ms"), 100 * MILLISECOND);
        assert_eq!(d("10s"), 10 * SECOND);
        assert_eq!(d("3m"), 3 * MINUTE);
        assert_eq!(d("2h"), 2 * HOUR);
        assert_eq!(d("1d"), 24 * HOUR);
        assert_eq!(d("1w"), 168 * HOUR);
    }

    #[test]
    fn durations_combine_parts_and_fractions() {
        assert_eq!(d("1m30s"), 90 * SECOND);
        assert_eq!(d("1.5h"), 90 * MINUTE);
        assert_eq!(d(".5s"), 500 * MILLISECOND);
        assert_eq!(d("1.s"), SECOND);
        assert_eq!(d("1h0.5m2us"), HOUR + 30 * SECOND + 2 * MICROSECOND);
        assert_eq!(d("1h2m3s"), HOUR + 2 * MINUTE + 3 * SECOND);
    }

    #[test]
    fn durations_accept_a_sign_and_a_bare_zero() {
        assert_eq!(d("-5s"), -5 * SECOND);
        assert_eq!(d("+5s"), 5 * SECOND);
        assert_eq!(d("0"), 0);
        assert_eq!(d("-0"), 0);
        assert_eq!(d("0s"), 0);
    }

    #[test]
    fn durations_without_a_unit_are_rejected() {
        assert_eq!(
            parse_duration("10"),
            Err(UnitError::DurationMissingUnit { input: "10".into() })
        );
        assert!(parse_duration("1h5").is_err());
    }

    #[test]
    fn durations_with_an_unknown_unit_name_the_unit() {
        let err = parse_duration("5y").unwrap_err();
        assert_eq!(
            err,
            UnitError::DurationUnknownUnit {
                unit: "y".into(),
                input: "5y".into()
            }
        );
        assert!(err.to_string().contains("unknown unit \"y\""));
        assert!(parse_duration("5 s").is_err());
        assert!(parse_duration("5S").is_err());
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for text in ["", "-", "+", "s", ".s", "-.s", "1..5s", "abc", " 5s", "5s "] {
            assert!(parse_duration(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn durations_beyond_64_bit_nanoseconds_overflow() {
        assert!(matches!(
            parse_duration("3000000h"),
            Err(UnitError::DurationOverflow { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999s"),
            Err(UnitError::DurationOverflow { .. })
        ));
    }

    fn show(nanos: i64) -> String {
        Duration::from_nanos(nanos).to_string()
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(show(0), "0s");
        assert_eq!(show(1), "1ns");
        assert_eq!(show(1_500), "1.5\u{b5}s");
        assert_eq!(show(2_000), "2\u{b5}s");
        assert_eq!(show(500 * MILLISECOND), "500ms");
        assert_eq!(show(1_500_001), "1.500001ms");
        assert_eq!(show(SECOND), "1s");
        assert_eq!(show(1_500 * MILLISECOND), "1.5s");
        assert_eq!(show(MINUTE), "1m0s");
        assert_eq!(show(90 * SECOND), "1m30s");
        assert_eq!(show(HOUR), "1h0m0s");
        assert_eq!(show(90 * MINUTE), "1h30m0s");
        assert_eq!(show(24 * HOUR), "24h0m0s");
        assert_eq!(show(168 * HOUR), "168h0m0s");
        assert_eq!(show(HOUR + 30 * SECOND + 2 * MICROSECOND), "1h0m30.000002s");
        assert_eq!(show(-5 * SECOND), "-5s");
        assert_eq!(show(i64::MIN), "-2562047h47m16.854775808s");
        assert_eq!(show(i64::MAX), "2562047h47m16.854775807s");
    }

    #[test]
    fn a_day_is_printed_as_twenty_four_hours() {
        assert_eq!(parse_duration("1d").unwrap().to_string(), "24h0m0s");
    }

    #[test]
    fn durations_round_trip_through_serde_as_go_strings() {
        let value: Duration = serde_json::from_str("\"1m30s\"").unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), "\"1m30s\"");
        let zero: Duration = serde_json::from_str("0").unwrap();
        assert_eq!(zero, Duration::ZERO);
        assert!(serde_json::from_str::<Duration>("10").is_err());
    }

    #[test]
    fn standard_durations_exist_only_for_non_negative_values() {
        assert_eq!(
            Duration::from_secs(2).to_std(),
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(Duration::from_secs(-2).to_std(), None);
    }

    #[test]
    fn sizes_use_binary_multiples_case_insensitively() {
        assert_eq!(parse_byte_size("1024").unwrap(), 1024);
        assert_eq!(parse_byte_size("1k").unwrap(), 1024);
        assert_eq!(parse_byte_size("1KB").unwrap(), 1024);
        assert_eq!(parse_byte_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_byte_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_byte_size("2gb").unwrap(), 2 << 30);
        assert_eq!(parse_byte_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_byte_size("1t").unwrap(), 1 << 40);
        assert_eq!(parse_byte_size("1p").unwrap(), 1 << 50);
        assert_eq!(parse_byte_size("10b").unwrap(), 10);
        assert_eq!(parse_byte_size("10i").unwrap(), 10);
    }

    #[test]
    fn sizes_take_fractions_and_truncate_to_whole_bytes() {
        assert_eq!(parse_byte_size("1.5G").unwrap(), 1_610_612_736);
        assert_eq!(parse_byte_size("1.5").unwrap(), 1);
        assert_eq!(parse_byte_size("0.5k").unwrap(), 512);
    }

    #[test]
    fn sizes_allow_one_space_before_the_unit() {
        assert_eq!(parse_byte_size("5 KiB").unwrap(), 5120);
        assert_eq!(parse_byte_size("5 ").unwrap(), 5);
        assert!(parse_byte_size("5  k").is_err());
    }

    #[test]
    fn malformed_sizes_are_rejected() {
        for text in [
            "", "m", "-1", "+1", "1x", "1kk", "1.5.2m", ".5m", "5.m", " 5m", "1e3", "1mib2",
        ] {
            assert!(
                matches!(parse_byte_size(text), Err(UnitError::SizeMalformed { .. })),
                "{text:?} should fail"
            );
        }
    }

    #[test]
    fn sizes_beyond_64_bits_overflow() {
        assert!(matches!(
            parse_byte_size("8192p"),
            Err(UnitError::SizeOverflow { .. })
        ));
        assert_eq!(parse_byte_size("8191p").unwrap(), 8191 << 50);
    }

    #[test]
    fn sizes_print_as_decimal_strings_and_read_back_negative_values() {
        let size: ByteSize = serde_json::from_str("\"512m\"").unwrap();
        assert_eq!(serde_json::to_string(&size).unwrap(), "\"536870912\"");
        let unlimited: ByteSize = serde_json::from_str("\"-1\"").unwrap();
        assert_eq!(unlimited, ByteSize(-1));
        let number: ByteSize = serde_json::from_str("1024").unwrap();
        assert_eq!(number, ByteSize(1024));
    }

    #[test]
    fn cpus_parse_from_decimal_text() {
        assert_eq!(parse_cpus("0.5").unwrap(), 0.5);
        assert_eq!(parse_cpus("2").unwrap(), 2.0);
        assert_eq!(parse_cpus("0.001").unwrap(), 0.001);
        assert!(matches!(
            parse_cpus("half"),
            Err(UnitError::CpusMalformed { .. })
        ));
    }

    #[derive(Serialize, Deserialize)]
    struct Cpus {
        #[serde(with = "go_f32")]
        cpus: f32,
    }

    fn cpus_json(value: f32) -> String {
        serde_json::to_string(&Cpus { cpus: value }).unwrap()
    }

    #[test]
    fn cpus_print_with_the_shortest_32_bit_digits() {
        assert_eq!(cpus_json(0.001), r#"{"cpus":0.001}"#);
        assert_eq!(cpus_json(0.1), r#"{"cpus":0.1}"#);
        assert_eq!(cpus_json(1.5), r#"{"cpus":1.5}"#);
        assert_eq!(cpus_json(0.0001), r#"{"cpus":0.0001}"#);
    }

    #[test]
    fn whole_cpus_print_as_integers() {
        assert_eq!(cpus_json(1.0), r#"{"cpus":1}"#);
        assert_eq!(cpus_json(16.0), r#"{"cpus":16}"#);
    }

    #[test]
    fn cpus_read_from_numbers_and_strings() {
        let from_text: Cpus = serde_json::from_str(r#"{"cpus":"0.25"}"#).unwrap();
        assert_eq!(from_text.cpus, 0.25);
        let from_int: Cpus = serde_json::from_str(r#"{"cpus":2}"#).unwrap();
        assert_eq!(from_int.cpus, 2.0);
    }

    #[test]
    fn floats_print_like_go_sprint() {
        assert_eq!(format_go_float(1000.0), "1000");
        assert_eq!(format_go_float(100000.0), "100000");
        assert_eq!(format_go_float(1234567.0), "1.234567e+06");
        assert_eq!(format_go_float(1e20), "1e+20");
        assert_eq!(format_go_float(1e100), "1e+100");
        assert_eq!(format_go_float(0.0001), "0.0001");
        assert_eq!(format_go_float(0.00001), "1e-05");
        assert_eq!(format_go_float(1.5e-7), "1.5e-07");
        assert_eq!(format_go_float(123456.5), "123456.5");
        assert_eq!(format_go_float(1.1), "1.1");
        assert_eq!(format_go_float(-2.5), "-2.5");
        assert_eq!(format_go_float(0.0), "0");
        assert_eq!(format_go_float(-0.0), "-0");
        assert_eq!(format_go_float(f64::INFINITY), "+Inf");
        assert_eq!(format_go_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_go_float(f64::NAN), "NaN");
    }

    #[test]
    fn file_modes_print_in_octal_with_a_leading_zero() {
        assert_eq!(FileMode(0o440).to_string(), "0440");
        assert_eq!(FileMode(0).to_string(), "00");
        assert_eq!(FileMode(0o1204).to_string(), "01204");
    }

    #[test]
    fn file_modes_read_octal_text_and_integer_values() {
        assert_eq!(parse_file_mode("0440").unwrap(), FileMode(0o440));
        assert_eq!(parse_file_mode("440").unwrap(), FileMode(0o440));
        let from_int: FileMode = serde_json::from_str("288").unwrap();
        assert_eq!(from_int, FileMode(0o440));
        assert!(matches!(
            parse_file_mode("0889"),
            Err(UnitError::FileModeMalformed { .. })
        ));
    }
}
