//! Compose quantities in Kubernetes units: durations in whole seconds,
//! CPUs in millicores, byte sizes with binary suffixes.
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::model::{ByteSize, Duration};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A duration in whole seconds, rounded up (a probe timeout of 1.5s must
/// not become 1s), at least `min`, at most `i32::MAX`.
pub fn seconds(duration: Duration, min: i32) -> i32 {
    let nanos = duration.as_nanos().max(0);
    let secs = nanos / NANOS_PER_SECOND + i64::from(nanos % NANOS_PER_SECOND != 0);
    i32::try_from(secs).unwrap_or(i32::MAX).max(min)
}

/// A duration in whole seconds, rounded up, as the i64 some fields take.
pub fn seconds_i64(duration: Duration) -> i64 {
    let nanos = duration.as_nanos().max(0);
    nanos / NANOS_PER_SECOND + i64::from(nanos % NANOS_PER_SECOND != 0)
}

/// A CPU count as a quantity: whole CPUs as a number, fractions in
/// millicores (`0.25` → `250m`); at least `1m` for any positive count.
pub fn cpu(cpus: f32) -> Quantity {
    let millis = (f64::from(cpus) * 1000.0).round().max(1.0);
    // Bounded by f32's range; CPU counts are small.
    #[allow(clippy::cast_possible_truncation)]
    let millis = millis.min(i64::MAX as f64) as i64;
    if millis % 1000 == 0 {
        Quantity((millis / 1000).to_string())
    } else {
        Quantity(format!("{millis}m"))
    }
}

/// A byte count as a quantity, with the largest binary suffix that
/// divides it exactly (`33554432` → `32Mi`).
pub fn bytes(size: ByteSize) -> Quantity {
    bytes_i64(size.bytes())
}

/// A byte count as a quantity (see [`bytes`]).
pub fn bytes_i64(count: i64) -> Quantity {
    const SUFFIXES: [(&str, i64); 5] = [
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    if count > 0 {
        for (suffix, unit) in SUFFIXES {
            if count % unit == 0 {
                return Quantity(format!("{}{suffix}", count / unit));
            }
        }
    }
    Quantity(count.max(0).to_string())
}

/// Whether `text` is a plain quantity: a decimal number with an optional
/// binary or decimal suffix (`10Gi`, `500M`, `1.5Gi`).
pub fn is_quantity(text: &str) -> bool {
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let digits_ok = !number.is_empty()
        && number.chars().filter(|c| *c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    digits_ok
        && matches!(
            suffix,
            "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "k" | "M" | "G" | "T" | "P" | "E"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds_with_a_floor() {
        assert_eq!(seconds(Duration::from_nanos(1_500_000_000), 1), 2);
        assert_eq!(seconds(Duration::from_secs(30), 1), 30);
        assert_eq!(seconds(Duration::from_nanos(100_000_000), 1), 1);
        assert_eq!(seconds(Duration::ZERO, 1), 1);
        assert_eq!(seconds(Duration::ZERO, 0), 0);
    }

    #[test]
    fn cpus_become_whole_numbers_or_millicores() {
        assert_eq!(cpu(0.25).0, "250m");
        assert_eq!(cpu(2.0).0, "2");
        assert_eq!(cpu(1.5).0, "1500m");
        assert_eq!(cpu(0.1).0, "100m");
        assert_eq!(cpu(0.0001).0, "1m");
    }

    #[test]
    fn byte_sizes_take_the_largest_exact_binary_suffix() {
        assert_eq!(bytes_i64(32 * 1024 * 1024).0, "32Mi");
        assert_eq!(bytes_i64(1 << 30).0, "1Gi");
        assert_eq!(bytes_i64(1536).0, "1536");
        assert_eq!(bytes_i64(2048).0, "2Ki");
        assert_eq!(bytes_i64(1000).0, "1000");
    }

    #[test]
    fn quantities_are_a_number_and_a_known_suffix() {
        for good in ["10Gi", "1", "500M", "1.5Gi", "100k"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "Gi", "10GB", "1.2.3", "-1", "ten"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
