//! Locust's `--csv PREFIX` statistics, `PREFIX_stats.csv`: one row per
//! endpoint (`Type`, `Name`) and the `Aggregated` row, with `Request
//! Count`, `Failure Count`, `Median/Average/Min/Max Response Time` (ms),
//! `Requests/s`, and percentile columns `50%` … `100%`.
//!
//! Locust rounds each response time before it counts it (to the
//! millisecond under 100 ms, then to 2 significant digits: 10 ms steps
//! under 1 s, 100 ms steps under 10 s, 1 s steps beyond), so its median and
//! percentiles are rounded values. A measurement carries half that step as
//! its tolerance: a level within it warns instead of passing or failing.

use std::path::Path;

use super::budget::{MetricRef, Objective, Stat};
use super::evaluate::{Measurement, Reading};
use super::{input, GateError};
use crate::config::units::MetricUnit;

const AGGREGATED: &str = "Aggregated";
const REQUIRED: [&str; 4] = ["Type", "Name", "Request Count", "Failure Count"];

struct Table {
    header: Vec<String>,
    /// Each row with its line in the file.
    rows: Vec<(u64, Vec<String>)>,
}

impl Table {
    fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

fn load(path: &Path) -> Result<Table, GateError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input::open(path)?);
    let csv_error = |e: csv::Error| {
        match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => GateError::input(
            path,
            format!(
                "line {}: {len} fields where the header has {expected_len}: a truncated or damaged row",
                pos.as_ref().map_or(0, |p| p.line())
            ),
        ),
        csv::ErrorKind::Io(io) => GateError::input(path, format!("cannot read: {io}")),
        _ => GateError::input(path, format!("malformed CSV: {e}")),
    }
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    for column in REQUIRED {
        if !header.iter().any(|h| h == column) {
            return Err(GateError::input(
                path,
                format!(
                    "no {column:?} column: not a Locust _stats.csv (header: {})",
                    header.join(",")
                ),
            ));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line());
        rows.push((line, record.iter().map(|f| f.trim().to_string()).collect()));
    }
    Ok(Table { header, rows })
}

pub fn read(path: &Path, objectives: &[Objective]) -> Result<Reading, GateError> {
    let table = load(path)?;
    let mut measurements = Vec::new();
    for o in objectives {
        measurements.push(measure(path, &table, o)?);
    }
    Ok(Reading {
        input: format!("{} {}", super::Format::Locust.describe(), path.display()),
        measurements,
        extra: Vec::new(),
    })
}

/// The row an objective reads: `endpoint` by its Name (or `GET /x` by
/// Type and Name), the `Aggregated` row by default.
fn row<'t>(
    path: &Path,
    table: &'t Table,
    endpoint: &str,
) -> Result<&'t (u64, Vec<String>), GateError> {
    let (ty, name) = (table.column("Type"), table.column("Name"));
    let field = |r: &'t (u64, Vec<String>), i: Option<usize>| {
        i.and_then(|i| r.1.get(i)).map_or("", |s| s.as_str())
    };
    let by_name: Vec<_> = table
        .rows
        .iter()
        .filter(|r| field(r, name) == endpoint)
        .collect();
    let by_both: Vec<_> = table
        .rows
        .iter()
        .filter(|r| format!("{} {}", field(r, ty), field(r, name)) == endpoint)
        .collect();
    match (by_name.as_slice(), by_both.as_slice()) {
        ([one], _) | ([], [one]) => Ok(one),
        ([], []) => {
            let names: Vec<String> = table
                .rows
                .iter()
                .map(|r| format!("{:?}", format!("{} {}", field(r, ty), field(r, name)).trim()))
                .collect();
            Err(GateError::input(
                path,
                format!(
                    "no row named {endpoint:?} (rows: {}){}",
                    names.join(", "),
                    if endpoint == AGGREGATED { "; a truncated file?" } else { "" }
                ),
            ))
        }
        (many, _) => Err(GateError::input(
            path,
            format!(
                "{} rows are named {endpoint:?}; name one by type, e.g. endpoint: \"GET {endpoint}\"",
                many.len()
            ),
        )),
    }
}

