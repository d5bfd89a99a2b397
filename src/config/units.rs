//! Units as users write them in config files and on the command line.
//!
//! One parser per unit kind, each with a printer that round-trips, so a value
//! read from `tuner.yaml` prints back the way the user wrote it.
//!
//! Over 500 lines with its tests, on purpose: each unit's parser, printer
//! and limits are read together, and splitting them by unit would scatter
//! the one table users' values go through.

use std::fmt;
use std::time::Duration;

/// Why a string is not a valid value of some unit, with the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {input:?}: {reason}; accepted forms: {forms}")]
pub struct UnitError {
    pub kind: &'static str,
    pub input: String,
    pub reason: String,
    pub forms: &'static str,
}

fn unit_error(
    kind: &'static str,
    input: &str,
    reason: impl Into<String>,
    forms: &'static str,
) -> UnitError {
    UnitError {
        kind,
        input: input.to_string(),
        reason: reason.into(),
        forms,
    }
}

const DURATION_FORMS: &str = "`500ms`, `30s`, `15m`, `1h`, `1h30m`";
const BYTES_FORMS: &str = "`768M`, `1.5G`, `512m`, `64Mi`, `2GB`, or plain bytes `805306368`";
const CPUS_FORMS: &str = "a number of cores such as `1.5`, `0.25` or `2`";
const PERCENT_FORMS: &str = "`25%` or a plain number `25`";

const DAY: u64 = 86_400;

/// The longest duration any value may have: the largest of the limits
/// below. Longer values are mistakes (`100y`, `15d` for `15m`) and would
/// overflow the date arithmetic they meet (`now - window`).
pub const MAX_DURATION: Duration = Duration::from_secs(30 * DAY);

/// How long a duration may be, by what it measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// How far back to read or how long to watch: metric windows,
    /// `observe`, `settle`. At most 30 days, Prometheus' usual retention.
    Window,
    /// How long to wait for a server, a command, a restart or a drain. At
    /// most a day: anything longer is a hung run, not patience.
    Timeout,
    /// The time between two samples, polls or health checks. At most an
    /// hour, or a window holds too few of them to judge.
    Interval,
}

impl Limit {
    pub fn max(self) -> Duration {
        match self {
            Limit::Window => MAX_DURATION,
            Limit::Timeout => Duration::from_secs(DAY),
            Limit::Interval => Duration::from_secs(3_600),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Limit::Window => "a window",
            Limit::Timeout => "a timeout",
            Limit::Interval => "an interval",
        }
    }

    /// `Err("<key>: ... longer than the maximum ...")` when `d` is over the limit.
    pub fn check(self, key: &str, d: Duration) -> Result<(), String> {
        if d <= self.max() {
            return Ok(());
        }
        Err(format!(
            "{key}: {} is longer than the maximum of {} for {}; use a shorter duration (`s`, `m`, `h`, `d`)",
            format_duration(d),
            format_duration(self.max()),
            self.what()
        ))
    }
}

/// Parses `200ms`, `15m`, `1h30m` (humantime syntax), at most
/// [`MAX_DURATION`]. A bare number is refused because `15` could mean
/// seconds or minutes, and guessing wrong is costly.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let d = parse_duration_unbounded(input)?;
    if d > MAX_DURATION {
        return Err(unit_error(
            "duration",
            input,
            format!(
                "longer than the maximum of {}",
                format_duration(MAX_DURATION)
            ),
            DURATION_FORMS,
        ));
    }
    Ok(d)
}

/// [`parse_duration`] with the tighter maximum of `limit`, for flags.
pub fn parse_duration_within(input: &str, limit: Limit) -> Result<Duration, UnitError> {
    let d = parse_duration(input)?;
    if d > limit.max() {
        return Err(unit_error(
            "duration",
            input,
            format!(
                "longer than the maximum of {} for {}",
                format_duration(limit.max()),
                limit.what()
            ),
            DURATION_FORMS,
        ));
    }
    Ok(d)
}

