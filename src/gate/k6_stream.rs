//! k6's `--out json` stream: one JSON object per line, `{"type":"Metric",
//! "data":{"type":"trend",…},"metric":"http_req_duration"}` declaring a
//! metric when its first sample comes, then `{"type":"Point","data":
//! {"time":"…","value":459.86,"tags":{…}},"metric":"http_req_duration"}`
//! for every sample. Gzipped when k6 wrote it to a `.gz` name.
//!
//! Read in one pass, line by line, in memory that does not grow with the
//! file: each objective keeps a [`Distribution`] (exact up to its buffer,
//! then a sketch within 0.1%, see `quantile`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::budget::{MetricRef, Objective, Stat};
use super::evaluate::{Measurement, Reading};
use super::quantile::{Distribution, RELATIVE_ERROR};
use super::{input, GateError};
use crate::config::units::MetricUnit;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    metric: Cow<'a, str>,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct MetricData<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Point<'a> {
    value: f64,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TaggedPoint<'a> {
    value: f64,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tags: Option<HashMap<Cow<'a, str>, Cow<'a, str>>>,
}

/// What one objective collects.
struct Track {
    metric: String,
    tags: Vec<(String, String)>,
    samples: Distribution,
}

/// k6's metric types.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Trend,
    Counter,
    Rate,
    Gauge,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "trend" => Some(Kind::Trend),
            "counter" => Some(Kind::Counter),
            "rate" => Some(Kind::Rate),
            "gauge" => Some(Kind::Gauge),
            _ => None,
        }
    }
}

/// The built-in k6 metric behind a well-known quantity, and its kind.
fn k6_metric(o: &Objective) -> (&str, Option<Kind>) {
    match &o.metric {
        MetricRef::Latency => ("http_req_duration", Some(Kind::Trend)),
        MetricRef::Throughput => ("http_reqs", Some(Kind::Counter)),
        MetricRef::ErrorRate => ("http_req_failed", Some(Kind::Rate)),
        MetricRef::Named(n) => (n.as_str(), None),
    }
}

