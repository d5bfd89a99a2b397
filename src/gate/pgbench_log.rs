//! pgbench's per-transaction log (`pgbench --log`, files
//! `pgbench_log.<pid>[.<thread>]`), one line per transaction:
//!
//! ```text
//! client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
//! ```
//!
//! `time` is the latency in microseconds, or `failed` (`serialization` /
//! `deadlock` with `--failures-detailed`) for a failed transaction, or
//! `skipped` for one `--latency-limit` skipped; `time_epoch.time_us` is
//! when it ended. Percentiles come from the raw latencies, streamed through
//! a [`Distribution`]. A log written with `--aggregate-interval` holds no
//! per-transaction latencies and is refused with that reason.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::budget::{MetricRef, Objective, Stat};
use super::evaluate::{Measurement, Reading};
use super::quantile::{Distribution, RELATIVE_ERROR};
use super::{input, GateError};
use crate::config::units::MetricUnit;

const SHAPE: &str =
    "client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]";

/// A line that pgbench's per-transaction or aggregated log could hold.
pub fn looks_like(line: &str) -> bool {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let numeric = |t: &&str| t.parse::<f64>().is_ok();
    (6..=16).contains(&tokens.len())
        && numeric(&tokens[0])
        && numeric(&tokens[1])
        && (numeric(&tokens[2]) || is_outcome(tokens[2]))
        && tokens[3..].iter().all(numeric)
}

fn is_outcome(t: &str) -> bool {
    matches!(t, "failed" | "skipped" | "serialization" | "deadlock")
}

/// What the logs add up to.
#[derive(Debug, Default)]
struct Totals {
    latencies_ms: Distribution,
    ok: u64,
    failed: u64,
    skipped: u64,
    first_start: Option<f64>,
    last_end: Option<f64>,
}

impl Totals {
    fn span(&mut self, start: f64, end: f64) {
        self.first_start = Some(self.first_start.map_or(start, |f| f.min(start)));
        self.last_end = Some(self.last_end.map_or(end, |l| l.max(end)));
    }
}

pub fn read(paths: &[PathBuf], objectives: &[Objective]) -> Result<Reading, GateError> {
    let mut totals = Totals::default();
    for path in paths {
        read_one(path, &mut totals)?;
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let mut measurements = Vec::new();
    for o in objectives {
        measurements.push(measure(&names.join(", "), &mut totals, o)?);
    }
    Ok(Reading {
        input: format!(
            "{} {}",
            super::Format::PgbenchLog.describe(),
            names.join(" ")
        ),
        measurements,
        extra: Vec::new(),
    })
}

fn read_one(path: &Path, totals: &mut Totals) -> Result<(), GateError> {
    let mut reader = input::open(path)?;
    let mut buf = String::new();
    let mut number = 0u64;
    let mut lines = 0u64;
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                GateError::input(path, format!("line {}: not text", number + 1))
            }
            _ => input::read_error(path, e),
        })?;
        if n == 0 {
            break;
        }
        number += 1;
        let complete = buf.ends_with('\n');
        let line = buf.trim();
        if line.is_empty() {
            continue;
        }
        lines += 1;
        // pgbench ends every line; a last line without its newline was
        // cut, even when what is left still parses ("…123456" -> "…12").
        if !complete {
            return Err(GateError::input(
                path,
                format!("line {number}: truncated (the file ends inside a line: {line:?})"),
            ));
        }
        let bad = |why: &str| {
            GateError::input(
                path,
                format!("line {number}: {why}; expected `{SHAPE}`, got {line:?}"),
            )
        };
        let t: Vec<&str> = line.split_whitespace().collect();
        if !(6..=8).contains(&t.len()) {
            if looks_like(line) && t[0].parse::<f64>().is_ok_and(|v| v >= 1e9) {
                return Err(GateError::input(
                    path,
                    "an aggregated log (--aggregate-interval) holds no per-transaction latencies; run pgbench with --log alone",
                ));
            }
            return Err(bad(&format!("{} fields", t.len())));
        }
        if t[0].parse::<f64>().is_ok_and(|v| v >= 1e9) {
            return Err(GateError::input(
                path,
                "an aggregated log (--aggregate-interval) holds no per-transaction latencies; run pgbench with --log alone",
            ));
        }
        let int = |i: usize, what: &str| {
            t[i].parse::<u64>()
                .map_err(|_| bad(&format!("{what} is not a whole number")))
        };
        int(0, "client_id")?;
        int(1, "transaction_no")?;
        int(3, "script_no")?;
        let end = int(4, "time_epoch")? as f64 + int(5, "time_us")? as f64 / 1e6;
        match t[2] {
            "failed" | "serialization" | "deadlock" => {
                totals.failed += 1;
                totals.span(end, end);
            }
            "skipped" => totals.skipped += 1,
            us => {
                let us = us
                    .parse::<u64>()
                    .map_err(|_| bad("time is neither microseconds nor failed/skipped"))?;
                let ms = us as f64 / 1000.0;
                totals.ok += 1;
                totals.latencies_ms.add(ms);
                totals.span(end - ms / 1000.0, end);
            }
        }
    }
    if lines == 0 {
        return Err(GateError::input(path, "empty: no transactions logged"));
    }
    Ok(())
}