/// Humantime syntax with no maximum, for config values: `config::load`
/// then checks each against its [`Limit`], naming the key.
pub(crate) fn parse_duration_unbounded(input: &str) -> Result<Duration, UnitError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(unit_error("duration", input, "empty", DURATION_FORMS));
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(unit_error(
            "duration",
            input,
            "a unit is required",
            DURATION_FORMS,
        ));
    }
    humantime::parse_duration(s)
        .map_err(|e| unit_error("duration", input, e.to_string(), DURATION_FORMS))
}

/// Prints a duration in the largest exact units (`15m`, `1h30m`, `200ms`).
pub fn format_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms == 0 {
        return "0s".to_string();
    }
    if !total_ms.is_multiple_of(1000) {
        if total_ms < 1000 {
            return format!("{total_ms}ms");
        }
        return format!("{:.3}s", d.as_secs_f64())
            .trim_end_matches('0')
            .to_string();
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400u64), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// A byte count. Suffixes follow Docker and Compose: `K`, `M`, `G`, `T` (and
/// `Ki`/`KB`/`KiB` spellings, either case) are powers of 1024, because that is
/// what `docker update --memory 768M` means.
pub fn parse_bytes(input: &str) -> Result<u64, UnitError> {
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() {
        return Err(unit_error("size", input, "no number", BYTES_FORMS));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| unit_error("size", input, "not a number", BYTES_FORMS))?;
    let multiplier: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "ki" | "kib" => 1 << 10,
        "m" | "mb" | "mi" | "mib" => 1 << 20,
        "g" | "gb" | "gi" | "gib" => 1 << 30,
        "t" | "tb" | "ti" | "tib" => 1 << 40,
        other => {
            return Err(unit_error(
                "size",
                input,
                format!("unknown suffix {other:?}"),
                BYTES_FORMS,
            ))
        }
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(unit_error("size", input, "out of range", BYTES_FORMS));
    }
    if multiplier == 1 && value.fract() != 0.0 {
        return Err(unit_error("size", input, "fractional bytes", BYTES_FORMS));
    }
    Ok(bytes.round() as u64)
}

/// Prints bytes in the largest binary unit that keeps the value exact to one
/// decimal (`768M`, `1.5G`), falling back to plain bytes.
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [
        ("T", 1u64 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ] {
        if bytes >= size {
            if bytes.is_multiple_of(size) {
                return format!("{}{unit}", bytes / size);
            }
            let tenths = bytes as f64 * 10.0 / size as f64;
            if (tenths - tenths.round()).abs() < 1e-9 {
                return format!("{:.1}{unit}", bytes as f64 / size as f64);
            }
        }
    }
    bytes.to_string()
}

/// CPU cores as a decimal (`1.5`). Docker stores them as nano-CPUs.
pub fn parse_cpus(input: &str) -> Result<f64, UnitError> {
    let s = input.trim();
    let value: f64 = s
        .parse()
        .map_err(|_| unit_error("CPU count", input, "not a number", CPUS_FORMS))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(unit_error(
            "CPU count",
            input,
            "must be a positive number",
            CPUS_FORMS,
        ));
    }
    Ok(value)
}

pub fn cpus_to_nano(cpus: f64) -> i64 {
    (cpus * 1e9).round() as i64
}

pub fn nano_to_cpus(nano: i64) -> f64 {
    nano as f64 / 1e9
}

/// Percent, with or without the `%` sign. Stored as a number of percent
/// (25.0 for `25%`), the unit the SLA table uses.
pub fn parse_percent(input: &str) -> Result<f64, UnitError> {
    let s = input.trim();
    let number = s.strip_suffix('%').unwrap_or(s).trim();
    let value: f64 = number
        .parse()
        .map_err(|_| unit_error("percentage", input, "not a number", PERCENT_FORMS))?;
    if !value.is_finite() {
        return Err(unit_error("percentage", input, "not finite", PERCENT_FORMS));
    }
    Ok(value)
}

/// The unit a metric's value is measured in. Decides how values print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricUnit {
    /// Bytes per second (WAL rate).
    BytesPerSecond,
    /// Percent (IO-wait).
    Percent,
    /// Milliseconds (latency).
    Milliseconds,
    /// Degrees Celsius (temperature).
    Celsius,
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
    /// A plain number.
    Ratio,
    /// Events per second (requests, transactions): `250/s`, `250 rps`.
    PerSecond,
}

