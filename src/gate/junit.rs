//! The report as JUnit XML, the shape Jenkins (its junit-10 schema, from
//! Surefire), GitLab and GitHub test reporters read: one `<testsuite>`
//! per check, one `<testcase>` per row. A FAIL is a `<failure>`; a WARN
//! passes, with the warning in its `<system-out>`, since JUnit has no
//! warning state.

use chrono::{DateTime, Utc};

use super::evaluate::{CheckResult, Kind, Report, State};

pub fn render(report: &Report, at: DateTime<Utc>) -> String {
    let tests = report.results.len();
    let time = format!("{:.3}", report.seconds.max(0.0));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"tuner check\" tests=\"{tests}\" failures=\"{}\" errors=\"0\" time=\"{time}\">\n",
        report.failed
    ));
    out.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"{time}\" timestamp=\"{}\">\n",
        escape(&format!("budget {}", report.budget.display())),
        report.failed,
        at.format("%Y-%m-%dT%H:%M:%S")
    ));
    out.push_str("    <properties>\n");
    for (name, value) in [
        ("budget", report.budget.display().to_string()),
        ("input", report.input.clone()),
        ("verdict", report.verdict.label().to_string()),
        ("summary", report.summary()),
    ] {
        out.push_str(&format!(
            "      <property name=\"{name}\" value=\"{}\"/>\n",
            escape(&value)
        ));
    }
    out.push_str("    </properties>\n");
    for r in &report.results {
        testcase(&mut out, r);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn testcase(out: &mut String, r: &CheckResult) {
    let class = match r.kind {
        Kind::Budget => "tuner.check.budget",
        Kind::Baseline => "tuner.check.baseline",
        Kind::K6Threshold => "tuner.check.k6_threshold",
    };
    out.push_str(&format!(
        "    <testcase name=\"{}\" classname=\"{class}\" time=\"0\">\n",
        escape(&r.name)
    ));
    let headline = format!("{} = {}: {}", r.measures, r.shown, r.reason);
    let body = details(r);
    match r.state {
        State::Fail => out.push_str(&format!(
            "      <failure type=\"budget\" message=\"{}\">{}</failure>\n",
            escape(&headline),
            escape(&body)
        )),
        State::Warn => out.push_str(&format!(
            "      <system-out>WARN {}\n{}</system-out>\n",
            escape(&headline),
            escape(&body)
        )),
        State::Pass => out.push_str(&format!(
            "      <system-out>PASS {}\n{}</system-out>\n",
            escape(&headline),
            escape(&body)
        )),
    }
    out.push_str("    </testcase>\n");
}

fn details(r: &CheckResult) -> String {
    let mut lines = vec![format!("measured {} from {}", r.shown, r.source)];
    if let Some(n) = r.samples {
        lines.push(format!("samples: {n}"));
    }
    for (key, level) in [
        ("target", &r.target),
        ("warning", &r.warning),
        ("critical", &r.critical),
    ] {
        if let Some(l) = level {
            lines.push(format!("{key}: {l}"));
        }
    }
    if let Some(note) = &r.note {
        lines.push(format!("note: {note}"));
    }
    lines.join("\n") + "\n"
}

/// Text safe inside XML attributes and elements; characters XML 1.0 cannot
/// hold at all are dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
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
    fn failures_are_counted_and_text_is_escaped() {
        let budget = Budget::from_str(
            Path::new("b.yaml"),
            "objectives:\n  p95:\n    metric: latency\n    stat: p95\n    warning: \"> 100ms\"\n    critical: \"> 200ms\"\n  \"a<b & c\":\n    metric: error_rate\n    critical: \"> 1%\"\n",
        )
        .unwrap();
        let reading = Reading {
            input: "k6 \"x\".json".into(),
            measurements: vec![
                Measurement::of("p(95)", MetricUnit::Milliseconds, 150.0, Some(10)),
                Measurement::of("rate", MetricUnit::Percent, 3.0, Some(10)),
            ],
            extra: Vec::new(),
        };
        let report = evaluate(&budget, reading, 0.25).unwrap();
        let xml = render(&report, Utc::now());
        assert!(xml.contains("<testsuites name=\"tuner check\" tests=\"2\" failures=\"1\" errors=\"0\" time=\"0.250\">"), "{xml}");
        assert!(xml.contains("name=\"a&lt;b &amp; c\""), "{xml}");
        assert!(xml.contains("value=\"k6 &quot;x&quot;.json\""), "{xml}");
        assert!(
            xml.contains(
                "<failure type=\"budget\" message=\"error_rate = 3.0%: past critical (&gt; 1%)\">"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<system-out>WARN latency p95 = 150ms: past warning (&gt; 100ms)"),
            "{xml}"
        );
        assert_eq!(escape("a\u{1}b"), "ab");
    }
}