pub fn read(path: &Path, objectives: &[Objective]) -> Result<Reading, GateError> {
    let mut tracks: Vec<Track> = objectives
        .iter()
        .map(|o| {
            let wants = o.stat.is_some_and(Stat::is_distribution);
            Track {
                metric: k6_metric(o).0.to_string(),
                tags: o.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                samples: if wants {
                    Distribution::new()
                } else {
                    Distribution::summary_only()
                },
            }
        })
        .collect();
    // Metric name -> the tracks reading it; a handful, so a list.
    let mut by_metric: Vec<(String, Vec<usize>, bool)> = Vec::new();
    for (i, t) in tracks.iter().enumerate() {
        match by_metric.iter_mut().find(|(m, _, _)| *m == t.metric) {
            Some((_, list, tagged)) => {
                list.push(i);
                *tagged |= !t.tags.is_empty();
            }
            None => by_metric.push((t.metric.clone(), vec![i], !t.tags.is_empty())),
        }
    }
    let needs_span = objectives
        .iter()
        .any(|o| o.metric == MetricRef::Throughput || o.stat == Some(Stat::Rate));
    let mut declared: Vec<(String, Option<Kind>)> = Vec::new();
    let mut span = Span::default();

    let mut reader = input::open(path)?;
    let mut buf = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| input::read_error(path, e))?;
        if n == 0 {
            break;
        }
        number += 1;
        let complete = buf.last() == Some(&b'\n');
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        // Most lines are samples of metrics no objective reads: k6 writes
        // them as `{"type":"Point",…,"metric":"NAME"}`, so the name is
        // enough to skip them without parsing the rest.
        if complete && skippable(text, &by_metric) {
            continue;
        }
        let line: Line = serde_json::from_slice(text).map_err(|e| {
            let problem = if !complete || e.is_eof() {
                "truncated: the file ends inside a JSON line".to_string()
            } else {
                format!("malformed: {e}")
            };
            GateError::input(path, format!("line {number}: {problem}"))
        })?;
        match line.kind.as_ref() {
            "Point" => {}
            "Metric" => {
                let data: MetricData = serde_json::from_str(line.data.get()).map_err(|e| {
                    GateError::input(path, format!("line {number}: data.type of metric {}: {e}", line.metric))
                })?;
                if !declared.iter().any(|(m, _)| *m == line.metric) {
                    declared.push((line.metric.to_string(), Kind::parse(&data.kind)));
                }
                continue;
            }
            other => {
                return Err(GateError::input(
                    path,
                    format!("line {number}: type {other:?} is neither \"Metric\" nor \"Point\": not a k6 --out json stream"),
                ))
            }
        }
        let wanted = by_metric.iter().find(|(m, _, _)| *m == line.metric);
        if wanted.is_none() {
            continue;
        }
        let bad_point = |e: serde_json::Error| {
            GateError::input(
                path,
                format!("line {number}: data of a {} point: {e}", line.metric),
            )
        };
        let (value, time, tags) = match wanted {
            Some((_, _, true)) => {
                let p: TaggedPoint = serde_json::from_str(line.data.get()).map_err(bad_point)?;
                (p.value, p.time, p.tags)
            }
            _ => {
                let p: Point = serde_json::from_str(line.data.get()).map_err(bad_point)?;
                (p.value, p.time, None)
            }
        };
        if needs_span {
            if let Some(t) = time.as_deref().and_then(epoch_seconds) {
                span.add(t);
            }
        }
        let Some((_, list, _)) = wanted else {
            continue;
        };
        for &i in list {
            let track = &mut tracks[i];
            let matches = track.tags.iter().all(|(k, v)| {
                tags.as_ref()
                    .and_then(|t| t.get(k.as_str()))
                    .is_some_and(|tv| tv.as_ref() == v)
            });
            if matches {
                track.samples.add(value);
            }
        }
    }
    if number == 0 {
        return Err(GateError::input(path, "empty: no k6 lines"));
    }
    let mut measurements = Vec::new();
    for (o, track) in objectives.iter().zip(tracks) {
        let kind = declared
            .iter()
            .find(|(m, _)| *m == track.metric)
            .map(|(_, k)| *k);
        if kind.is_none() && track.samples.count() == 0 {
            let mut names: Vec<&str> = declared.iter().map(|(m, _)| m.as_str()).collect();
            names.sort_unstable();
            return Err(GateError::input(
                path,
                format!(
                    "no metric {} in the stream (metrics in it: {}); k6 writes a metric with its first sample",
                    track.metric,
                    if names.is_empty() { "none".into() } else { names.join(", ") }
                ),
            ));
        }
        let kind = kind.flatten().or(k6_metric(o).1).unwrap_or(match o.stat {
            Some(s) if s.is_distribution() => Kind::Trend,
            Some(Stat::Count | Stat::Rate) => Kind::Counter,
            _ => Kind::Gauge,
        });
        measurements.push(measure(o, track, kind, &span)?);
    }
    Ok(Reading {
        input: format!("{} {}", super::Format::K6Stream.describe(), path.display()),
        measurements,
        extra: Vec::new(),
    })
}