impl MetricUnit {
    /// The name as written in tuner.yaml.
    pub fn name(self) -> &'static str {
        match self {
            MetricUnit::BytesPerSecond => "bytes_per_second",
            MetricUnit::Percent => "percent",
            MetricUnit::Milliseconds => "milliseconds",
            MetricUnit::Celsius => "celsius",
            MetricUnit::Seconds => "seconds",
            MetricUnit::Bytes => "bytes",
            MetricUnit::Ratio => "ratio",
            MetricUnit::PerSecond => "per_second",
        }
    }

    /// A unit a per-second rate may be in: one that `per: transaction` can
    /// divide by transactions per second. A plain number may be any rate.
    pub fn is_rate(self) -> bool {
        matches!(self, MetricUnit::BytesPerSecond | MetricUnit::Ratio)
    }

    /// A value of this rate divided by transactions per second:
    /// `4.9 KiB/txn` for bytes per second.
    pub fn format_per_transaction(self, value: f64) -> String {
        match self {
            MetricUnit::BytesPerSecond => format!("{}/txn", format_human_bytes(value)),
            MetricUnit::Ratio => format!("{}/txn", trim_float(value, 3)),
            other => format!("{} per txn", other.format(value)),
        }
    }

    pub fn format(self, value: f64) -> String {
        match self {
            MetricUnit::BytesPerSecond => format!("{}/s", format_human_bytes(value)),
            MetricUnit::Bytes => format_human_bytes(value),
            MetricUnit::Percent => format!("{value:.1}%"),
            MetricUnit::Milliseconds => format!("{}ms", trim_float(value, 1)),
            MetricUnit::Celsius => format!("{value:.1}°C"),
            MetricUnit::Seconds => format!("{}s", trim_float(value, 2)),
            MetricUnit::Ratio => trim_float(value, 3),
            MetricUnit::PerSecond => format!("{}/s", trim_float(value, 1)),
        }
    }

    /// Parses a threshold written in this unit (`200ms`, `25%`, `85`, `2M`).
    pub fn parse(self, input: &str) -> Result<f64, UnitError> {
        let s = input.trim();
        match self {
            MetricUnit::Percent => parse_percent(s),
            MetricUnit::Milliseconds => match s.strip_suffix("ms") {
                Some(n) => plain_number(n, input, "latency", "`200ms` or `200`"),
                None if s.ends_with('s') || s.ends_with('m') => {
                    parse_duration(s).map(|d| d.as_secs_f64() * 1000.0)
                }
                None => plain_number(s, input, "latency", "`200ms` or `200`"),
            },
            MetricUnit::Seconds => parse_duration(s)
                .map(|d| d.as_secs_f64())
                .or_else(|_| plain_number(s, input, "seconds", "`1.5s` or `1.5`")),
            MetricUnit::Celsius => plain_number(
                s.trim_end_matches("°C").trim_end_matches('C'),
                input,
                "temperature",
                "`85` or `85C`",
            ),
            MetricUnit::BytesPerSecond => parse_bytes(s.trim_end_matches("/s")).map(|b| b as f64),
            MetricUnit::Bytes => parse_bytes(s).map(|b| b as f64),
            MetricUnit::Ratio => plain_number(s, input, "number", "`1.5`"),
            MetricUnit::PerSecond => {
                let n = ["/s", "rps", "tps"]
                    .iter()
                    .find_map(|suffix| s.strip_suffix(suffix))
                    .unwrap_or(s);
                plain_number(n, input, "rate", "`250/s`, `250 rps` or `250`")
            }
        }
    }
}

fn plain_number(
    s: &str,
    input: &str,
    kind: &'static str,
    forms: &'static str,
) -> Result<f64, UnitError> {
    let value: f64 = s
        .trim()
        .parse()
        .map_err(|_| unit_error(kind, input, "not a number", forms))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(unit_error(kind, input, "not finite", forms))
    }
}

