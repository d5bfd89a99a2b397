//! Reading what a tuning run left behind: tuning.log (one JSON line per
//! sample) and the journal (tune's and deploy's entries). Both are read
//! loosely, field by field, so a report can still be drawn from a journal
//! written by an older tuner; a line that is not JSON is skipped.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::gate::GateError;

#[derive(Debug, Clone, PartialEq)]
pub struct LogSample {
    pub at: DateTime<Utc>,
    pub change_id: String,
    /// `measure`, `before`, `observe`.
    pub phase: String,
    pub values: BTreeMap<String, f64>,
    /// Transactions counted since the window began, when read.
    pub transactions: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Change {
    pub id: String,
    pub lever: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub applied_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub verdict: Option<String>,
    pub kept: Option<bool>,
    pub reason: Option<String>,
    pub reverted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    pub id: String,
    pub service: String,
    pub kind: String,
    pub old: String,
    pub new: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `tuning.log`: a missing file is the user's to fix, named with the key
/// that points at it.
pub fn read_tuning_log(path: &Path) -> Result<Vec<LogSample>, GateError> {
    let body = match std::fs::read_to_string(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(GateError::Usage(format!(
                "tuning log {} not found: run `tuner tune` first, or point paths.tuning_log (or --tuning-log) at it",
                path.display()
            )))
        }
        Err(e) => return Err(GateError::read(path, e)),
    };
    let mut out = Vec::new();
    for line in body.lines() {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(at) = map.get("timestamp").and_then(time) else {
            continue;
        };
        let mut values = BTreeMap::new();
        let mut transactions = None;
        for (k, v) in &map {
            match k.as_str() {
                "timestamp" | "change_id" | "phase" => {}
                "transactions_since_checkpoint" | "transactions_since_window_start" => {
                    transactions = v.as_u64()
                }
                _ => {
                    if let Some(f) = v.as_f64() {
                        values.insert(k.clone(), f);
                    }
                }
            }
        }
        out.push(LogSample {
            at,
            change_id: map.get("change_id").and_then(text).unwrap_or_default(),
            phase: map.get("phase").and_then(text).unwrap_or_default(),
            values,
            transactions,
        });
    }
    if out.is_empty() {
        return Err(GateError::input(
            path,
            "holds no samples (one JSON object per line with a `timestamp`)",
        ));
    }
    out.sort_by_key(|s| s.at);
    Ok(out)
}

fn limits(v: &Value) -> String {
    let cpus = v["cpus"].as_f64();
    let mem = v["memory"].as_u64();
    match (cpus, mem) {
        (Some(c), Some(m)) => format!("{c} CPU, {}", crate::config::units::format_bytes(m)),
        _ => text(v).unwrap_or_default(),
    }
}

/// The journal's changes and deploys, in the order they happened. A
/// missing journal is an empty one.
pub fn read_journal(path: &Path) -> Result<(Vec<Change>, Vec<Deploy>), GateError> {
    let body = match std::fs::read_to_string(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(GateError::read(path, e)),
    };
    let mut changes: Vec<Change> = Vec::new();
    let mut deploys: Vec<Deploy> = Vec::new();
    for line in body.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match (v["module"].as_str(), v["event"].as_str()) {
            (Some("tune"), Some(event)) => {
                let Some(id) = v["change_id"].as_str() else {
                    continue;
                };
                let i = match changes.iter().position(|c| c.id == id) {
                    Some(i) => i,
                    None => {
                        changes.push(Change {
                            id: id.to_string(),
                            ..Change::default()
                        });
                        changes.len() - 1
                    }
                };
                let c = &mut changes[i];
                let at = time(&v["at"]);
                match (event, v["action"].as_str()) {
                    ("intent", Some("apply")) => {
                        c.lever = text(&v["lever"]["name"]).unwrap_or_default();
                        c.from = text(&v["mv"]["from"]);
                        c.to = text(&v["mv"]["to"]);
                        c.applied_at = at;
                    }
                    ("outcome", Some("revert")) if v["ok"].as_bool() == Some(true) => {
                        c.reverted_at = at;
                    }
                    ("decision", _) => {
                        c.verdict = text(&v["verdict"]);
                        c.kept = v["kept"].as_bool();
                        c.reason = text(&v["reason"]);
                        c.decided_at = at;
                    }
                    _ => {}
                }
            }
            (Some("deploy"), Some("started")) => {
                let r = &v["record"];
                let Some(started_at) = time(&r["started_at"]) else {
                    continue;
                };
                deploys.push(Deploy {
                    id: text(&r["id"]).unwrap_or_default(),
                    service: text(&r["service"]).unwrap_or_default(),
                    kind: text(&r["kind"]).unwrap_or_default(),
                    old: limits(&r["old"]),
                    new: limits(&r["new"]),
                    started_at,
                    finished_at: None,
                    outcome: None,
                    reason: None,
                });
            }
            (Some("deploy"), Some("finished")) => {
                let id = v["id"].as_str().unwrap_or_default();
                if let Some(d) = deploys.iter_mut().rev().find(|d| d.id == id) {
                    d.finished_at = time(&v["at"]);
                    d.outcome = text(&v["outcome"]);
                    d.reason = text(&v["reason"]);
                }
            }
            _ => {}
        }
    }
    changes.retain(|c| !c.lever.is_empty() || c.decided_at.is_some());
    Ok((changes, deploys))
}
