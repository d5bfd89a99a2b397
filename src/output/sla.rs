//! The SLA table: one renderer for `tuner status` and `tuner tune`, so a
//! reading looks the same wherever it is printed.

use std::path::Path;

use crate::config::units::format_duration;
use crate::metrics::{Baseline, MetricReport, Reading, SlaReport, State};

/// One row per metric: its value (and how it was read), baseline,
/// objective and state.
pub fn table(report: &SlaReport) -> String {
    let mut t = super::table(&["metric", "value", "baseline", "objective", "state"]);
    for m in &report.metrics {
        let limit = match (&m.objective, m.limit) {
            (Some(o), Some(l)) if o.contains("baseline") => format!("{o} = {}", m.unit.format(l)),
            (Some(o), _) => o.clone(),
            (None, _) => "-".into(),
        };
        let state = match m.state {
            State::Violated => "VIOLATED".to_string(),
            other => other.label().to_string(),
        };
        t.add_row(vec![
            m.name.clone(),
            value(m),
            m.baseline
                .map(|v| m.unit.format(v))
                .unwrap_or_else(|| "-".into()),
            limit,
            state,
        ]);
    }
    t.to_string()
}

/// A window mean says so: it is not what Prometheus shows for "now".
fn value(m: &MetricReport) -> String {
    let Some(v) = m.value else {
        return "no data".into();
    };
    let v = m.unit.format(v);
    match &m.reading {
        Reading::Instant => v,
        Reading::HistoryMean {
            from,
            to,
            step_seconds,
            ..
        } => {
            let span = (*to - *from).to_std().unwrap_or_default()
                + std::time::Duration::from_secs_f64(step_seconds.max(0.0));
            format!("{v} (mean of {})", format_duration(span))
        }
        Reading::CheckpointWindowMean { .. } => format!("{v} (mean from a CHECKPOINT)"),
    }
}

/// `tuner status`: the profile, the table, where the baseline came from,
/// and the verdict with its exit code (`exit::for_sla`, which the command
/// exits with) when it is not 0.
pub fn status(
    report: &SlaReport,
    baseline: Option<&Baseline>,
    baseline_path: &Path,
    exit_code: u8,
) -> String {
    let mut out = format!("profile: {}\n{}\n", report.profile, table(report));
    match baseline {
        Some(b) => out.push_str(&format!(
            "baseline captured {} ({})\n",
            b.captured_at
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M"),
            baseline_path.display()
        )),
        None => out.push_str(&format!(
            "no baseline yet at {}: run `tuner baseline` for relative objectives\n",
            baseline_path.display()
        )),
    }
    out.push_str(&report.summary());
    match exit_code {
        0 => out.push('\n'),
        code => out.push_str(&format!(" (exit {code})\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{evaluate, Measured};
    use chrono::Utc;

    const CONFIG: &str = r#"
prometheus: {url: "http://127.0.0.1:1"}
postgres: {dsn: "host=x"}
profile: p
metrics:
  wal: {query: "w", unit: bytes_per_second, window: 5m, symptom: high_wal_rate}
  lat: {query: "l", unit: milliseconds, window: 5m}
  temp: {query: "t", unit: celsius, window: 5m}
profiles:
  p: {wal: "<= 100", lat: "<= 200ms", temp: "<= 85"}
"#;

    #[test]
    fn one_table_shows_window_means_no_data_and_the_verdict() {
        let config = crate::config::load::from_str(std::path::Path::new("t.yaml"), CONFIG).unwrap();
        let to = Utc::now();
        let report = evaluate(&config, None, to, |name| match name {
            "wal" => Measured {
                value: Some(150.0),
                now: Some(20.0),
                reading: Reading::HistoryMean {
                    from: to - chrono::Duration::seconds(45),
                    to,
                    step_seconds: 15.0,
                    points: 4,
                },
            },
            "lat" => Measured::instant(Some(100.0)),
            _ => Measured::instant(None),
        });
        let text = status(&report, None, Path::new("baseline.yaml"), 3);
        for needle in [
            "profile: p",
            "150B/s (mean of 1m)",
            "VIOLATED",
            "no data",
            "SLA violated: wal; not measured: temp (no data) (exit 3)",
            "run `tuner baseline`",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }
}
