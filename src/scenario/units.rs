//! Human units in scenario files: durations (`500ms`, `2s`, `15m`), sizes (`8KiB`, `2MB`),
//! rates (`5/s`, `300/min`). Each parses from a YAML string (or a bare number where the unit is
//! unambiguous) and fails with a message that shows the accepted forms.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written with a unit. Bare numbers are refused: `30` could be seconds or
/// milliseconds, and guessing wrong makes a run 1000x too long or too short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

/// A size in bytes; a bare integer is bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

/// Events per second; a bare number is per second.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Rate(pub f64);

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit; write e.g. 500ms, 2s, 15m or 1h"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 500ms, 2s, 15m or 1h"))?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}`; use us, ms, s, m or h"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("`{text}` is out of range"))
}

pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. 512, 8KiB, 2MiB or 1MB"))?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`; use B, KiB, MiB, GiB, kB, MB or GB"
            ))
        }
    };
    Ok((value * scale).round() as u64)
}

pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, per) = text.split_once('/').unwrap_or((text, "s"));
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a rate; write e.g. 5, 5/s, 300/min or 100/h"))?;
    let seconds = match per.trim() {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" | "hour" => 3600.0,
        other => return Err(format!("unknown rate unit `/{other}`; use /s, /min or /h")),
    };
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("rate `{text}` must be a non-negative number"));
    }
    Ok(value / seconds)
}

struct UnitVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
    from_number: Option<fn(f64) -> Result<T, String>>,
}

impl<'de, T> Visitor<'de> for UnitVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_f64(v as f64)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_f64(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        match self.from_number {
            Some(convert) => convert(v).map_err(E::custom),
            None => Err(E::custom(format!(
                "`{v}` has no unit; write it as a string with a unit, e.g. \"{v}s\" or \"{v}ms\""
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting: "a duration such as 500ms, 2s, 15m",
            parse: |s| parse_duration(s).map(HumanDuration),
            from_number: None,
        })
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting: "a size such as 512, 8KiB, 2MiB",
            parse: |s| parse_size(s).map(ByteSize),
            from_number: Some(|v| {
                if v >= 0.0 && v.fract() == 0.0 {
                    Ok(ByteSize(v as u64))
                } else {
                    Err(format!("size `{v}` must be a whole number of bytes"))
                }
            }),
        })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting: "a rate such as 5, 5/s, 300/min",
            parse: |s| parse_rate(s).map(Rate),
            from_number: Some(|v| parse_rate(&v.to_string()).map(Rate)),
        })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("3 parsecs")
            .unwrap_err()
            .contains("unknown duration unit"));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("2MiB"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_size("1.5kB"), Ok(1500));
        assert!(parse_size("8 furlongs").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("5"), Ok(5.0));
        assert_eq!(parse_rate("5/s"), Ok(5.0));
        assert_eq!(parse_rate("300/min"), Ok(5.0));
        assert_eq!(parse_rate("3600/h"), Ok(1.0));
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("5/fortnight").is_err());
    }
}
