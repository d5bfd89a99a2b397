//! tuner's own metrics in Prometheus' text format, for node_exporter's
//! textfile collector: what tuning did (changes by lever and verdict, the
//! last verdict's time), the settings it manages, and the last SLA reading.
//!
//! Three files, one per writer, so no command overwrites what another knows:
//! `tuner_info.prom` (every command), `tuner_tune.prom` (tune, rollback) and
//! `tuner_sla.prom` (status, tune). Counters are folded from the journal,
//! so they survive restarts without a counter file of their own. Each file
//! is replaced atomically and readable by the collector's user.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::journal::{write_atomic, JournalError};
use crate::metrics::{SlaReport, State, Verdict as SlaVerdict};
use crate::tune::ledger::Entry;

pub const INFO_FILE: &str = "tuner_info.prom";
pub const TUNE_FILE: &str = "tuner_tune.prom";
pub const SLA_FILE: &str = "tuner_sla.prom";

/// One managed setting now: the lever, the setting it moves
/// (`max_wal_size`, `grafana.memory`), its value as text and as a number
/// in base units when it is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub lever: String,
    pub setting: String,
    pub value: Option<String>,
    pub number: Option<f64>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// `tuner_info{version}`.
pub fn render_info() -> String {
    let mut out = String::new();
    family(
        &mut out,
        "tuner_info",
        "gauge",
        "The tuner build that wrote these metrics.",
    );
    let _ = writeln!(
        out,
        "tuner_info{{version=\"{}\"}} 1",
        escape(env!("CARGO_PKG_VERSION"))
    );
    out
}

/// Changes by lever and verdict, the last verdict's time, and the settings.
pub fn render_tune(entries: &[Entry], settings: &[Setting], now: DateTime<Utc>) -> String {
    let mut lever_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut changes: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut last: Option<DateTime<Utc>> = None;
    for entry in entries {
        match entry {
            Entry::Intent {
                change_id, lever, ..
            } => {
                lever_of.insert(change_id, &lever.name);
            }
            Entry::Decision {
                change_id,
                verdict,
                at,
                ..
            } => {
                let lever = lever_of.get(change_id.as_str()).copied().unwrap_or("?");
                *changes.entry((lever, verdict.as_str())).or_default() += 1;
                last = Some(last.map_or(*at, |l| l.max(*at)));
            }
            Entry::Outcome { .. } => {}
        }
    }
    let mut out = String::new();
    family(
        &mut out,
        "tuner_tune_changes_total",
        "counter",
        "Tuning changes judged, by lever and verdict (only improved is kept).",
    );
    for ((lever, verdict), n) in &changes {
        let _ = writeln!(
            out,
            "tuner_tune_changes_total{{lever=\"{}\",verdict=\"{verdict}\"}} {n}",
            escape(lever)
        );
    }
    if let Some(at) = last {
        family(
            &mut out,
            "tuner_tune_last_verdict_timestamp_seconds",
            "gauge",
            "When the last tuning change was judged.",
        );
        let _ = writeln!(
            out,
            "tuner_tune_last_verdict_timestamp_seconds {}",
            seconds(at)
        );
    }
    family(
        &mut out,
        "tuner_setting_value",
        "gauge",
        "A managed setting's current value in base units (bytes, milliseconds, cores).",
    );
    for s in settings {
        if let Some(n) = s.number {
            let _ = writeln!(
                out,
                "tuner_setting_value{{lever=\"{}\",setting=\"{}\"}} {n}",
                escape(&s.lever),
                escape(&s.setting)
            );
        }
    }
    family(
        &mut out,
        "tuner_setting_info",
        "gauge",
        "A managed setting's current value as written (unset when it has none).",
    );
    for s in settings {
        let _ = writeln!(
            out,
            "tuner_setting_info{{lever=\"{}\",setting=\"{}\",value=\"{}\"}} 1",
            escape(&s.lever),
            escape(&s.setting),
            escape(s.value.as_deref().unwrap_or("unset"))
        );
    }
    family(
        &mut out,
        "tuner_tune_updated_timestamp_seconds",
        "gauge",
        "When this file was written.",
    );
    let _ = writeln!(out, "tuner_tune_updated_timestamp_seconds {}", seconds(now));
    out
}

const STATES: [(State, &str); 6] = [
    (State::Ok, "ok"),
    (State::Warning, "warning"),
    (State::Violated, "violated"),
    (State::NoData, "no_data"),
    (State::NoBaseline, "no_baseline"),
    (State::Untracked, "untracked"),
];

