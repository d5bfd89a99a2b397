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
use crate::runtime::{CloneSpec, Limits};

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
    pub green: Option<CloneSpec>,
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
}