fn measure(files: &str, totals: &mut Totals, o: &Objective) -> Result<Measurement, GateError> {
    let none = |what: &str, unit| {
        Measurement::none(what, unit, format!("no successful transactions in {files}"))
    };
    match (&o.metric, o.stat) {
        (MetricRef::Latency, Some(stat)) => {
            let unit = MetricUnit::Milliseconds;
            let d = &mut totals.latencies_ms;
            let source = format!("transaction latency {stat}");
            if d.count() == 0 {
                return Ok(none(&source, unit));
            }
            let value = match stat {
                Stat::Percentile(p) => d.percentile(p),
                Stat::Median => d.percentile(50.0),
                Stat::Avg => d.mean(),
                Stat::Min => d.min(),
                Stat::Max => d.max(),
                other => return Err(o.problem(format!("{other} is not a latency statistic"))),
            };
            let note = (!d.is_exact()).then(|| {
                format!(
                    "estimated within ±{}% (logarithmic sketch)",
                    RELATIVE_ERROR * 100.0
                )
            });
            let n = d.count();
            Ok(match value {
                Some(v) => Measurement::of(source, unit, v, Some(n)).with_note(note),
                None => none(&source, unit),
            })
        }
        (MetricRef::Throughput, None) => {
            let unit = MetricUnit::PerSecond;
            let span = match (totals.first_start, totals.last_end) {
                (Some(a), Some(b)) if b > a => b - a,
                _ => return Ok(none("transactions per second", unit)),
            };
            if totals.ok == 0 {
                return Ok(none("transactions per second", unit));
            }
            let m = Measurement::of(
                "transactions per second",
                unit,
                totals.ok as f64 / span,
                Some(totals.ok),
            );
            Ok(m.with_note(Some(format!("{} transactions over {span:.1} s", totals.ok))))
        }
        (MetricRef::ErrorRate, None) => {
            let unit = MetricUnit::Percent;
            let total = totals.ok + totals.failed;
            if total == 0 {
                return Ok(Measurement::none(
                    "failed transactions",
                    unit,
                    format!("no transactions in {files}"),
                ));
            }
            let m = Measurement::of(
                "failed transactions",
                unit,
                totals.failed as f64 / total as f64 * 100.0,
                Some(total),
            );
            let note = (totals.skipped > 0)
                .then(|| format!("{} skipped transactions not counted", totals.skipped));
            Ok(m.with_note(note))
        }
        (metric, _) => Err(o.problem(format!(
            "a pgbench log has latency (with a stat), throughput and error_rate, not {metric}"
        ))),
    }
}

#[cfg(test)]
mod tests;
