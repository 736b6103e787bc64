//! Durations as users write them in SQL: `'5 seconds'`, `'500 ms'`, `'1 minute'`.

use std::time::Duration;

/// The longest duration accepted: 1000 days.
const MAX_DURATION_MS: u64 = 1000 * 86_400_000;

/// Parses a duration such as `5 seconds`, `1 second`, `500 milliseconds`,
/// `500ms`, `2 minutes`, `1 hour`, `1.5 s`. Returns a message naming the
/// accepted units when the text is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let bad = || {
        format!(
            "'{text}' is not a duration: write a number and a unit, e.g. '5 seconds' \
             (units: ms, millisecond(s), s, second(s), min, minute(s), h, hour(s))"
        )
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let unit_ms: f64 = match unit.as_str() {
        "ms" | "millis" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        _ => return Err(bad()),
    };
    let ms = value * unit_ms;
    if !ms.is_finite() || ms < 0.0 || ms.fract() != 0.0 {
        return Err(format!("'{text}' is not a whole number of milliseconds"));
    }
    if ms > MAX_DURATION_MS as f64 {
        return Err(format!("'{text}' is too long: at most 1000 days"));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// Renders a duration the way users write it: `5 seconds`, `500 ms`, `2 minutes`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let plural = |n: u128, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if ms != 0 && ms % 3_600_000 == 0 {
        plural(ms / 3_600_000, "hour")
    } else if ms != 0 && ms % 60_000 == 0 {
        plural(ms / 60_000, "minute")
    } else if ms != 0 && ms % 1_000 == 0 {
        plural(ms / 1_000, "second")
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!(parse_duration("5 seconds").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1 second").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration(" 2 MINUTES ").unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            parse_duration("1.5 s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("1 hour").unwrap(), Duration::from_secs(3600));
    }

    #[test]
    fn rejects_non_durations() {
        assert!(
            parse_duration("fast")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("5 parsecs").unwrap_err().contains("units"));
        assert!(
            parse_duration("0.1 ms")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            parse_duration("10000000000000000000 ms")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn formats_round_trip() {
        for s in ["5 seconds", "1 second", "500 ms", "2 minutes", "1 hour"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
