//! `tuner deploy status SERVICE`: live containers, limits, health and the
//! last deploys.

use std::fmt::Write as _;

use serde::Serialize;

use super::record::History;
use super::recover::Recovered;
use crate::config::units::format_bytes;
use crate::docker::{limits::trim, LiveContainer};

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub service: String,
    /// PID of a deploy of this service running right now.
    pub in_progress: Option<String>,
    pub recovered: Option<Recovered>,
    pub containers: Vec<LiveContainer>,
    pub deploys: Vec<History>,
}

impl StatusReport {
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(pid) = &self.in_progress {
            let _ = writeln!(
                out,
                "A deploy of {} is running (PID {pid}); containers may change under it.\n",
                self.service
            );
        }
        if let Some(r) = &self.recovered {
            let _ = writeln!(out, "{r}\n");
        }
        let mut t = crate::output::styled();
        t.set_header(vec![
            "container",
            "id",
            "state",
            "health",
            "cpus",
            "memory",
            "memory+swap",
        ]);
        for c in &self.containers {
            let swap = match c.limits.memory_swap {
                -1 => "unlimited".to_string(),
                0 => "-".to_string(),
                n => format_bytes(n as u64),
            };
            t.add_row(vec![
                c.name.clone(),
                crate::docker::find::short_id(&c.id).to_string(),
                c.state.clone(),
                c.health.to_string(),
                if c.limits.cpus > 0.0 {
                    trim(c.limits.cpus)
                } else {
                    "-".into()
                },
                if c.limits.memory > 0 {
                    format_bytes(c.limits.memory)
                } else {
                    "-".into()
                },
                swap,
            ]);
        }
        let _ = writeln!(
            out,
            "Service {}: {} container(s)\n{t}",
            self.service,
            self.containers.len()
        );
        if self.deploys.is_empty() {
            let _ = writeln!(out, "\nNo deploys journaled.");
            return out;
        }
        let mut d = crate::output::styled();
        d.set_header(vec![
            "started (local)",
            "kind",
            "from",
            "to",
            "outcome",
            "seconds",
            "note",
        ]);
        for h in &self.deploys {
            let outcome = match (h.outcome, h.failed_phase) {
                (Some(o), Some(p)) => format!(
                    "{} ({p})",
                    serde_json::to_value(o)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
                (Some(o), None) => serde_json::to_value(o)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                (None, _) => format!(
                    "open (last phase {})",
                    h.last_phase
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into())
                ),
            };
            d.add_row(vec![
                h.record
                    .started_at
                    .with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                h.record.kind.to_string(),
                h.record.old.describe(),
                h.record.new.describe(),
                outcome,
                h.duration_secs()
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_default(),
                h.reason.clone().unwrap_or_default(),
            ]);
        }
        let _ = writeln!(out, "\nLast deploys:\n{d}");
        out
    }
}
