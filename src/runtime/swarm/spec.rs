//! Pure functions over a service spec in the engine's JSON: the limits it
//! sets, the spec after a resize, and the field-by-field diff `--dry-run`
//! prints. No I/O, so the exact spec tuner will write is unit-tested.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::runtime::limits::{CpuKnob, Limits};

const NANO: f64 = 1e9;

/// Reads `path` (keys) from a spec; `Value::Null` when absent.
fn at<'a>(spec: &'a Value, path: &[&str]) -> &'a Value {
    let mut v = spec;
    for key in path {
        v = v.get(key).unwrap_or(&Value::Null);
    }
    v
}

/// The object at `path`, created (and made an object) on the way.
fn object_at<'a>(spec: &'a mut Value, path: &[&str]) -> &'a mut serde_json::Map<String, Value> {
    let mut v = spec;
    for key in path {
        if !v.is_object() {
            *v = json!({});
        }
        let Value::Object(map) = v else {
            unreachable!("made an object just above")
        };
        v = map.entry(key.to_string()).or_insert_with(|| json!({}));
    }
    if !v.is_object() {
        *v = json!({});
    }
    match v {
        Value::Object(map) => map,
        _ => unreachable!("made an object just above"),
    }
}

fn resources(spec: &Value, which: &str) -> (f64, u64) {
    let r = at(spec, &["TaskTemplate", "Resources", which]);
    let cpus = r.get("NanoCPUs").and_then(Value::as_i64).unwrap_or(0) as f64 / NANO;
    let memory = r
        .get("MemoryBytes")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0) as u64;
    (cpus, memory)
}

/// The limits every task of the spec gets. Swarm has one CPU knob
/// (NanoCPUs) and leaves swap to the engine, so the swap is "never set".
pub fn limits(spec: &Value) -> Limits {
    let (cpus, memory) = resources(spec, "Limits");
    Limits {
        cpus,
        memory,
        memory_swap: 0,
        knob: CpuKnob::NanoCpus,
    }
}

/// The reservations (what the scheduler sets aside on a node).
pub fn reservations(spec: &Value) -> (f64, u64) {
    resources(spec, "Reservations")
}

/// Replicas of a replicated service; `None` for a global one.
pub fn replicas(spec: &Value) -> Option<u64> {
    at(spec, &["Mode", "Replicated", "Replicas"]).as_u64()
}

