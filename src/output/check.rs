//! `tuner check` for humans: each objective's measured value beside its
//! levels and its PASS / WARN / FAIL, the reasons below, the verdict last.

use crate::gate::{Report, State};

/// `code` is the exit code the command will return, for the closing line.
pub fn render(report: &Report, code: u8) -> String {
    let mut out = format!(
        "budget {}\ninput: {}\n",
        report.budget.display(),
        report.input
    );
    let mut t = super::table(&[
        "objective",
        "measures",
        "measured",
        "target",
        "warning",
        "critical",
        "result",
    ]);
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for r in &report.results {
        let measured = match r.samples {
            Some(n) if r.value.is_some() => format!("{} (n={n})", r.shown),
            _ => r.shown.clone(),
        };
        t.add_row(vec![
            r.name.clone(),
            r.measures.clone(),
            measured,
            dash(&r.target),
            dash(&r.warning),
            dash(&r.critical),
            r.state.label().to_string(),
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    for r in &report.results {
        if r.state != State::Pass {
            out.push_str(&format!(
                "{} {}: {} ({})\n",
                r.state.label(),
                r.name,
                r.reason,
                r.source
            ));
        }
        if let Some(note) = &r.note {
            out.push_str(&format!("note {}: {note}\n", r.name));
        }
    }
    out.push_str(&format!("{}: {}", report.verdict.label(), report.summary()));
    match code {
        0 => out.push('\n'),
        code => out.push_str(&format!(" (exit {code})\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::MetricUnit;
    use crate::gate::evaluate::{evaluate, Measurement, Reading};
    use crate::gate::Budget;
    use std::path::Path;

    #[test]
    fn values_sit_beside_their_levels_and_the_verdict_closes() {
        let budget = Budget::from_str(
            Path::new("config/budget.yaml"),
            "objectives:\n  p95:\n    metric: latency\n    stat: p95\n    target: \"< 150ms\"\n    warning: \"> 150ms\"\n    critical: \"> 200ms\"\n  errors:\n    metric: error_rate\n    critical: \"> 1%\"\n",
        )
        .unwrap();
        let reading = Reading {
            input: "k6 --out json stream run.json".into(),
            measurements: vec![
                Measurement::of(
                    "http_req_duration p95",
                    MetricUnit::Milliseconds,
                    212.0,
                    Some(900),
                ),
                Measurement::none(
                    "http_req_failed",
                    MetricUnit::Percent,
                    "no samples of http_req_failed in the stream",
                ),
            ],
            extra: Vec::new(),
        };
        let text = render(&evaluate(&budget, reading, 0.0).unwrap(), 3);
        for needle in [
            "budget config/budget.yaml",
            "212ms (n=900)",
            "< 150ms",
            "> 200ms",
            "FAIL p95: past critical (> 200ms) (http_req_duration p95)",
            "FAIL errors: nothing to judge: no samples of http_req_failed in the stream",
            "FAIL: 0 PASS, 0 WARN, 2 FAIL (exit 3)",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }
}