fn trim_float(value: f64, decimals: usize) -> String {
    let s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Human bytes with one decimal (`1.2M`), for measured values that are never exact.
pub fn format_human_bytes(value: f64) -> String {
    let abs = value.abs();
    for (unit, size) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if abs >= size as f64 {
            return format!("{}{unit}", trim_float(value / size as f64, 1));
        }
    }
    format!("{}B", trim_float(value, 0))
}

/// A wrapper that prints a duration the way it is parsed.
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_round_trip() {
        for s in ["15m", "200ms", "1h30m", "30s", "2d"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
        }
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
    }

    #[test]
    fn durations_are_capped() {
        assert_eq!(parse_duration("30d").unwrap(), MAX_DURATION);
        for huge in ["31d", "100y", "1000000000y"] {
            let err = parse_duration(huge).unwrap_err().to_string();
            assert!(
                err.contains("longer than the maximum of 30d"),
                "{huge}: {err}"
            );
        }
        assert!(parse_duration("99999999999999999999999y").is_err());
        let err = parse_duration_within("2d", Limit::Timeout)
            .unwrap_err()
            .to_string();
        assert!(err.contains("maximum of 1d for a timeout"), "{err}");
        assert_eq!(
            parse_duration_within("1h", Limit::Interval).unwrap(),
            Duration::from_secs(3_600)
        );
        let err = Limit::Window
            .check("tune.observe", parse_duration_unbounded("100y").unwrap())
            .unwrap_err();
        assert!(
            err.starts_with("tune.observe: 36525d is longer than the maximum of 30d for a window"),
            "{err}"
        );
    }

    #[test]
    fn bare_number_duration_is_refused_with_forms() {
        let err = parse_duration("15").unwrap_err();
        assert!(err.to_string().contains("a unit is required"), "{err}");
        assert!(err.to_string().contains("15m"), "{err}");
    }

    #[test]
    fn bytes_accept_docker_forms() {
        assert_eq!(parse_bytes("768M").unwrap(), 768 << 20);
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("805306368").unwrap(), 805_306_368);
        assert_eq!(parse_bytes("64Mi").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("2GB").unwrap(), 2 << 30);
        for bad in ["", "M", "12X", "1.5", "-5M", "lots"] {
            let err = parse_bytes(bad).unwrap_err();
            assert!(err.to_string().contains("768M"), "{bad}: {err}");
        }
    }

    #[test]
    fn bytes_print_back_as_written() {
        assert_eq!(format_bytes(768 << 20), "768M");
        assert_eq!(format_bytes(3 << 29), "1.5G");
        assert_eq!(format_bytes(1000), "1000");
    }

    #[test]
    fn cpus_and_percent() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1.5);
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("abc").is_err());
        assert_eq!(cpus_to_nano(1.5), 1_500_000_000);
        assert_eq!(parse_percent("25%").unwrap(), 25.0);
        assert_eq!(parse_percent("25").unwrap(), 25.0);
        assert!(parse_percent("x%").is_err());
    }

    #[test]
    fn metric_units_parse_thresholds() {
        assert_eq!(MetricUnit::Milliseconds.parse("200ms").unwrap(), 200.0);
        assert_eq!(MetricUnit::Milliseconds.parse("0.2s").unwrap(), 200.0);
        assert_eq!(MetricUnit::Percent.parse("25%").unwrap(), 25.0);
        assert_eq!(MetricUnit::Celsius.parse("85").unwrap(), 85.0);
        assert_eq!(MetricUnit::BytesPerSecond.parse("2M").unwrap(), 2097152.0);
        assert_eq!(MetricUnit::Milliseconds.format(180.0), "180ms");
        assert_eq!(MetricUnit::BytesPerSecond.format(1_300_000.0), "1.2M/s");
        for written in ["250/s", "250 rps", "250tps", "250"] {
            assert_eq!(MetricUnit::PerSecond.parse(written).unwrap(), 250.0);
        }
        assert!(MetricUnit::PerSecond.parse("fast/s").is_err());
        assert_eq!(MetricUnit::PerSecond.format(123.456), "123.5/s");
    }
}
