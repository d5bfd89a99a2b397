//! Human text for `tuner deploy` on a Swarm service: the plan with the
//! exact spec diff (what `--dry-run` prints), the result, and the tasks
//! per node for `tuner deploy status`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::deploy::record::History;
use crate::deploy::swarm::{SwarmPlan, SwarmReport};
use crate::runtime::find::short_id;
use crate::runtime::swarm::{Service, Task};

pub fn plan(plan: &SwarmPlan) -> String {
    let r = &plan.record;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan: {} {} (Swarm service {}, version {}{})",
        r.kind,
        r.service,
        short_id(&plan.service_id),
        plan.version,
        plan.replicas
            .map(|n| format!(", {n} replicas"))
            .unwrap_or_else(|| ", global".into())
    );
    let _ = writeln!(
        out,
        "Limits: {}  ->  {}",
        r.old.describe(),
        r.new.describe()
    );
    if plan.rollback {
        let _ = writeln!(
            out,
            "Request: service update with rollback=previous at version {}",
            plan.version
        );
    } else {
        let _ = writeln!(
            out,
            "Spec changes (service update at version {}, the rest of the spec unchanged):",
            plan.version
        );
        for c in &plan.changes {
            let _ = writeln!(out, "  {c}");
        }
    }
    for n in &plan.notes {
        let _ = writeln!(out, "Note: {n}");
    }
    out.trim_end().to_string()
}

pub fn report(report: &SwarmReport, rollback: bool) -> String {
    let mut out = format!(
        "{} {}: {} (was {}) on {} task{} in {:.1}s",
        if rollback { "Rolled back" } else { "Deployed" },
        report.service,
        report.read_back.describe(),
        report.old.describe(),
        report.tasks.len(),
        if report.tasks.len() == 1 { "" } else { "s" },
        report.seconds
    );
    out.push('\n');
    out.push_str(&tasks(&report.service, &report.tasks));
    out
}

/// Tasks grouped by node.
pub fn tasks(service: &str, tasks: &[Task]) -> String {
    let mut t = super::table(&[
        "node",
        "task",
        "state",
        "desired",
        "limits",
        "container",
        "message",
    ]);
    let mut sorted: Vec<&Task> = tasks.iter().collect();
    sorted.sort_by(|a, b| (&a.node, a.slot, &a.desired).cmp(&(&b.node, b.slot, &b.desired)));
    for task in sorted {
        t.add_row(vec![
            task.node.clone(),
            task.label(service),
            task.state.clone(),
            task.desired.clone(),
            task.limits.describe(),
            task.container_id
                .as_deref()
                .map(short_id)
                .unwrap_or("-")
                .to_string(),
            task.error.clone().unwrap_or_else(|| task.message.clone()),
        ]);
    }
    t.to_string()
}

#[derive(Debug, Serialize)]
pub struct SwarmStatus {
    pub engine: &'static str,
    pub service: Service,
    pub recovered: Option<String>,
    pub in_progress: Option<String>,
    pub tasks: Vec<Task>,
    pub deploys: Vec<History>,
}

pub fn status(s: &SwarmStatus) -> String {
    let mut out = String::new();
    let running = s.tasks.iter().filter(|t| t.serving()).count();
    let _ = writeln!(
        out,
        "{} (Swarm service {}, version {}): {}, {running} task{} running{}",
        s.service.name,
        short_id(&s.service.id),
        s.service.version,
        s.service.limits().describe(),
        if running == 1 { "" } else { "s" },
        crate::runtime::swarm::spec::replicas(&s.service.spec)
            .map(|n| format!(" of {n}"))
            .unwrap_or_default()
    );
    if let Some(u) = &s.service.update {
        let _ = writeln!(out, "Last update: {:?} {}", u.state, u.message);
    }
    if let Some(pid) = &s.in_progress {
        let _ = writeln!(out, "A deploy is running ({pid})");
    }
    if let Some(r) = &s.recovered {
        let _ = writeln!(out, "Recovered: {r}");
    }
    out.push_str(&tasks(&s.service.name, &s.tasks));
    if !s.deploys.is_empty() {
        let mut t = super::table(&["deploy", "kind", "limits", "outcome"]);
        for h in &s.deploys {
            t.add_row(vec![
                h.record.id.clone(),
                h.record.kind.to_string(),
                format!("{} -> {}", h.record.old.describe(), h.record.new.describe()),
                match (h.outcome, &h.reason) {
                    (Some(o), Some(r)) => format!("{o:?}: {r}"),
                    (Some(o), None) => format!("{o:?}"),
                    (None, _) => "open".into(),
                },
            ]);
        }
        let _ = write!(out, "\n{t}");
    }
    out
}
