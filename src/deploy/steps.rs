//! The steps a plan shows, phase by phase: what `--dry-run` prints and the
//! real run does.

use super::health::Probe;
use super::plan::Step;
use super::prepare::Request;
use super::record::DeployRecord;
use super::Phase;
use crate::config::deploy::AnalysisConfig;
use crate::config::units::format_duration;
use crate::runtime::{CloneSpec, Container};

/// The promotion gate's step, after the switch: green serves beside blue
/// while its checks are measured.
pub fn add_gate(steps: &mut Vec<Step>, gate: &AnalysisConfig) {
    let checks: Vec<String> = gate
        .checks
        .iter()
        .map(|c| format!("{} {}", c.name, super::analysis::bound(c)))
        .collect();
    let at = steps
        .iter()
        .position(|s| s.phase == Phase::Switch)
        .map_or(steps.len(), |i| i + 1);
    steps.insert(
        at,
        Step {
            phase: Phase::Analysis,
            action: format!(
                "promotion gate: measure {} {} time(s), {} apart (failure_limit {}, error_limit {}); a failure, no data or no Prometheus removes green and keeps blue",
                checks.join(", "),
                gate.count,
                format_duration(gate.interval),
                gate.failure_limit,
                gate.error_limit
            ),
        },
    );
}

pub fn swap_steps(
    r: &DeployRecord,
    req: &Request,
    probe: Option<&Probe>,
    green: Option<&CloneSpec>,
    blue: &Container,
) -> Vec<Step> {
    let t = &req.timings;
    let nets = green
        .map(|g| g.extra_networks.join(", "))
        .unwrap_or_default();
    let stop_timeout = blue
        .stop_timeout
        .map(|s| format!("{s}s"))
        .unwrap_or_else(|| "10s".into());
    let signal = blue.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into());
    let router = req.router_kind;
    let mut steps = vec![
        Step {
            phase: Phase::Prepare,
            action: format!(
                "journal the deploy; blue {} has {}",
                r.blue_name,
                r.old.describe()
            ),
        },
        Step {
            phase: Phase::CreateGreen,
            action: format!(
                "create {} with {}{}, then start it",
                r.green_name,
                r.new.describe(),
                if nets.is_empty() {
                    String::new()
                } else {
                    format!(", connect networks {nets}")
                }
            ),
        },
        Step {
            phase: Phase::Health,
            action: format!(
                "{}{}",
                if router == "none" {
                    String::new()
                } else {
                    format!("router {router}: register green as {} at weight 0 (no traffic) with health checks on; ", r.router_green.as_deref().unwrap_or("green"))
                },
                match probe {
                    Some(Probe::Docker) => format!(
                        "run green's own healthcheck in it every {} until it passes, or Docker reports green healthy (up to {})",
                        format_duration(super::health::EXEC_INTERVAL),
                        format_duration(t.health_timeout)
                    ),
                    Some(p) => format!(
                        "probe {p} every {} (up to {})",
                        format_duration(t.health_interval),
                        format_duration(t.health_timeout)
                    ),
                    None => String::new(),
                }
            ),
        },
        Step {
            phase: Phase::Switch,
            action: if router == "none" {
                "router none: nothing to switch, green already answers under the service's aliases"
                    .into()
            } else {
                format!("router {router}: wait until its own check passes on green, then give green traffic")
            },
        },
        Step {
            phase: Phase::Drain,
            action: if router == "none" {
                "router none: nothing to drain; blue finishes in-flight requests on its stop signal"
                    .into()
            } else {
                format!("router {router}: stop new traffic to blue, wait up to {} for in-flight requests", format_duration(t.drain))
            },
        },
        Step {
            phase: Phase::StopBlue,
            action: if router == "none" {
                format!(
                    "check green still serves, then stop {} with {signal}, SIGKILL after {stop_timeout}",
                    r.blue_name
                )
            } else {
                format!(
                    "check green still serves, then remove {} at once (`rm -f`): drained and in maintenance, it has no request left",
                    r.blue_name
                )
            },
        },
        Step {
            phase: Phase::RemoveBlue,
            action: if router == "none" {
                format!("remove {}", r.blue_name)
            } else {
                format!(
                    "router {router} points blue's server {} at green and deletes the standby {}, then saves its state for reloads",
                    r.router_blue.as_deref().unwrap_or("blue"),
                    r.router_green.as_deref().unwrap_or("green")
                )
            },
        },
        Step {
            phase: Phase::Rename,
            action: format!("rename {} to {}", r.green_name, r.blue_name),
        },
    ];
    steps.push(Step {
        phase: Phase::Persist,
        action: match &r.override_path {
            Some(p) => format!("write {} atomically", p.display()),
            None => "no Compose project: nothing to write".into(),
        },
    });
    steps.push(Step {
        phase: Phase::Verify,
        action: format!(
            "read the limits of {} back: expect {}",
            r.blue_name,
            r.new.describe()
        ),
    });
    steps
}

pub fn in_place_steps(r: &DeployRecord) -> Vec<Step> {
    vec![
        Step { phase: Phase::Prepare, action: format!("journal the update; {} has {}", r.blue_name, r.old.describe()) },
        Step {
            phase: Phase::LiveUpdate,
            action: format!("check memory usage (refuse below usage plus margin), then live update to {} (Memory and MemorySwap together), no restart", r.new.describe()),
        },
        Step {
            phase: Phase::Persist,
            action: match &r.override_path {
                Some(p) => format!("write {} atomically (the next `docker-compose up -d` recreates the service with these limits)", p.display()),
                None => "no Compose project: nothing to write".into(),
            },
        },
        Step { phase: Phase::Verify, action: format!("read the limits back: expect {}", r.new.describe()) },
    ]
}
