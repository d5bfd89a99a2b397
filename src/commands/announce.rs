//! What `tune` and `deploy` tell Alertmanager (`notify`): their reports as
//! [`Notice`]s. The commands call this after the core returns, so neither
//! the tune cycle nor the swap knows notifications exist.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::config::Config;
use crate::notify::Notice;
use crate::tune::{CycleReport, RunReport};

fn number(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// One notice per judged change of the run: kept or rolled back.
pub fn tune_notices(config: &Config, report: &RunReport) -> Vec<Notice> {
    report
        .cycles
        .iter()
        .filter_map(|c| tune_notice(config, c))
        .collect()
}

fn tune_notice(config: &Config, c: &CycleReport) -> Option<Notice> {
    let verdict = c.verdict?;
    let verdict = serde_json::to_value(verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let outcome = if c.kept { "kept" } else { "rolled_back" };
    let mut annotations = BTreeMap::from([
        (
            "summary".to_string(),
            format!(
                "tuner {} {} ({verdict}): {} on {}",
                if c.kept { "kept" } else { "rolled back" },
                c.assignment,
                c.goal_metric,
                config.profile
            ),
        ),
        ("reason".to_string(), c.reason.clone()),
        ("change".to_string(), c.assignment.clone()),
    ]);
    if let Some(b) = c.goal_before {
        annotations.insert("before".into(), number(b));
    }
    if let Some(a) = c.goal_after {
        annotations.insert("after".into(), number(a));
    }
    if let Some(e) = &c.evidence {
        annotations.insert("evidence".into(), e.clone());
    }
    if let Some(t) = &c.throughput {
        annotations.insert(
            "throughput".into(),
            format!("{} -> {} tx/s", number(t.before), number(t.after)),
        );
    }
    Some(Notice {
        name: "TunerChange".into(),
        labels: BTreeMap::from([
            ("event".to_string(), "tune_change".to_string()),
            ("verdict".to_string(), verdict),
            ("outcome".to_string(), outcome.to_string()),
            ("lever".to_string(), c.lever.clone()),
            ("metric".to_string(), c.goal_metric.clone()),
            ("change_id".to_string(), c.change_id.clone()),
            ("profile".to_string(), config.profile.clone()),
            ("severity".to_string(), "info".to_string()),
        ]),
        annotations,
        at: Utc::now(),
    })
}

/// A finished deploy or deploy rollback, or one that failed.
pub fn deploy_notice(
    service: &str,
    rollback: bool,
    result: Result<&crate::deploy::swap::Report, String>,
    target: &str,
) -> Notice {
    let event = if rollback {
        "deploy_rollback"
    } else {
        "deploy"
    };
    let mut labels = BTreeMap::from([
        ("event".to_string(), event.to_string()),
        ("service".to_string(), service.to_string()),
        ("severity".to_string(), "info".to_string()),
    ]);
    let mut annotations = BTreeMap::new();
    match result {
        Ok(r) => {
            let outcome = serde_json::to_value(r.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            labels.insert("verdict".into(), outcome);
            labels.insert("deploy_id".into(), r.id.clone());
            annotations.insert(
                "summary".into(),
                format!(
                    "tuner {} {service}: {} (was {})",
                    if rollback { "rolled back" } else { "deployed" },
                    r.read_back.describe(),
                    r.old.describe()
                ),
            );
            annotations.insert("before".into(), r.old.describe());
            annotations.insert("after".into(), r.read_back.describe());
            annotations.insert("seconds".into(), format!("{:.1}", r.seconds));
            annotations.insert(
                "reason".into(),
                format!("requested {target}; container {}", r.container),
            );
        }
        Err(error) => {
            labels.insert("verdict".into(), "failed".into());
            labels.insert("severity".into(), "warning".into());
            annotations.insert(
                "summary".into(),
                format!(
                    "tuner could not {} {service} to {target}",
                    if rollback { "roll back" } else { "deploy" }
                ),
            );
            annotations.insert("reason".into(), error);
        }
    }
    Notice {
        name: "TunerDeploy".into(),
        labels,
        annotations,
        at: Utc::now(),
    }
}