pub fn image(spec: &Value) -> String {
    at(spec, &["TaskTemplate", "ContainerSpec", "Image"])
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The service's own healthcheck, unless absent or `NONE`.
pub fn has_healthcheck(spec: &Value) -> bool {
    let test = at(
        spec,
        &["TaskTemplate", "ContainerSpec", "HealthCheck", "Test"],
    );
    match test.as_array() {
        Some(t) => !t.is_empty() && t.first().and_then(Value::as_str) != Some("NONE"),
        None => false,
    }
}

/// True when the spec disables the image's healthcheck.
pub fn healthcheck_disabled(spec: &Value) -> bool {
    at(
        spec,
        &["TaskTemplate", "ContainerSpec", "HealthCheck", "Test"],
    )
    .as_array()
    .and_then(|t| t.first())
    .and_then(Value::as_str)
        == Some("NONE")
}

/// The healthcheck's interval × retries: how long a task can look fine
/// before its check fails it, hence the least monitor window that sees it.
pub fn healthcheck_window(spec: &Value) -> Option<Duration> {
    let hc = at(spec, &["TaskTemplate", "ContainerSpec", "HealthCheck"]);
    let interval = hc.get("Interval").and_then(Value::as_u64)?;
    let retries = hc.get("Retries").and_then(Value::as_u64).unwrap_or(3);
    Some(Duration::from_nanos(
        interval.saturating_mul(retries.max(1)),
    ))
}

/// Service and container labels, the container's winning.
pub fn labels(spec: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for path in [
        &["Labels"][..],
        &["TaskTemplate", "ContainerSpec", "Labels"][..],
    ] {
        if let Some(map) = at(spec, path).as_object() {
            for (k, v) in map {
                if let Some(v) = v.as_str() {
                    out.insert(k.clone(), v.to_string());
                }
            }
        }
    }
    out
}

/// Named volumes the tasks mount, as `name at /path`.
pub fn named_volumes(spec: &Value) -> Vec<String> {
    at(spec, &["TaskTemplate", "ContainerSpec", "Mounts"])
        .as_array()
        .map(|mounts| {
            mounts
                .iter()
                .filter(|m| m.get("Type").and_then(Value::as_str) == Some("volume"))
                .filter_map(|m| {
                    let source = m.get("Source").and_then(Value::as_str)?;
                    let target = m.get("Target").and_then(Value::as_str).unwrap_or("?");
                    (!source.is_empty()).then(|| format!("{source} at {target}"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How the update is rolled out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rollout {
    /// How long Swarm watches each new task for a failure before the next.
    pub monitor: Duration,
}

/// The spec with new limits and the rollout tuner relies on: one task at a
/// time, the new one started (and healthy) before the old one stops, a
/// failure inside the monitor window rolls the whole service back, and the
/// rollback itself is as careful. Reservations stay at or below the new
/// limits, else Swarm would refuse the spec (or reserve more than a task may use).
pub fn resized(spec: &Value, cpus: f64, memory: u64, rollout: Rollout) -> Value {
    let mut out = spec.clone();
    let nano = (cpus * NANO).round() as i64;
    let limits = object_at(&mut out, &["TaskTemplate", "Resources", "Limits"]);
    limits.insert("NanoCPUs".into(), json!(nano));
    limits.insert("MemoryBytes".into(), json!(memory));
    let reservations = object_at(&mut out, &["TaskTemplate", "Resources", "Reservations"]);
    for (key, cap) in [("NanoCPUs", nano), ("MemoryBytes", memory as i64)] {
        if let Some(r) = reservations.get(key).and_then(Value::as_i64) {
            if r > cap {
                reservations.insert(key.into(), json!(cap));
            }
        }
    }
    if reservations.is_empty() {
        if let Some(res) = out
            .get_mut("TaskTemplate")
            .and_then(|t| t.get_mut("Resources"))
            .and_then(Value::as_object_mut)
        {
            res.remove("Reservations");
        }
    }
    let monitor = rollout.monitor.as_nanos() as u64;
    for (key, on_failure) in [("UpdateConfig", "rollback"), ("RollbackConfig", "pause")] {
        let c = object_at(&mut out, &[key]);
        c.insert("Parallelism".into(), json!(1));
        c.insert("Order".into(), json!("start-first"));
        c.insert("FailureAction".into(), json!(on_failure));
        c.insert("Monitor".into(), json!(monitor));
        c.insert("MaxFailureRatio".into(), json!(0));
    }
    out
}

/// One field that differs between two specs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Dotted path, array items as `[i]`: `TaskTemplate.Resources.Limits.NanoCPUs`.
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| match v {
            None => "(unset)".to_string(),
            Some(v) => v.to_string(),
        };
        write!(
            f,
            "{}: {} -> {}",
            self.path,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// Every leaf that differs, in path order.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut a = BTreeMap::new();
    let mut b = BTreeMap::new();
    flatten("", old, &mut a);
    flatten("", new, &mut b);
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| a.get(*p) != b.get(*p))
        .map(|p| Change {
            path: p.clone(),
            old: a.get(p).cloned(),
            new: b.get(p).cloned(),
        })
        .collect()
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::Object(_) | Value::Array(_) | Value::Null => {}
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({
            "Name": "web",
            "Labels": {"tuner.role": "stateless"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "tswarm/web:1",
                    "HealthCheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000u64, "Retries": 2},
                    "Mounts": [{"Type": "volume", "Source": "data", "Target": "/data"}]
                },
                "Resources": {
                    "Limits": {"NanoCPUs": 1_000_000_000u64, "MemoryBytes": 268435456u64},
                    "Reservations": {"NanoCPUs": 500_000_000u64, "MemoryBytes": 268435456u64}
                }
            },
            "Mode": {"Replicated": {"Replicas": 3}},
            "UpdateConfig": {"Parallelism": 2, "Delay": 5, "Order": "stop-first"}
        })
    }

    #[test]
    fn reads_limits_replicas_health_and_volumes() {
        let s = spec();
        let l = limits(&s);
        assert_eq!((l.cpus, l.memory), (1.0, 256 << 20));
        assert_eq!(reservations(&s), (0.5, 256 << 20));
        assert_eq!(replicas(&s), Some(3));
        assert!(has_healthcheck(&s));
        assert_eq!(healthcheck_window(&s), Some(Duration::from_secs(2)));
        assert_eq!(named_volumes(&s), vec!["data at /data".to_string()]);
        assert_eq!(
            labels(&s).get("tuner.role").map(String::as_str),
            Some("stateless")
        );
    }

    #[test]
    fn resize_sets_limits_caps_reservations_and_the_rollout() {
        let rollout = Rollout {
            monitor: Duration::from_secs(4),
        };
        let new = resized(&spec(), 0.25, 128 << 20, rollout);
        assert_eq!(limits(&new).cpus, 0.25);
        assert_eq!(limits(&new).memory, 128 << 20);
        assert_eq!(
            reservations(&new),
            (0.25, 128 << 20),
            "capped at the limits"
        );
        let u = &new["UpdateConfig"];
        assert_eq!(u["Order"], "start-first");
        assert_eq!(u["Parallelism"], 1);
        assert_eq!(u["FailureAction"], "rollback");
        assert_eq!(u["Monitor"], 4_000_000_000u64);
        assert_eq!(u["Delay"], 5, "fields tuner does not own are kept");
        assert_eq!(new["RollbackConfig"]["Order"], "start-first");
        // Growing keeps reservations as they were.
        let grown = resized(&spec(), 2.0, 1 << 30, rollout);
        assert_eq!(reservations(&grown), (0.5, 256 << 20));
    }

    #[test]
    fn a_spec_without_resources_gets_limits_and_no_reservations() {
        let bare = json!({"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "x"}}});
        let new = resized(
            &bare,
            1.0,
            64 << 20,
            Rollout {
                monitor: Duration::from_secs(1),
            },
        );
        assert!(new["TaskTemplate"]["Resources"]
            .get("Reservations")
            .is_none());
        assert_eq!(limits(&new).memory, 64 << 20);
    }

    #[test]
    fn diff_lists_changed_leaves_only() {
        let old = spec();
        let new = resized(
            &old,
            0.5,
            256 << 20,
            Rollout {
                monitor: Duration::from_secs(2),
            },
        );
        let changes: Vec<String> = diff(&old, &new).iter().map(|c| c.to_string()).collect();
        assert!(
            changes.contains(
                &"TaskTemplate.Resources.Limits.NanoCPUs: 1000000000 -> 500000000".to_string()
            ),
            "{changes:?}"
        );
        assert!(
            changes.contains(&"UpdateConfig.Order: \"stop-first\" -> \"start-first\"".to_string()),
            "{changes:?}"
        );
        assert!(
            changes.contains(&"RollbackConfig.Parallelism: (unset) -> 1".to_string()),
            "{changes:?}"
        );
        assert!(!changes
            .iter()
            .any(|c| c.starts_with("TaskTemplate.Resources.Limits.MemoryBytes")));
        assert!(!changes.iter().any(|c| c.starts_with("Name")));
        assert!(diff(&old, &old).is_empty());
    }
}
