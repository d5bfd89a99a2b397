//! The override file `resources` would write: every planned service's
//! limits and reservations merged into what is there (keys tune and deploy
//! wrote, other services, are kept), with the sizing keys it would change.
//! A key already set to another value is a conflict: the caller refuses it
//! without `--force`.

use std::path::PathBuf;

use serde::Serialize;

use super::allocate::Allocation;
use crate::config::units;
use crate::config::yaml::Value;
use crate::runtime::compose_override::{ServiceLimits, ServiceReservations};
use crate::runtime::{OverrideError, OverrideFile};

/// The sizing keys of a service, as paths under it.
const KEYS: [&[&str]; 8] = [
    &["cpus"],
    &["mem_limit"],
    &["memswap_limit"],
    &["mem_reservation"],
    &["deploy", "resources", "limits", "cpus"],
    &["deploy", "resources", "limits", "memory"],
    &["deploy", "resources", "reservations", "cpus"],
    &["deploy", "resources", "reservations", "memory"],
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyChange {
    pub service: String,
    pub key: String,
    pub before: Option<String>,
    pub after: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverridePlan {
    pub path: PathBuf,
    #[serde(skip)]
    pub before: Option<String>,
    #[serde(skip)]
    pub after: String,
    /// Keys set where there were none, or changed.
    pub changes: Vec<KeyChange>,
    /// Changes of a value someone set before (tune, deploy, a person).
    pub conflicts: Vec<KeyChange>,
}

impl OverridePlan {
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Builds the new override text for `alloc`; reads, never writes.
pub fn plan(file: &OverrideFile, alloc: &Allocation) -> Result<OverridePlan, OverrideError> {
    let before = file.read()?;
    let mut text = before.clone();
    for s in &alloc.services {
        let limits = ServiceLimits {
            cpus: s.cpus,
            memory: s.memory,
            // No swap beyond the limit: what the demo and deploy write.
            memory_swap: s.memory as i64,
        };
        let reservations = ServiceReservations {
            cpus: s.cpu_reservation,
            memory: s.memory_reservation,
        };
        text = Some(file.with_sizes(text.as_deref(), &s.service, limits, reservations)?);
    }
    let after = text.unwrap_or_default();
    let parse = |t: &str| -> Result<Value, OverrideError> {
        crate::config::yaml::from_str(t).map_err(|e| OverrideError::Parse {
            path: file.path.clone(),
            reason: e.to_string(),
        })
    };
    let old = match before.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(t) => parse(t)?,
        None => Value::Null,
    };
    let new = parse(&after)?;
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    for s in &alloc.services {
        for key in KEYS {
            let path: Vec<&str> = [&["services", s.service.as_str()][..], key].concat();
            let (Some(n), o) = (dig(&new, &path), dig(&old, &path)) else {
                continue;
            };
            if o.is_some_and(|o| same(o, n)) {
                continue;
            }
            let change = KeyChange {
                service: s.service.clone(),
                key: key.join("."),
                before: o.map(show),
                after: show(n),
            };
            if o.is_some() {
                conflicts.push(change.clone());
            }
            changes.push(change);
        }
    }
    Ok(OverridePlan {
        path: file.path.clone(),
        before,
        after,
        changes,
        conflicts,
    })
}

fn dig<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => crate::config::yaml::to_string(other)
            .map(|t| t.trim().to_string())
            .unwrap_or_default(),
    }
}

/// Equal as sizes: `1g` = `1024m`, `1` = `1.0` = `"1"`.
fn same(a: &Value, b: &Value) -> bool {
    let (a, b) = (show(a), show(b));
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => return (x - y).abs() < 1e-9,
        (Err(_), Err(_)) | (Ok(_), Err(_)) | (Err(_), Ok(_)) => {}
    }
    matches!((units::parse_bytes(&a), units::parse_bytes(&b)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_compare_by_value() {
        let s = |t: &str| Value::String(t.into());
        assert!(same(&s("1g"), &s("1024m")));
        assert!(same(&Value::Number(1.into()), &s("1.0")));
        assert!(!same(&s("512m"), &s("1g")));
        assert!(!same(&Value::Number((-1).into()), &s("1g")));
    }
}
