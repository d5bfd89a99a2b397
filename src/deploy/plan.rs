//! The plan of a deploy: built from live state before anything changes,
//! printed by `--dry-run`, executed step by step by the real run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::health::Probe;
use super::record::{DeployRecord, Kind};
use super::router::Preflight;
use super::Phase;
use crate::config::units::format_duration;
use crate::docker::{GreenSpec, Limits};

#[derive(Debug, Clone, Serialize)]
pub struct SpecChange {
    pub field: String,
    pub blue: String,
    pub green: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub phase: Phase,
    pub action: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverrideChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Timings the run uses.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timings {
    #[serde(serialize_with = "secs")]
    pub health_timeout: Duration,
    #[serde(serialize_with = "secs")]
    pub health_interval: Duration,
    #[serde(serialize_with = "secs")]
    pub drain: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub kind: Kind,
    pub strategy: &'static str,
    pub service: String,
    pub project: Option<String>,
    pub blue_id: String,
    pub blue_name: String,
    pub green_name: Option<String>,
    pub old: Limits,
    pub new: Limits,
    pub router: String,
    /// What the router's preflight found (HAProxy: socket, backend, servers).
    pub router_check: Option<Preflight>,
    /// Blue's and green's server names in the router.
    pub router_blue: Option<String>,
    pub router_green: Option<String>,
    /// Where green will be published (`127.0.0.1:<port>`), when known.
    pub green_address: Option<String>,
    pub probe: Option<Probe>,
    pub timings: Timings,
    pub spec_changes: Vec<SpecChange>,
    pub unchanged_fields: usize,
    pub steps: Vec<Step>,
    pub override_file: Option<OverrideChange>,
    pub notes: Vec<String>,
    /// What the run journals and executes.
    #[serde(skip)]
    pub record: DeployRecord,
    #[serde(skip)]
    pub green: Option<GreenSpec>,
}

impl Plan {
    /// The plan for humans.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let project = self
            .project
            .as_deref()
            .map(|p| format!(", project {p}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "Plan: {} {} ({} {}{project}), strategy {}, router {}",
            self.kind,
            self.service,
            self.blue_name,
            short(&self.blue_id),
            self.strategy,
            self.router
        );
        let _ = writeln!(
            out,
            "Limits: {}  ->  {}",
            self.old.describe(),
            self.new.describe()
        );
        if let Some(check) = &self.router_check {
            let _ = writeln!(
                out,
                "Router: {} - preflight OK ({})",
                check.target, check.checked
            );
            for srv in &check.servers {
                let role = if self.router_blue.as_deref() == Some(srv.name.as_str()) {
                    "  <- blue"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  server {} {} weight {}: {}{role}",
                    srv.name, srv.address, srv.weight, srv.state
                );
            }
            if let Some(g) = &self.router_green {
                let _ = writeln!(
                    out,
                    "  green will be added as server {g} {}",
                    self.green_address
                        .as_deref()
                        .unwrap_or("<published address>")
                );
            }
        }
        if let Some(probe) = &self.probe {
            let t = &self.timings;
            let _ = writeln!(
                out,
                "Health: {probe} (timeout {}, interval {})",
                format_duration(t.health_timeout),
                format_duration(t.health_interval)
            );
        }
        if let Some(green) = &self.green_name {
            let _ = writeln!(
                out,
                "\nGreen {green} against blue {} ({} fields copied unchanged):",
                self.blue_name, self.unchanged_fields
            );
            let mut table = crate::output::table(&["field", "blue", "green"]);
            for c in &self.spec_changes {
                table.add_row(vec![c.field.clone(), c.blue.clone(), c.green.clone()]);
            }
            let _ = writeln!(out, "{table}");
        }
        let _ = writeln!(out, "\nSteps:");
        for (i, s) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {:<12} {}", i + 1, s.phase.name(), s.action);
        }
        if let Some(o) = &self.override_file {
            let _ = writeln!(out, "\nOverride file {}:", o.path);
            let _ = write!(
                out,
                "{}",
                line_diff(o.before.as_deref(), o.after.as_deref())
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nNotes:");
            for n in &self.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        out
    }
}

fn short(id: &str) -> &str {
    crate::docker::find::short_id(id)
}

/// `-`/`+` lines between two texts (a missing file shows as such).
pub fn line_diff(before: Option<&str>, after: Option<&str>) -> String {
    let mut out = String::new();
    if before.is_none() {
        out.push_str("  (file does not exist yet)\n");
    }
    let b: Vec<&str> = before.unwrap_or("").lines().collect();
    let a: Vec<&str> = after.unwrap_or("").lines().collect();
    if after.is_none() {
        out.push_str("  (file will be removed)\n");
    }
    for l in &b {
        if !a.contains(l) {
            let _ = writeln!(out, "  - {l}");
        }
    }
    for l in &a {
        if b.contains(l) {
            let _ = writeln!(out, "    {l}");
        } else {
            let _ = writeln!(out, "  + {l}");
        }
    }
    out
}

/// Field-by-field differences between two create bodies, and how many
/// fields are equal. Maps are compared key by key (labels, endpoints).
pub fn spec_diff<T: Serialize>(blue: &T, green: &T) -> (Vec<SpecChange>, usize) {
    let mut left = BTreeMap::new();
    let mut right = BTreeMap::new();
    flatten(
        "",
        &serde_json::to_value(blue).unwrap_or(Value::Null),
        &mut left,
    );
    flatten(
        "",
        &serde_json::to_value(green).unwrap_or(Value::Null),
        &mut right,
    );
    let mut keys: Vec<&String> = left.keys().chain(right.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut changes = Vec::new();
    let mut same = 0;
    for k in keys {
        let (l, r) = (left.get(k), right.get(k));
        if l == r {
            same += 1;
        } else {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "-".to_string());
            changes.push(SpecChange {
                field: k.clone(),
                blue: show(l),
                green: show(r),
            });
        }
    }
    (changes, same)
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_counts_equal_leaves_and_shows_changes() {
        let a = serde_json::json!({"Image": "web", "HostConfig": {"NanoCpus": 1, "Init": true}, "Labels": {"x": "1"}});
        let b = serde_json::json!({"Image": "web", "HostConfig": {"NanoCpus": 2, "Init": true}, "Labels": {"x": "1", "y": "2"}});
        let (changes, same) = spec_diff(&a, &b);
        assert_eq!(same, 3);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].field, "HostConfig.NanoCpus");
        assert_eq!(changes[1].blue, "-");
    }

