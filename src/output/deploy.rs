//! Human text for `tuner deploy`: the plan (also what `--dry-run` prints)
//! and `tuner deploy status`.

use std::fmt::Write as _;

use crate::config::units::{format_bytes, format_duration};
use crate::deploy::plan::line_diff;
use crate::deploy::status::StatusReport;
use crate::deploy::Plan;
use crate::runtime::find::short_id as short;
use crate::runtime::limits::trim;

/// The plans of a service with several replicas: one swap each, in turn.
pub fn replicas(plans: &[Plan]) -> String {
    let n = plans.len();
    let mut out = String::new();
    if let Some(first) = plans.first() {
        let _ = writeln!(
            out,
            "Replicas: {} has {n} containers; each is swapped in turn (never fewer than {n} serving); a failure on one swaps the ones done back to {}\n",
            first.service,
            first.old.describe()
        );
    }
    for (k, p) in plans.iter().enumerate() {
        let _ = writeln!(out, "== replica {}/{n}: {} ==", k + 1, p.blue_name);
        out.push_str(&plan(p));
        if k + 1 < n {
            out.push('\n');
        }
    }
    out
}

/// The plan for humans.
pub fn plan(plan: &Plan) -> String {
    let mut out = String::new();
    let project = plan
        .project
        .as_deref()
        .map(|p| format!(", project {p}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Plan: {} {} ({} {}{project}), strategy {}, router {}",
        plan.kind,
        plan.service,
        plan.blue_name,
        short(&plan.blue_id),
        plan.strategy,
        plan.router
    );
    let _ = writeln!(
        out,
        "Limits: {}  ->  {}",
        plan.old.describe(),
        plan.new.describe()
    );
    if let Some(check) = &plan.router_check {
        let _ = writeln!(
            out,
            "Router: {} - preflight OK ({})",
            check.target, check.checked
        );
        for srv in &check.servers {
            let role = if plan.router_blue.as_deref() == Some(srv.name.as_str()) {
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
        if let Some(g) = &plan.router_green {
            let green_at = plan
                .green_address
                .as_deref()
                .unwrap_or("<published address>");
            let _ = writeln!(
                out,
                "  green will be added as server {g} {green_at}, then blue's server {} will point at it",
                plan.router_blue.as_deref().unwrap_or("blue")
            );
        }
    }
    if let Some(probe) = &plan.probe {
        let t = &plan.timings;
        let _ = writeln!(
            out,
            "Health: {probe} (timeout {}, interval {})",
            format_duration(t.health_timeout),
            format_duration(t.health_interval)
        );
    }
    if let Some(green) = &plan.green_name {
        let _ = writeln!(
            out,
            "\nGreen {green} against blue {} ({} fields copied unchanged):",
            plan.blue_name, plan.unchanged_fields
        );
        let mut table = super::table(&["field", "blue", "green"]);
        for c in &plan.spec_changes {
            table.add_row(vec![c.field.clone(), c.blue.clone(), c.green.clone()]);
        }
        let _ = writeln!(out, "{table}");
    }
    let _ = writeln!(out, "\nSteps:");
    for (i, s) in plan.steps.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {:<12} {}", i + 1, s.phase.name(), s.action);
    }
    if let Some(o) = &plan.override_file {
        let _ = writeln!(out, "\nOverride file {}:", o.path);
        let _ = write!(
            out,
            "{}",
            line_diff(o.before.as_deref(), o.after.as_deref())
        );
    }
    if !plan.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:");
        for n in &plan.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

pub fn status(report: &StatusReport) -> String {
    let mut out = String::new();
    if let Some(pid) = &report.in_progress {
        let _ = writeln!(
            out,
            "A deploy of {} is running (PID {pid}); containers may change under it.\n",
            report.service
        );
    }
    if let Some(r) = &report.recovered {
        let _ = writeln!(out, "{r}\n");
    }
    let mut t = super::styled();
    t.set_header(vec![
        "container",
        "id",
        "state",
        "health",
        "cpus",
        "memory",
        "memory+swap",
    ]);
    for c in &report.containers {
        let swap = match c.limits.memory_swap {
            -1 => "unlimited".to_string(),
            0 => "-".to_string(),
            n => format_bytes(n as u64),
        };
        t.add_row(vec![
            c.name.clone(),
            crate::runtime::find::short_id(&c.id).to_string(),
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
        report.service,
        report.containers.len()
    );
    if report.deploys.is_empty() {
        let _ = writeln!(out, "\nNo deploys journaled.");
        return out;
    }
    let mut d = super::styled();
    d.set_header(vec![
        "started (local)",
        "kind",
        "from",
        "to",
        "outcome",
        "seconds",
        "note",
    ]);
    for h in &report.deploys {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::health::Probe;
    use crate::deploy::plan::{OverrideChange, SpecChange, Step, Timings};
    use crate::deploy::record::{DeployRecord, Kind};
    use crate::deploy::Phase;
    use crate::runtime::Limits;
    use std::time::Duration;

    #[test]
    fn render_shows_limits_diff_steps_override_and_notes() {
        use crate::runtime::CpuKnob;
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
        let text = super::plan(&plan);
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
