//! `tuner report`: one self-contained HTML file about a tuning run, from
//! tuning.log (every observation sample), the journal (every change, its
//! verdict, every deploy) and Prometheus ranges over the same span: one
//! plot per SLA metric and for throughput, with the objective, the
//! observation windows and each judged change; then the changelog and the
//! deploys. Inline SVG, no script from anywhere, nothing fetched to view it.

pub mod html;
pub mod read;
pub mod svg;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::metrics::{Baseline, Metrics};

pub use read::{read_journal, read_tuning_log, Change, Deploy, LogSample};

/// What Prometheus is asked for the throughput guard: PostgreSQL's commits
/// per second, as postgres-exporter exposes them.
pub const THROUGHPUT_QUERY: &str = "sum(rate(pg_stat_database_xact_commit[1m]))";
pub const THROUGHPUT: &str = "throughput";

/// One time series plot.
#[derive(Debug, Clone)]
pub struct Plot {
    pub metric: String,
    pub unit: String,
    pub description: Option<String>,
    /// `<= 200ms` and its value, when the objective is a number.
    pub objective: Option<(String, f64)>,
    /// From Prometheus, over the whole span.
    pub line: Vec<(DateTime<Utc>, f64)>,
    /// The samples tuning.log recorded.
    pub dots: Vec<(DateTime<Utc>, f64)>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub title: String,
    pub profile: String,
    pub generated: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub plots: Vec<Plot>,
    pub changes: Vec<Change>,
    pub deploys: Vec<Deploy>,
    pub samples: Vec<LogSample>,
    pub notes: Vec<String>,
}

/// The span the run covers: its samples, changes and deploys, padded.
pub fn span(
    samples: &[LogSample],
    changes: &[Change],
    deploys: &[Deploy],
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let times = samples
        .iter()
        .map(|s| s.at)
        .chain(
            changes
                .iter()
                .flat_map(|c| [c.applied_at, c.decided_at])
                .flatten(),
        )
        .chain(
            deploys
                .iter()
                .flat_map(|d| [Some(d.started_at), d.finished_at])
                .flatten(),
        );
    let (mut lo, mut hi) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
    for t in times {
        lo = Some(lo.map_or(t, |l| l.min(t)));
        hi = Some(hi.map_or(t, |h| h.max(t)));
    }
    let (lo, hi) = (lo?, hi?);
    let pad = ((hi - lo) / 20).max(chrono::Duration::seconds(5));
    Some((lo - pad, hi + pad))
}

/// Throughput per sample from tuning.log's transaction counts: the counts
/// restart with each window, so only consecutive samples of one window of
/// one change make a rate.
fn throughput_dots(samples: &[LogSample]) -> Vec<(DateTime<Utc>, f64)> {
    let mut out = Vec::new();
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (Some(n1), Some(n2)) = (a.transactions, b.transactions) else {
            continue;
        };
        let secs = (b.at - a.at).num_milliseconds() as f64 / 1000.0;
        if a.change_id == b.change_id && a.phase == b.phase && secs > 0.0 && n2 >= n1 {
            out.push((b.at, (n2 - n1) as f64 / secs));
        }
    }
    out
}

/// Builds the report: the plots' Prometheus ranges are read here; when
/// Prometheus cannot answer, the plots show tuning.log's samples alone.
pub async fn build(
    config: &Config,
    metrics: &dyn Metrics,
    baseline: Option<&Baseline>,
    samples: Vec<LogSample>,
    changes: Vec<Change>,
    deploys: Vec<Deploy>,
) -> Option<Report> {
    let (start, end) = span(&samples, &changes, &deploys)?;
    let step_secs = ((end - start).num_seconds() / 400).max(1) as u64;
    let step = std::time::Duration::from_secs(step_secs);
    let mut notes = Vec::new();
    let mut wanted: Vec<(String, String, String, Option<String>)> = config
        .objectives()
        .keys()
        .filter_map(|m| {
            let def = config.metrics.get(m)?;
            Some((
                m.clone(),
                def.query.clone(),
                def.unit.name().to_string(),
                def.description.clone(),
            ))
        })
        .collect();
    wanted.push((
        THROUGHPUT.into(),
        THROUGHPUT_QUERY.into(),
        "transactions per second".into(),
        Some("the guard every change answers to".into()),
    ));
    let mut plots = Vec::new();
    for (metric, query, unit, description) in wanted {
        let line = match metrics.range(&metric, &query, start, end, step).await {
            Ok(points) => points.into_iter().map(|p| (p.at, p.value)).collect(),
            Err(e) => {
                notes.push(format!(
                    "{metric}: no Prometheus range ({e}); tuning.log's samples only"
                ));
                Vec::new()
            }
        };
        let dots = if metric == THROUGHPUT {
            throughput_dots(&samples)
        } else {
            samples
                .iter()
                .filter_map(|s| s.values.get(&metric).map(|v| (s.at, *v)))
                .collect()
        };
        let objective = config.objectives().get(&metric).and_then(|o| {
            let reference = baseline.and_then(|b| b.reference(&metric));
            o.limit(reference).map(|v| (o.to_string(), v))
        });
        plots.push(Plot {
            metric,
            unit,
            description,
            objective,
            line,
            dots,
        });
    }
    Some(Report {
        title: format!("tuner report, profile {}", config.profile),
        profile: config.profile.clone(),
        generated: Utc::now(),
        start,
        end,
        plots,
        changes,
        deploys,
        samples,
        notes,
    })
}