    #[test]
    fn override_diff_marks_added_lines() {
        let d = line_diff(None, Some("services:\n  web:\n    cpus: 1.5\n"));
        assert!(
            d.contains("does not exist yet") && d.contains("  + services:"),
            "{d}"
        );
    }

    #[test]
    fn render_shows_limits_diff_steps_override_and_notes() {
        use crate::docker::CpuKnob;
        let old = Limits {
            cpus: 0.5,
            memory: 256 << 20,
            memory_swap: 512 << 20,
            knob: CpuKnob::NanoCpus,
        };
        let new = old.resized(1.5, 768 << 20);
        let record = DeployRecord {
            id: "d1".into(),
            kind: Kind::Deploy,
            service: "grafana".into(),
            project: Some("demo".into()),
            blue_id: "0123456789abcdef".into(),
            blue_name: "demo_grafana_1".into(),
            green_name: "demo_grafana_1_tuner_green".into(),
            old,
            new,
            override_path: None,
            override_before: None,
            override_after: None,
            router_blue: None,
            router_green: None,
            started_at: chrono::Utc::now(),
        };
        let plan = Plan {
            kind: Kind::Deploy,
            strategy: "blue-green",
            service: "grafana".into(),
            project: Some("demo".into()),
            blue_id: record.blue_id.clone(),
            blue_name: record.blue_name.clone(),
            green_name: Some(record.green_name.clone()),
            old,
            new,
            router: "none".into(),
            router_check: None,
            router_blue: None,
            router_green: None,
            green_address: None,
            probe: Some(Probe::Docker),
            timings: Timings {
                health_timeout: Duration::from_secs(120),
                health_interval: Duration::from_secs(5),
                drain: Duration::from_secs(30),
            },
            spec_changes: vec![SpecChange {
                field: "HostConfig.NanoCpus".into(),
                blue: "500000000".into(),
                green: "1500000000".into(),
            }],
            unchanged_fields: 60,
            steps: vec![Step {
                phase: Phase::CreateGreen,
                action: "create it".into(),
            }],
            override_file: Some(OverrideChange {
                path: "/p/docker-compose.override.yml".into(),
                before: None,
                after: Some("services:\n".into()),
            }),
            notes: vec!["a note".into()],
            record,
            green: None,
        };
        let text = plan.render();
        for want in [
            "Plan: deploy grafana (demo_grafana_1 0123456789ab, project demo), strategy blue-green, router none",
            "Limits: 0.5 CPU, 256M  ->  1.5 CPU, 768M",
            "Health: Docker healthcheck (timeout 2m, interval 5s)",
            "(60 fields copied unchanged)",
            "HostConfig.NanoCpus",
            "1. create-green create it",
            "+ services:",
            "- a note",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["new"]["memory"], 768u64 << 20);
        assert!(json.get("record").is_none());
    }
}
