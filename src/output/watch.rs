//! Human text for `tuner watch`: one table per check; and the JSON lines
//! of `--output json`, one per decision and one per check.

use comfy_table::Cell;

use crate::runtime::limits::trim;
use crate::watch::apply::{bytes, Applied};
use crate::watch::cycle::{describe, CheckReport};

pub fn check(report: &CheckReport) -> String {
    let mut t = super::table(&[
        "service",
        "cpu used / limit",
        "memory used / limit",
        "decision",
    ]);
    for row in &report.rows {
        let (cpu, mem) = match &row.reading {
            Some(r) => (
                format!(
                    "{} / {}{}",
                    r.cpu_used
                        .map(|c| format!("{c:.2}"))
                        .unwrap_or_else(|| "-".into()),
                    if r.cpu_limit > 0.0 {
                        trim(r.cpu_limit)
                    } else {
                        "-".into()
                    },
                    r.cpu_share()
                        .map(|s| format!(" ({:.0}%)", s * 100.0))
                        .unwrap_or_default()
                ),
                format!(
                    "{} / {}{}",
                    bytes(r.memory_used),
                    bytes(r.memory_limit),
                    r.memory_share()
                        .map(|s| format!(" ({:.0}%)", s * 100.0))
                        .unwrap_or_default()
                ),
            ),
            None => ("-".into(), "-".into()),
        };
        let mut decision = match &row.decision {
            Some(d) => describe(d, row.applied.as_ref()),
            None => String::new(),
        };
        if let Some(Applied::Done { id, .. }) = &row.applied {
            decision.push_str(&format!(" [{id}]"));
        }
        if let Some(e) = &row.error {
            if !decision.is_empty() {
                decision.push_str("; ");
            }
            decision.push_str(e);
        }
        t.add_row(vec![
            Cell::new(&row.service),
            Cell::new(cpu),
            Cell::new(mem),
            Cell::new(decision),
        ]);
    }
    let title = format!(
        "Check at {} via {} ({:.0} ms){}",
        report.at.with_timezone(&chrono::Local).format("%H:%M:%S"),
        report.source,
        report.seconds * 1000.0,
        if report.dry_run {
            ", dry run: nothing changed"
        } else {
            ""
        }
    );
    if report.rows.is_empty() {
        return format!("{title}\nNo containers to watch: set watch.services or compose.project.");
    }
    format!("{title}\n{t}")
}

/// `value` as one JSON line tagged `"event": event`, stamped with the time
/// it is written when it has no `at` of its own.
pub fn json_line(event: &str, value: &impl serde::Serialize) -> serde_json::Result<String> {
    let mut line = serde_json::json!({ "event": event, "at": chrono::Utc::now().to_rfc3339() });
    if let (Some(map), serde_json::Value::Object(fields)) =
        (line.as_object_mut(), serde_json::to_value(value)?)
    {
        map.extend(fields);
    }
    serde_json::to_string(&line)
}
