//! What pgbench prints at the end of a run:
//!
//! ```text
//! number of transactions actually processed: 1520
//! number of failed transactions: 3 (0.197%)
//! latency average = 3.946 ms
//! tps = 506.816012 (without initial connection time)
//! ```
//!
//! The summary has the latency average (and a stddev with `--rate` or
//! `--progress`) but no percentiles: a budget on p95 needs the
//! per-transaction `--log` files (`pgbench_log`).

use std::path::Path;

use super::budget::{MetricRef, Objective, Stat};
use super::evaluate::{Measurement, Reading};
use super::{input, GateError};
use crate::config::units::MetricUnit;

/// pgbench's summary, with `-r`, lists every statement: still small.
const LIMIT: u64 = 16 << 20;

/// The numbers of one summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub processed: u64,
    /// `None` before PostgreSQL 15, which did not count failures.
    pub failed: Option<u64>,
    pub latency_average_ms: Option<f64>,
    pub tps: Option<f64>,
}

pub fn parse(path: &Path, text: &str) -> Result<Summary, GateError> {
    let mut s = Summary::default();
    let mut processed = None;
    let mut tps_without = None;
    let mut tps_any = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let field = |what: &str, raw: &str| -> Result<f64, GateError> {
            raw.trim().parse::<f64>().map_err(|_| {
                GateError::input(
                    path,
                    format!("line {}: {what} {raw:?} is not a number", i + 1),
                )
            })
        };
        if let Some(rest) = line.strip_prefix("number of transactions actually processed:") {
            // `1520` with -T, `1520/2000` with -t.
            let done = rest.trim().split('/').next().unwrap_or("");
            processed = Some(field("transactions processed", done)? as u64);
        } else if let Some(rest) = line.strip_prefix("number of failed transactions:") {
            let count = rest.split_whitespace().next().unwrap_or("");
            s.failed = Some(field("failed transactions", count)? as u64);
        } else if let Some(rest) = line.strip_prefix("latency average =") {
            let ms = rest.trim().strip_suffix("ms").unwrap_or(rest);
            s.latency_average_ms = Some(field("latency average", ms)?);
        } else if let Some(rest) = line.strip_prefix("tps =") {
            let number = rest.split_whitespace().next().unwrap_or("");
            let v = field("tps", number)?;
            // PostgreSQL 14+: "(without initial connection time)"; before
            // that two lines, "(excluding connections establishing)" the one.
            if rest.contains("without") || rest.contains("excluding") {
                tps_without = Some(v);
            }
            tps_any.get_or_insert(v);
        }
    }
    let Some(processed) = processed else {
        return Err(GateError::input(
            path,
            "no \"number of transactions actually processed:\" line: not pgbench output, or cut before its summary",
        ));
    };
    s.processed = processed;
    s.tps = tps_without.or(tps_any);
    if s.tps.is_none() {
        return Err(GateError::input(
            path,
            "no \"tps = \" line: pgbench's output is cut short (truncated?)",
        ));
    }
    Ok(s)
}

pub fn read(path: &Path, objectives: &[Objective]) -> Result<Reading, GateError> {
    let text = input::read_small(path, LIMIT)?;
    let summary = parse(path, &text)?;
    let mut measurements = Vec::new();
    for o in objectives {
        measurements.push(measure(path, &summary, o)?);
    }
    Ok(Reading {
        input: format!(
            "{} {}",
            super::Format::PgbenchSummary.describe(),
            path.display()
        ),
        measurements,
        extra: Vec::new(),
    })
}

fn measure(path: &Path, s: &Summary, o: &Objective) -> Result<Measurement, GateError> {
    let total = s.processed + s.failed.unwrap_or(0);
    let samples = Some(total);
    let none = |what: &str, unit| {
        Measurement::none(what, unit, format!("no transactions in {}", path.display()))
    };
    match (&o.metric, o.stat) {
        (MetricRef::Latency, Some(Stat::Avg)) => {
            let unit = MetricUnit::Milliseconds;
            if s.processed == 0 {
                return Ok(none("latency average", unit));
            }
            let Some(v) = s.latency_average_ms else {
                return Err(GateError::input(path, "no \"latency average = \" line"));
            };
            Ok(Measurement::of("latency average", unit, v, Some(s.processed)))
        }
        (MetricRef::Latency, Some(stat)) => Err(GateError::input(
            path,
            format!(
                "pgbench's summary has the latency average only, no {stat}: run pgbench with --log and check its pgbench_log.* files"
            ),
        )),
        (MetricRef::Throughput, None) => {
            let unit = MetricUnit::PerSecond;
            if s.processed == 0 {
                return Ok(none("tps", unit));
            }
            Ok(Measurement::of("tps", unit, s.tps.unwrap_or(0.0), samples))
        }
        (MetricRef::ErrorRate, None) => {
            let unit = MetricUnit::Percent;
            if total == 0 {
                return Ok(none("failed transactions", unit));
            }
            let failed = s.failed.unwrap_or(0) as f64;
            let mut m = Measurement::of("failed transactions", unit, failed / total as f64 * 100.0, samples);
            if s.failed.is_none() {
                m.note = Some("this pgbench does not count failures (before PostgreSQL 15): 0 assumed".into());
            }
            Ok(m)
        }
        (metric, _) => Err(o.problem(format!(
            "pgbench's summary has latency avg, throughput and error_rate, not {metric}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pgbench 15's summary, as printed by the real tool (see tests/check.rs).
    const PG15: &str = "pgbench (15.18 (Debian 15.18-0+deb12u1))
starting vacuum...end.
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 1
query mode: simple
number of clients: 2
number of threads: 1
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 1520
number of failed transactions: 4 (0.262%)
latency average = 3.946 ms
initial connection time = 4.432 ms
tps = 506.816012 (without initial connection time)
";

    #[test]
    fn the_summary_lines_are_read() {
        let s = parse(Path::new("out.txt"), PG15).unwrap();
        assert_eq!(
            s,
            Summary {
                processed: 1520,
                failed: Some(4),
                latency_average_ms: Some(3.946),
                tps: Some(506.816012),
            }
        );
        let old = "number of transactions actually processed: 10/10\nlatency average = 1.5 ms\ntps = 90.1 (including connections establishing)\ntps = 95.2 (excluding connections establishing)\n";
        let s = parse(Path::new("old.txt"), old).unwrap();
        assert_eq!((s.processed, s.failed, s.tps), (10, None, Some(95.2)));
    }

    #[test]
    fn a_cut_or_foreign_file_names_the_missing_line() {
        let cut = &PG15[..PG15.find("tps =").unwrap()];
        let err = parse(Path::new("out.txt"), cut).unwrap_err().to_string();
        assert!(err.starts_with("out.txt: no \"tps = \" line"), "{err}");
        let err = parse(Path::new("x.txt"), "transaction type: x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("actually processed"), "{err}");
        let bad = PG15.replace("= 3.946 ms", "= fast ms");
        let err = parse(Path::new("out.txt"), &bad).unwrap_err().to_string();
        assert!(err.contains("line 12: latency average \"fast \""), "{err}");
    }
}
