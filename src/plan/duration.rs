//! Human durations used in plans: `90s`, `30m`, `2h`, `1h30m`, `1.5h`, `1 hour`,
//! and reporting intervals like `every-30-min`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

/// A duration written in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PlanDuration(pub Duration);

impl PlanDuration {
    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// Seconds as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "ms" | "msec" | "millisecond" | "milliseconds" => 0.001,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        _ => return None,
    })
}

/// Parses a duration such as `90s`, `1h30m`, `1.5h` or `2 hours`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError("empty duration".into()));
    }
    let bad = |why: &str| {
        DurationError(format!(
            "invalid duration {text:?}: {why} (write e.g. \"90s\", \"30m\", \"2h\", \"1h30m\", \"1.5h\")"
        ))
    };
    let mut total = 0.0f64;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(bad("expected a number"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| bad("malformed number"))?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(bad("missing unit"));
        }
        let unit = rest[..unit_len].to_ascii_lowercase();
        let factor = unit_seconds(&unit).ok_or_else(|| bad(&format!("unknown unit {unit:?}")))?;
        total += number * factor;
        rest = rest[unit_len..].trim_start();
    }
    if !total.is_finite() || total > 1e10 {
        return Err(bad("too large"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration compactly: `1h30m`, `45s`, `250ms`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let mut secs = duration.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

impl FromStr for PlanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(PlanDuration)
    }
}

impl fmt::Display for PlanDuration {
    /// Like [`format_duration`], but exact to the millisecond (`1s500ms`, not
    /// `1s`): this text is how a plan's durations are serialized (the journal
    /// keeps the plan that way for `resume`), so it must read back the same.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.subsec_millis();
        if self.0.as_secs() == 0 || millis == 0 {
            return f.write_str(&format_duration(self.0));
        }
        write!(
            f,
            "{}{millis}ms",
            format_duration(Duration::from_secs(self.0.as_secs()))
        )
    }
}

/// How often agents report progress: `every-30-min`, `every-2-hours`, `every-5m`, `15m`, or `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressReporting {
    /// The text as written in the plan.
    pub text: String,
    /// The interval; `None` when reporting is off.
    pub interval: Option<Duration>,
}

impl Default for ProgressReporting {
    fn default() -> Self {
        Self {
            text: "every-30-min".into(),
            interval: Some(Duration::from_secs(30 * 60)),
        }
    }
}

impl ProgressReporting {
    /// A phrase for prompts: "every 30 minutes" or "when something changes".
    pub fn describe(&self) -> String {
        match self.interval {
            None => "at each milestone".into(),
            Some(d) => {
                let secs = d.as_secs();
                match secs {
                    s if s % 3600 == 0 && s >= 3600 => plural(s / 3600, "hour"),
                    s if s % 60 == 0 && s >= 60 => plural(s / 60, "minute"),
                    s => plural(s, "second"),
                }
            }
        }
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("every {unit}")
    } else {
        format!("every {n} {unit}s")
    }
}

impl FromStr for ProgressReporting {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if matches!(text, "off" | "none" | "never" | "on-change") {
            return Ok(Self {
                text: text.into(),
                interval: None,
            });
        }
        let spec = text
            .strip_prefix("every-")
            .unwrap_or(text)
            .replace('-', " ");
        let interval = parse_duration(&spec).map_err(|_| {
            DurationError(format!(
                "invalid progressReporting {text:?} (write e.g. \"every-30-min\", \"every-2-hours\", \"15m\" or \"off\")"
            ))
        })?;
        if interval.is_zero() {
            return Err(DurationError(
                "progressReporting interval must be greater than zero".into(),
            ));
        }
        Ok(Self {
            text: text.into(),
            interval: Some(interval),
        })
    }
}

impl fmt::Display for ProgressReporting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> f64 {
        parse_duration(text).unwrap().as_secs_f64()
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(secs("90s"), 90.0);
        assert_eq!(secs("30m"), 1800.0);
        assert_eq!(secs("2h"), 7200.0);
        assert_eq!(secs("1h30m"), 5400.0);
        assert_eq!(secs("1.5h"), 5400.0);
        assert_eq!(secs("1 hour"), 3600.0);
        assert_eq!(secs("2 hours 15 min"), 8100.0);
        assert_eq!(secs("250ms"), 0.25);
        assert_eq!(secs("1D"), 86400.0);
    }

    #[test]
    fn rejects_bad_durations_with_a_reason() {
        for bad in ["", "90", "h", "2x", "1.2.3h", "-5m", "1e400h"] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("duration"), "{bad}: {err}");
        }
        assert!(
            parse_duration("90")
                .unwrap_err()
                .to_string()
                .contains("missing unit")
        );
    }

    #[test]
    fn formats_compactly_and_round_trips() {
        for text in ["1h30m", "45s", "2d3h", "250ms", "0s", "1m1s", "1s500ms"] {
            let d: PlanDuration = text.parse().unwrap();
            assert_eq!(d.to_string(), text);
        }
        // Sub-second parts survive serialization (the journaled plan of a resume).
        let d: PlanDuration = "1.5s".parse().unwrap();
        assert_eq!(d.to_string().parse::<PlanDuration>().unwrap(), d);
        assert_eq!(
            format_duration(d.get()),
            "1s",
            "the readable form stays compact"
        );
    }

    #[test]
    fn reads_progress_reporting_intervals() {
        let p: ProgressReporting = "every-30-min".parse().unwrap();
        assert_eq!(p.interval, Some(Duration::from_secs(1800)));
        assert_eq!(p.describe(), "every 30 minutes");
        let p: ProgressReporting = "every-2-hours".parse().unwrap();
        assert_eq!(p.interval, Some(Duration::from_secs(7200)));
        let p: ProgressReporting = "every-1h".parse().unwrap();
        assert_eq!(p.describe(), "every hour");
        let p: ProgressReporting = "15m".parse().unwrap();
        assert_eq!(p.interval, Some(Duration::from_secs(900)));
        assert_eq!("off".parse::<ProgressReporting>().unwrap().interval, None);
        assert!("every-often".parse::<ProgressReporting>().is_err());
        assert!("every-0-min".parse::<ProgressReporting>().is_err());
    }
}