fn measure(
    o: &Objective,
    mut track: Track,
    kind: Kind,
    span: &Span,
) -> Result<Measurement, GateError> {
    let mut name = track.metric.clone();
    if !track.tags.is_empty() {
        let tags: Vec<String> = track.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        name.push_str(&format!("{{{}}}", tags.join(",")));
    }
    let d = &mut track.samples;
    let n = d.count();
    let stat_label = o.stat.map(|s| format!(" {s}")).unwrap_or_default();
    let source = format!("{name}{stat_label}");
    let default_unit = match kind {
        Kind::Trend => MetricUnit::Milliseconds,
        Kind::Rate => MetricUnit::Percent,
        Kind::Counter => MetricUnit::PerSecond,
        Kind::Gauge => MetricUnit::Ratio,
    };
    let fixed = o.metric.fixed_unit();
    let unit = fixed.or(o.unit).unwrap_or(default_unit);
    if n == 0 {
        return Ok(Measurement::none(
            source,
            unit,
            format!("no samples of {name} in the stream"),
        ));
    }
    let exact = d.is_exact();
    let (value, note) = match (kind, o.stat) {
        (Kind::Trend | Kind::Gauge, Some(Stat::Percentile(p))) => {
            (d.percentile(p), sketch_note(exact, n))
        }
        (Kind::Trend | Kind::Gauge, Some(Stat::Median)) => {
            (d.percentile(50.0), sketch_note(exact, n))
        }
        (_, Some(Stat::Avg)) => (d.mean(), None),
        (_, Some(Stat::Min)) => (d.min(), None),
        (_, Some(Stat::Max)) => (d.max(), None),
        (_, Some(Stat::Count)) => (Some(d.sum()), None),
        (Kind::Trend, None) => {
            return Err(o.problem(format!("{name} is a trend; give a stat such as p95")))
        }
        (Kind::Rate, _) => (d.mean().map(|m| m * 100.0), None),
        (Kind::Counter, None | Some(Stat::Rate)) => match span.seconds() {
            Some(s) => (
                Some(d.sum() / s),
                Some(format!("{} over {s:.1} s of samples", d.sum())),
            ),
            None => {
                return Ok(Measurement::none(
                    source,
                    unit,
                    "the stream's samples span no time, so no rate",
                ))
            }
        },
        (Kind::Gauge, None | Some(Stat::Value)) => (d.last(), None),
        (kind, Some(stat)) => {
            return Err(o.problem(format!(
                "{name} is a k6 {} metric; {stat} is not one of its stats",
                format!("{kind:?}").to_lowercase()
            )))
        }
    };
    let unit = if kind == Kind::Counter && o.stat == Some(Stat::Count) && fixed.is_none() {
        o.unit.unwrap_or(MetricUnit::Ratio)
    } else {
        unit
    };
    match value {
        Some(v) => Ok(Measurement::of(source, unit, v, Some(n)).with_note(note)),
        None => Ok(Measurement::none(
            source,
            unit,
            format!("no samples of {name}"),
        )),
    }
}

fn sketch_note(exact: bool, n: u64) -> Option<String> {
    (!exact).then(|| {
        format!(
            "estimated from {n} samples within ±{}% (logarithmic sketch)",
            RELATIVE_ERROR * 100.0
        )
    })
}

/// A sample line of a metric no objective reads.
fn skippable(line: &[u8], by_metric: &[(String, Vec<usize>, bool)]) -> bool {
    const POINT: &[u8] = br#"{"type":"Point","#;
    const KEY: &[u8] = br#""metric":""#;
    if !line.starts_with(POINT) || !line.ends_with(b"\"}") {
        return false;
    }
    let Some(at) = line.windows(KEY.len()).rposition(|w| w == KEY) else {
        return false;
    };
    let Some(name) = line.get(at + KEY.len()..line.len() - 2) else {
        return false;
    };
    if name.contains(&b'"') || name.contains(&b'\\') {
        return false;
    }
    !by_metric.iter().any(|(m, _, _)| m.as_bytes() == name)
}

/// The first and last sample times of the metrics read.
#[derive(Debug, Default)]
struct Span {
    first: Option<f64>,
    last: Option<f64>,
}

impl Span {
    fn add(&mut self, t: f64) {
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
    }

    fn seconds(&self) -> Option<f64> {
        let s = self.last? - self.first?;
        (s > 0.0).then_some(s)
    }
}

/// Seconds since the epoch of an RFC 3339 time as k6 writes it
/// (`2017-05-09T14:34:45.239531499+02:00`); a fast path for the common
/// shape, chrono for the rest.
pub(crate) fn epoch_seconds(s: &str) -> Option<f64> {
    fast_epoch(s.as_bytes()).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
    })
}

fn fast_epoch(b: &[u8]) -> Option<f64> {
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (h, mi, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut i = 19;
    let mut frac = 0.0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = digits(start..i)?;
        frac = n as f64 / 10f64.powi((i - start) as i32);
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = digits(i + 1..i + 3)? * 3600 + digits(i + 4..i + 6)? * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset) as f64 + frac)
}

#[cfg(test)]
mod tests;
