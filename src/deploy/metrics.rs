//! Deploy metrics for node_exporter's textfile collector, derived from the
//! deploy journals (so they survive restarts and crashes without a
//! separate counter file), written atomically.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::record::{fold, Entry, History, Kind, Outcome, MODULE};
use crate::journal::{write_atomic, Journal, JournalError};

pub const FILE_NAME: &str = "tuner_deploy.prom";

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    pub rollbacks: u64,
    pub last_duration: Option<f64>,
    pub duration_sum: f64,
}

/// Counts per service from the one journal's deploy entries, after those of
/// the per-service files older versions kept under `<state_dir>/deploy/`.
pub fn collect(state_dir: &Path) -> Result<BTreeMap<String, Counts>, JournalError> {
    let mut entries: Vec<Entry> = Vec::new();
    if let Ok(read) = std::fs::read_dir(state_dir.join("deploy")) {
        let mut files: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        for file in files {
            entries.extend(Journal::new(&file).entries::<Entry>()?);
        }
    }
    entries.extend(
        Journal::new(state_dir.join(crate::journal::FILE)).entries_of::<Entry>(MODULE, None)?,
    );
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for h in fold(entries) {
        add(out.entry(h.record.service.clone()).or_default(), &h);
    }
    Ok(out)
}

fn add(c: &mut Counts, h: &History) {
    c.total += 1;
    if h.record.kind == Kind::Rollback {
        c.rollbacks += 1;
    }
    match h.outcome {
        Some(o) if o.kept_new_limits() => c.successful += 1,
        Some(Outcome::Failed | Outcome::Undone) => c.failed += 1,
        _ => {}
    }
    if let Some(d) = h.duration_secs() {
        c.last_duration = Some(d);
        c.duration_sum += d;
    }
}

/// The Prometheus text exposition of `counts`.
pub fn render(counts: &BTreeMap<String, Counts>) -> String {
    let mut out = String::new();
    type Get = fn(&Counts) -> Option<f64>;
    let families: [(&str, &str, &str, Get); 6] = [
        (
            "tuner_deploy_deployments_total",
            "counter",
            "Deploys started (blue-green, rollback or in-place).",
            |c| Some(c.total as f64),
        ),
        (
            "tuner_deploy_successful_total",
            "counter",
            "Deploys that kept the new limits.",
            |c| Some(c.successful as f64),
        ),
        (
            "tuner_deploy_failed_total",
            "counter",
            "Deploys that failed or were undone.",
            |c| Some(c.failed as f64),
        ),
        (
            "tuner_deploy_rollbacks_total",
            "counter",
            "Rollbacks started.",
            |c| Some(c.rollbacks as f64),
        ),
        (
            "tuner_deploy_last_duration_seconds",
            "gauge",
            "Duration of the last finished deploy.",
            |c| c.last_duration,
        ),
        (
            "tuner_deploy_duration_seconds_total",
            "counter",
            "Time spent in finished deploys.",
            |c| Some(c.duration_sum),
        ),
    ];
    for (name, kind, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (service, c) in counts {
            if let Some(v) = get(c) {
                let _ = writeln!(out, "{name}{{service=\"{}\"}} {v}", escape(service));
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `<dir>/tuner_deploy.prom` atomically.
pub fn write(dir: &Path, state_dir: &Path) -> Result<PathBuf, JournalError> {
    let path = dir.join(FILE_NAME);
    write_atomic(&path, render(&collect(state_dir)?).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_per_service() {
        let mut m = BTreeMap::new();
        m.insert(
            "grafana".to_string(),
            Counts {
                total: 3,
                successful: 2,
                failed: 1,
                rollbacks: 1,
                last_duration: Some(2.5),
                duration_sum: 7.0,
            },
        );
        let text = render(&m);
        assert!(
            text.contains("# TYPE tuner_deploy_deployments_total counter"),
            "{text}"
        );
        assert!(
            text.contains("tuner_deploy_deployments_total{service=\"grafana\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("tuner_deploy_last_duration_seconds{service=\"grafana\"} 2.5"),
            "{text}"
        );
    }
}