fn measure(path: &Path, table: &Table, o: &Objective) -> Result<Measurement, GateError> {
    let endpoint = o.endpoint.as_deref().unwrap_or(AGGREGATED);
    let (line, fields) = row(path, table, endpoint)?;
    let cell = |column: &str| -> Result<&str, GateError> {
        let i = table.column(column).ok_or_else(|| {
            GateError::input(
                path,
                format!("no {column:?} column (header: {})", table.header.join(",")),
            )
        })?;
        Ok(fields.get(i).map_or("", |s| s.as_str()))
    };
    let number = |column: &str| -> Result<Option<f64>, GateError> {
        let text = cell(column)?;
        if text == "N/A" || text.is_empty() {
            return Ok(None);
        }
        text.parse::<f64>().map(Some).map_err(|_| {
            GateError::input(
                path,
                format!("line {line}: {column} of {endpoint:?} is {text:?}, not a number"),
            )
        })
    };
    let requests = number("Request Count")?.unwrap_or(0.0);
    let failures = number("Failure Count")?.unwrap_or(0.0);
    let samples = Some(requests as u64);
    let at = |column: &str| format!("{endpoint} {column}");
    let none = |column: &str, unit| {
        Measurement::none(
            at(column),
            unit,
            format!("{endpoint:?} has no requests in {}", path.display()),
        )
    };
    match (&o.metric, o.stat) {
        (MetricRef::Latency, Some(stat)) => {
            let (column, rounded) = match stat {
                Stat::Percentile(p) => (percent_column(p), true),
                Stat::Median => ("Median Response Time".to_string(), true),
                Stat::Avg => ("Average Response Time".to_string(), false),
                Stat::Min => ("Min Response Time".to_string(), false),
                Stat::Max => ("Max Response Time".to_string(), false),
                other => return Err(o.problem(format!("{other} is not a latency statistic of Locust"))),
            };
            if table.column(&column).is_none() {
                return Err(GateError::input(
                    path,
                    format!(
                        "no {column:?} column: this Locust writes the percentiles {}",
                        percentile_columns(table)
                    ),
                ));
            }
            let unit = MetricUnit::Milliseconds;
            if requests == 0.0 {
                return Ok(none(&column, unit));
            }
            let Some(value) = number(&column)? else {
                return Ok(none(&column, unit));
            };
            let mut m = Measurement::of(at(&column), unit, value, samples);
            if rounded {
                m.tolerance = rounding(value);
                m.note = Some("Locust rounds response times to ~2 significant digits".into());
            }
            Ok(m)
        }
        (MetricRef::Throughput, None) => {
            let unit = MetricUnit::PerSecond;
            if requests == 0.0 {
                return Ok(none("Requests/s", unit));
            }
            let value = number("Requests/s")?.unwrap_or(0.0);
            Ok(Measurement::of(at("Requests/s"), unit, value, samples))
        }
        (MetricRef::ErrorRate, None) => {
            let unit = MetricUnit::Percent;
            if requests == 0.0 {
                return Ok(none("Failure Count", unit));
            }
            let value = failures / requests * 100.0;
            Ok(Measurement::of(at("Failure Count / Request Count"), unit, value, samples))
        }
        (MetricRef::Named(name), _) => Err(o.problem(format!(
            "a Locust _stats.csv has no metric {name:?}: use latency (with a stat), throughput or error_rate"
        ))),
        (metric, stat) => Err(o.problem(format!(
            "{metric} with stat {} is not something Locust reports",
            stat.map_or("none".into(), |s| s.to_string())
        ))),
    }
}

/// `95%`, `99.9%`: Locust's percentile column names.
fn percent_column(p: f64) -> String {
    format!("{p}%")
}

fn percentile_columns(table: &Table) -> String {
    let list: Vec<&str> = table
        .header
        .iter()
        .filter(|h| h.ends_with('%'))
        .map(String::as_str)
        .collect();
    list.join(", ")
}

/// Half of Locust's rounding step for a response time of `ms`.
pub fn rounding(ms: f64) -> f64 {
    let step = if ms < 100.0 {
        1.0
    } else if ms < 1_000.0 {
        10.0
    } else if ms < 10_000.0 {
        100.0
    } else {
        1_000.0
    };
    step / 2.0
}

#[cfg(test)]
mod tests;
