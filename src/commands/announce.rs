//! What `tune`, `rollback`, `deploy` and `watch` tell Alertmanager
//! (`notify`): their reports as [`Notice`]s. A tuning change is heard as it
//! lands through the cycle's `Landed` port, a watch adjustment when its
//! check returns, a deploy when it ends; none of the cores knows that
//! notifications exist.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::config::units::format_bytes;
use crate::config::Config;
use crate::notify::{Notice, Queue};
use crate::runtime::limits::trim;
use crate::tune::rollback::RollbackReport;
use crate::tune::{CycleReport, Landed};
use crate::watch::apply::Applied;
use crate::watch::cycle::{CheckReport, Row};
use crate::watch::policy::Decision;

fn number(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Queues a notice for each tuning change as it lands.
pub struct TuneNotices<'a> {
    pub config: &'a Config,
    pub queue: &'a Queue,
}

impl Landed for TuneNotices<'_> {
    fn landed(&self, change: &CycleReport) {
        self.queue.send(tune_notice(self.config, change));
    }
}

/// The snake_case name serde gives `value`, e.g. `no_effect`.
fn name_of(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A kept or rolled-back change; one rolled back on an interrupt, before
/// any verdict, is `interrupted`.
pub fn tune_notice(config: &Config, c: &CycleReport) -> Notice {
    let verdict = c
        .verdict
        .map(name_of)
        .unwrap_or_else(|| "interrupted".to_string());
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
    Notice {
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
    }
}

/// One notice per change `tuner rollback` undid.
pub fn rollback_notices(config: &Config, report: &RollbackReport) -> Vec<Notice> {
    if report.dry_run {
        return Vec::new();
    }
    report
        .undone
        .iter()
        .map(|u| {
            let mut annotations = BTreeMap::from([
                (
                    "summary".to_string(),
                    format!(
                        "tuner rolled back {} ({}): {} restored",
                        u.change_id, u.lever, u.restores
                    ),
                ),
                ("reason".to_string(), "tuner rollback".to_string()),
                ("change".to_string(), u.restores.clone()),
                (
                    "before".to_string(),
                    u.mv.to.clone().unwrap_or_else(|| "unset".into()),
                ),
                (
                    "after".to_string(),
                    u.mv.from.clone().unwrap_or_else(|| "unset".into()),
                ),
            ]);
            if let Some(d) = &u.drift {
                annotations.insert("drift".into(), d.clone());
            }
            Notice {
                name: "TunerChange".into(),
                labels: BTreeMap::from([
                    ("event".to_string(), "tune_rollback".to_string()),
                    ("verdict".to_string(), "rolled_back".to_string()),
                    ("outcome".to_string(), "rolled_back".to_string()),
                    ("lever".to_string(), u.lever.clone()),
                    ("change_id".to_string(), u.change_id.clone()),
                    ("profile".to_string(), config.profile.clone()),
                    ("severity".to_string(), "info".to_string()),
                ]),
                annotations,
                at: Utc::now(),
            }
        })
        .collect()
}

fn share(used: f64, limit: f64) -> String {
    if limit > 0.0 {
        format!(" ({:.0}% of the limit)", used / limit * 100.0)
    } else {
        String::new()
    }
}

/// A watch adjustment made or refused, with the usage it answered and the
/// limits before and after; `None` for a row that adjusted nothing.
pub fn watch_notice(row: &Row) -> Option<Notice> {
    let applied = row.applied.as_ref()?;
    let Some(Decision::Adjust(adj)) = &row.decision else {
        return None;
    };
    let (verdict, severity) = match applied {
        Applied::Done { .. } => ("adjusted", "info"),
        // Another action (a deploy) holds the service and is announced
        // itself; the check tries again next time.
        Applied::Busy { .. } => return None,
        Applied::Failed { .. } => ("failed", "warning"),
    };
    let mut labels = BTreeMap::from([
        ("event".to_string(), "watch_adjustment".to_string()),
        ("service".to_string(), row.service.clone()),
        ("verdict".to_string(), verdict.to_string()),
        ("direction".to_string(), adj.direction().name().to_string()),
        ("severity".to_string(), severity.to_string()),
    ]);
    let mut annotations = BTreeMap::from([
        (
            "summary".to_string(),
            format!(
                "tuner watch {} {}: {}",
                match applied {
                    Applied::Done { .. } => "adjusted",
                    _ => "could not adjust",
                },
                row.service,
                adj.describe()
            ),
        ),
        ("reason".to_string(), adj.reason.clone()),
        ("change".to_string(), adj.describe()),
        ("container".to_string(), row.container.clone()),
    ]);
    if adj.oom {
        annotations.insert("oom".into(), "true".into());
    }
    if let Some(r) = &row.reading {
        if let Some(cpu) = r.cpu_used {
            annotations.insert(
                "cpu_used".into(),
                format!("{cpu:.3} cores{}", share(cpu, r.cpu_limit)),
            );
        }
        annotations.insert(
            "memory_used".into(),
            format!(
                "{}{}",
                format_bytes(r.memory_used),
                share(r.memory_used as f64, r.memory_limit as f64)
            ),
        );
    }
    let old_new = |cpus: Option<f64>, memory: Option<u64>| -> String {
        let mut parts = Vec::new();
        if let Some(c) = cpus {
            parts.push(format!("cpus {}", trim(c)));
        }
        if let Some(m) = memory {
            parts.push(format!("memory {}", format_bytes(m)));
        }
        parts.join(", ")
    };
    annotations.insert(
        "before".into(),
        old_new(adj.cpus.map(|m| m.from), adj.memory.map(|m| m.from)),
    );
    match applied {
        Applied::Done { id, .. } => {
            labels.insert("change_id".into(), id.clone());
            annotations.insert(
                "after".into(),
                old_new(adj.cpus.map(|m| m.to), adj.memory.map(|m| m.to)),
            );
        }
        Applied::Busy { .. } => {}
        Applied::Failed { id, error } => {
            if let Some(id) = id {
                labels.insert("change_id".into(), id.clone());
            }
            annotations.insert("error".into(), error.clone());
        }
    }
    Some(Notice {
        name: "TunerWatch".into(),
        labels,
        annotations,
        at: Utc::now(),
    })
}

/// One notice per adjustment a check made or failed to make.
pub fn watch_notices(report: &CheckReport) -> Vec<Notice> {
    if report.dry_run {
        return Vec::new();
    }
    report.rows.iter().filter_map(watch_notice).collect()
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
            let outcome = name_of(r.outcome);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::policy::{Adjustment, Move, Reading};

    fn row(applied: Applied) -> Row {
        Row {
            service: "web".into(),
            container: "demo_web_1".into(),
            reading: Some(Reading {
                container_id: "abc".into(),
                cpu_used: Some(0.19),
                cpu_limit: 0.2,
                memory_used: 50 << 20,
                memory_limit: 256 << 20,
                oom_kills: 0,
            }),
            decision: Some(Decision::Adjust(Adjustment {
                cpus: Some(Move {
                    from: 0.2,
                    to: 0.25,
                }),
                memory: None,
                reason: "cpu above 80% for 3 checks".into(),
                oom: false,
            })),
            applied: Some(applied),
            error: None,
        }
    }

    #[test]
    fn a_watch_adjustment_carries_usage_old_and_new_limits_and_reason() {
        let limits = |cpus| crate::runtime::Limits {
            cpus,
            memory: 256 << 20,
            memory_swap: 512 << 20,
            knob: crate::runtime::limits::CpuKnob::NanoCpus,
        };
        let n = watch_notice(&row(Applied::Done {
            id: "w-1".into(),
            old: limits(0.2),
            new: limits(0.25),
        }))
        .unwrap();
        assert_eq!(n.name, "TunerWatch");
        assert_eq!(n.labels["event"], "watch_adjustment");
        assert_eq!(n.labels["verdict"], "adjusted");
        assert_eq!(n.labels["direction"], "up");
        assert_eq!(n.labels["change_id"], "w-1");
        assert_eq!(n.annotations["reason"], "cpu above 80% for 3 checks");
        assert_eq!(n.annotations["before"], "cpus 0.2");
        assert_eq!(n.annotations["after"], "cpus 0.25");
        assert_eq!(n.annotations["cpu_used"], "0.190 cores (95% of the limit)");
        assert!(n.annotations["memory_used"].contains("(20% of the limit)"));
    }

    #[test]
    fn a_failed_adjustment_is_a_warning_naming_the_engine_error() {
        let n = watch_notice(&row(Applied::Failed {
            id: Some("w-2".into()),
            error: "usage too high".into(),
        }))
        .unwrap();
        assert_eq!(n.labels["verdict"], "failed");
        assert_eq!(n.labels["severity"], "warning");
        assert_eq!(n.annotations["error"], "usage too high");
        assert!(!n.annotations.contains_key("after"));
        assert!(n.annotations["summary"].contains("could not adjust web"));
        // Held by a deploy: that deploy is announced, not this.
        assert!(watch_notice(&row(Applied::Busy {
            holder: "tuner deploy".into()
        }))
        .is_none());
    }
}