/// Each objective's state (one series per state, 1 for the current one, as
/// Prometheus' own enums do), its value and limit, and the verdict.
pub fn render_sla(report: &SlaReport) -> String {
    let mut out = String::new();
    let profile = escape(&report.profile);
    family(
        &mut out,
        "tuner_objective_state",
        "gauge",
        "1 for each objective's state at the last SLA reading.",
    );
    for m in &report.metrics {
        for (state, label) in STATES {
            let _ = writeln!(
                out,
                "tuner_objective_state{{profile=\"{profile}\",metric=\"{}\",state=\"{label}\"}} {}",
                escape(&m.name),
                u8::from(m.state == state)
            );
        }
    }
    family(
        &mut out,
        "tuner_objective_value",
        "gauge",
        "The value each objective was judged on (absent: no data).",
    );
    for m in &report.metrics {
        if let Some(v) = m.value {
            let _ = writeln!(
                out,
                "tuner_objective_value{{profile=\"{profile}\",metric=\"{}\"}} {v}",
                escape(&m.name)
            );
        }
    }
    family(
        &mut out,
        "tuner_objective_limit",
        "gauge",
        "Each objective's limit, in the metric's unit.",
    );
    for m in &report.metrics {
        if let Some(v) = m.limit {
            let _ = writeln!(
                out,
                "tuner_objective_limit{{profile=\"{profile}\",metric=\"{}\"}} {v}",
                escape(&m.name)
            );
        }
    }
    family(
        &mut out,
        "tuner_sla_verdict",
        "gauge",
        "1 for the verdict of the last SLA reading.",
    );
    for (verdict, label) in [
        (SlaVerdict::Met, "met"),
        (SlaVerdict::Violated, "violated"),
        (SlaVerdict::Unmeasured, "unmeasured"),
    ] {
        let _ = writeln!(
            out,
            "tuner_sla_verdict{{profile=\"{profile}\",verdict=\"{label}\"}} {}",
            u8::from(report.verdict == verdict)
        );
    }
    family(
        &mut out,
        "tuner_sla_timestamp_seconds",
        "gauge",
        "When the last SLA reading was taken.",
    );
    let _ = writeln!(
        out,
        "tuner_sla_timestamp_seconds{{profile=\"{profile}\"}} {}",
        seconds(report.at)
    );
    out
}

/// Replaces `dir/name` atomically with `text`, readable by every user: the
/// collector often runs as another one (`nobody` in the demo).
pub fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, JournalError> {
    let path = dir.join(name);
    write_atomic(&path, text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::Verdict;
    use crate::levers::catalog::{Cost, Lever, Symptom, Target};
    use crate::levers::port::Move;

    fn lever(name: &str) -> Lever {
        Lever {
            name: name.into(),
            cost: Cost::Low,
            symptoms: vec![Symptom::HighWalRate],
            values: vec!["4GB".into()],
            description: None,
            target: Target::Postgres {
                parameter: name.into(),
                allow_unsafe: false,
            },
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn tuning_counts_changes_by_lever_and_verdict() {
        let intent = |id: &str, name: &str| Entry::Intent {
            change_id: id.into(),
            action: crate::tune::ledger::Action::Apply,
            lever: lever(name),
            mv: Move {
                from: Some("1GB".into()),
                to: Some("4GB".into()),
            },
            at: at(100),
        };
        let decision = |id: &str, verdict: Verdict, secs: i64| Entry::Decision {
            change_id: id.into(),
            verdict,
            kept: verdict.keeps(),
            reason: String::new(),
            at: at(secs),
        };
        let entries = [
            intent("a", "max_wal_size"),
            decision("a", Verdict::NoEffect, 200),
            intent("b", "max_wal_size"),
            decision("b", Verdict::Improved, 400),
            intent("c", "checkpoint_timeout"),
            decision("c", Verdict::NoEffect, 300),
        ];
        let settings = [
            Setting {
                lever: "max_wal_size".into(),
                setting: "max_wal_size".into(),
                value: Some("4GB".into()),
                number: Some(4294967296.0),
            },
            Setting {
                lever: "wal_compression".into(),
                setting: "wal_compression".into(),
                value: Some("on".into()),
                number: None,
            },
        ];
        let text = render_tune(&entries, &settings, at(500));
        for line in [
            "# TYPE tuner_tune_changes_total counter",
            "tuner_tune_changes_total{lever=\"max_wal_size\",verdict=\"improved\"} 1",
            "tuner_tune_changes_total{lever=\"max_wal_size\",verdict=\"no_effect\"} 1",
            "tuner_tune_changes_total{lever=\"checkpoint_timeout\",verdict=\"no_effect\"} 1",
            "tuner_tune_last_verdict_timestamp_seconds 400",
            "tuner_setting_value{lever=\"max_wal_size\",setting=\"max_wal_size\"} 4294967296",
            "tuner_setting_info{lever=\"wal_compression\",setting=\"wal_compression\",value=\"on\"} 1",
            "tuner_tune_updated_timestamp_seconds 500",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("tuner_setting_value{lever=\"wal_compression\""));
        // Nothing judged yet: no timestamp series that would read as 1970.
        assert!(!render_tune(&[], &[], at(1)).contains("last_verdict_timestamp_seconds "));
    }

    #[test]
    fn labels_are_escaped_and_info_names_the_version() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert!(render_info().contains(&format!(
            "tuner_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn files_are_replaced_and_readable_by_the_collector() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), INFO_FILE, "a 1\n").unwrap();
        write(dir.path(), INFO_FILE, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
}
