//! Builds the plan from live state: find blue, check it may be cloned,
//! choose the health probe, compute green's spec, the override text and the
//! Compose config hash. Reads only; changes nothing.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::Utc;

use super::health::{self, Probe};
use super::plan::{spec_diff, OverrideChange, Plan, Step, Timings};
use super::record::{new_id, DeployRecord, Kind, DEPLOY_ID_LABEL};
use super::router::{Preflight, Router};
use super::routing::{self, SERVER_LABEL};
use super::{policy, DeployError, Phase, Target};
use crate::config::deploy::DeployConfig;
use crate::config::units::format_duration;
use crate::runtime::compose_hash::config_hash;
use crate::runtime::compose_override::ServiceLimits;
use crate::runtime::find::{
    COMPOSE_CONFIG_FILES, COMPOSE_CONFIG_HASH, COMPOSE_PROJECT, COMPOSE_SERVICE,
    COMPOSE_WORKING_DIR,
};
use crate::runtime::{clone, current_spec, green_spec, DockerClient, OverrideFile, ServiceQuery};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    BlueGreen,
    InPlace,
}

/// What the user asked for, already parsed.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: Kind,
    pub query: ServiceQuery,
    pub target: Target,
    /// For a rollback: the override text to restore (`Some(None)`: no file).
    pub override_text: Option<Option<String>>,
    pub strategy: Strategy,
    pub timings: Timings,
    pub health_path: Option<String>,
    pub health_port: Option<u16>,
    pub router_kind: &'static str,
    pub router_server: Option<String>,
}

pub async fn build(
    docker: &DockerClient,
    req: &Request,
    config: &DeployConfig,
    router: &dyn Router,
) -> Result<Plan, DeployError> {
    let found = docker.find_one(&req.query).await?;
    let blue = docker.inspect(&found.id).await?;
    let labels = blue
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let service = labels
        .get(COMPOSE_SERVICE)
        .cloned()
        .unwrap_or_else(|| found.name.clone());
    let project = labels.get(COMPOSE_PROJECT).cloned();
    req.target.check_host(docker.host_cpus().await?)?;

    let old =
        crate::runtime::Limits::from_host_config(&blue.host_config.clone().unwrap_or_default());
    let new = old.resized(req.target.cpus, req.target.memory);
    let id = new_id();
    let mut notes = Vec::new();

    let compose_dir = labels.get(COMPOSE_WORKING_DIR).map(PathBuf::from);
    let override_file = compose_dir.as_deref().map(OverrideFile::in_dir);
    let (before, after) = match &override_file {
        Some(file) => {
            let before = file.read()?;
            let after = match &req.override_text {
                Some(text) => text.clone(),
                None => Some(file.with_limits(
                    &service,
                    ServiceLimits {
                        cpus: new.cpus,
                        memory: new.memory,
                        memory_swap: new.memory_swap,
                    },
                )?),
            };
            (before, after)
        }
        None => {
            notes.push(format!("{} has no Compose labels: no override file is written, and a recreate by other tools will not keep the new limits", found.name));
            (None, None)
        }
    };

    // The router is checked before anything changes; a swap it cannot do
    // fails here, with nothing touched.
    let router_check = if req.strategy == Strategy::BlueGreen {
        router.preflight().await?
    } else {
        None
    };
    let blue_address = routing::address(&blue);
    let router_blue = match &router_check {
        Some(check) => blue_server(
            check,
            labels.get(SERVER_LABEL).map(String::as_str),
            req.router_server.as_deref(),
            &blue_address,
            &found.name,
        )?,
        None => labels
            .get(SERVER_LABEL)
            .cloned()
            .or_else(|| req.router_server.clone())
            .unwrap_or_else(|| service.clone()),
    };
    let router_green = format!(
        "{service}_{}",
        id.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase()
    );
    let green_name = format!("{}_tuner_green", found.name);

    let mut probe: Option<Probe> = None;
    let mut green = None;
    let mut spec_changes = Vec::new();
    let mut unchanged = 0;
    if req.strategy == Strategy::BlueGreen {
        let live = crate::runtime::LiveContainer::from_inspect(&blue);
        if !live.running {
            return Err(DeployError::NotRunning {
                container: found.name.clone(),
                state: live.state,
            });
        }
        policy::check_clonable(&service, &blue, config)?;
        probe = Some(
            health::choose(&blue, req.health_path.as_deref(), req.health_port).ok_or_else(
                || DeployError::NoHealthProbe {
                    container: found.name.clone(),
                },
            )?,
        );
        let extra = HashMap::from([
            (DEPLOY_ID_LABEL.to_string(), id.clone()),
            (SERVER_LABEL.to_string(), router_green.clone()),
        ]);
        let draft = green_spec(&blue, &new, &extra, None);
        let hash = match (&compose_dir, &project) {
            (Some(dir), Some(project)) if draft.moved_ports.is_empty() => {
                let files: Vec<String> = labels
                    .get(COMPOSE_CONFIG_FILES)
                    .map(|f| f.split(',').map(str::to_string).collect())
                    .unwrap_or_default();
                match config_hash(dir, project, &files, &service, after.as_deref()) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        notes.push(format!("green keeps blue's Compose config hash ({e}); the next `docker-compose up -d` recreates the service from the files, with the new limits"));
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                notes.push(format!(
                    "blue publishes fixed host ports ({}); green gets random 127.0.0.1 ports and keeps blue's Compose config hash, so the next `docker-compose up -d` recreates the service with the new limits on its fixed ports",
                    draft.moved_ports.join(", ")
                ));
                None
            }
            _ => {
                if !draft.moved_ports.is_empty() {
                    notes.push(format!("blue publishes fixed host ports ({}); green is published on free 127.0.0.1 ports instead", draft.moved_ports.join(", ")));
                }
                None
            }
        };
        let spec = match &hash {
            Some(h) => green_spec(&blue, &new, &extra, Some(h)),
            None => draft,
        };
        if let Some(h) = &hash {
            if labels.get(COMPOSE_CONFIG_HASH) != Some(h) {
                notes.push("green carries the config hash of the updated Compose files, so `docker-compose up -d` sees it as up to date".into());
            }
        }
        (spec_changes, unchanged) = spec_diff(&current_spec(&blue), &clone::whole(&spec));
        green = Some(spec);
        if project.is_some() {
            notes.push("do not run docker-compose for this project during the swap: while blue and green coexist it may remove the new container".into());
        }
        if req.router_kind == "none" {
            notes.push("router none: green answers under the service's network aliases as soon as it starts; blue keeps serving until green is healthy".into());
        }
    }
    let green_address = green.as_ref().and_then(planned_address);
    if let Some(check) = &router_check {
        let green_at = green_address
            .clone()
            .unwrap_or_else(|| "<green's address>".to_string());
        notes.push(format!(
            "{}: servers added at runtime vanish when HAProxy reloads or restarts, and its config still names blue ({router_blue} {blue_address}): after the swap, replace blue's `server` line in haproxy.cfg with `server {router_green} {green_at} check` (a server-state-file only restores servers that haproxy.cfg defines, so it cannot keep green)",
            check.target
        ));
        if green_address.is_none() {
            notes.push(format!(
                "blue publishes no fixed host port: HAProxy reaches green at {}",
                "its first published port, else its container IP and first exposed port"
            ));
        }
    }

    let record = DeployRecord {
        id,
        kind: req.kind,
        service: service.clone(),
        project: project.clone(),
        blue_id: found.id.clone(),
        blue_name: found.name.clone(),
        green_name: green_name.clone(),
        old,
        new,
        override_path: override_file.as_ref().map(|f| f.path.clone()),
        override_before: before.clone(),
        override_after: after.clone(),
        router_blue: Some(router_blue.clone()),
        router_green: Some(router_green.clone()),
        started_at: Utc::now(),
    };
    let steps = match req.strategy {
        Strategy::BlueGreen => swap_steps(&record, req, probe.as_ref(), green.as_ref(), &blue),
        Strategy::InPlace => in_place_steps(&record),
    };
    Ok(Plan {
        kind: req.kind,
        strategy: match req.strategy {
            Strategy::BlueGreen => "blue-green",
            Strategy::InPlace => "in-place",
        },
        service,
        project,
        blue_id: found.id,
        blue_name: found.name,
        green_name: (req.strategy == Strategy::BlueGreen).then_some(green_name),
        old,
        new,
        router: req.router_kind.to_string(),
        router_check,
        router_blue: (req.strategy == Strategy::BlueGreen && req.router_kind != "none")
            .then_some(router_blue),
        router_green: (req.strategy == Strategy::BlueGreen && req.router_kind != "none")
            .then_some(router_green),
        green_address,
        probe,
        timings: req.timings,
        spec_changes,
        unchanged_fields: unchanged,
        steps,
        override_file: override_file.map(|f| OverrideChange {
            path: f.path.display().to_string(),
            before,
            after,
        }),
        notes,
        record,
        green,
    })
}

/// Which server of the router's backend is blue: the name a previous deploy
/// labelled it with, else `deploy.router.server`, else the server whose
/// address is blue's published address. A name that is not in the backend
/// (a reload dropped it, or the config names another service) is skipped.
fn blue_server(
    check: &Preflight,
    label: Option<&str>,
    configured: Option<&str>,
    address: &str,
    container: &str,
) -> Result<String, DeployError> {
    let has = |name: &str| check.servers.iter().any(|s| s.name == name);
    if let Some(name) = label.filter(|n| has(n)) {
        return Ok(name.to_string());
    }
    if let Some(name) = configured.filter(|n| has(n)) {
        return Ok(name.to_string());
    }
    let by_address: Vec<&str> = check
        .servers
        .iter()
        .filter(|s| s.address == address)
        .map(|s| s.name.as_str())
        .collect();
    if let [one] = by_address.as_slice() {
        return Ok(one.to_string());
    }
    let servers = check
        .servers
        .iter()
        .map(|s| format!("{} {}", s.name, s.address))
        .collect::<Vec<_>>()
        .join(", ");
    let tried = [
        label.map(|l| format!("label {SERVER_LABEL}={l}")),
        configured.map(|c| format!("deploy.router.server {c}")),
        Some(format!("address {address}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    Err(DeployError::RouterBlue {
        container: container.to_string(),
        target: check.target.clone(),
        reason: if by_address.len() > 1 {
            format!(
                "several servers have blue's address {address} ({})",
                by_address.join(", ")
            )
        } else {
            format!("no server matches ({tried}); servers: [{servers}]")
        },
    })
}

/// `127.0.0.1:<port>` when the spec publishes a fixed host port (green's
/// ports are chosen at plan time), for the plan.
fn planned_address(spec: &crate::runtime::GreenSpec) -> Option<String> {
    let bindings = spec.body.host_config.as_ref()?.port_bindings.as_ref()?;
    let mut keys: Vec<&String> = bindings.keys().collect();
    keys.sort();
    keys.into_iter().find_map(|k| {
        bindings.get(k)?.as_ref()?.iter().find_map(|b| {
            let port = b
                .host_port
                .as_deref()
                .filter(|p| !p.is_empty() && *p != "0")?;
            let ip = b
                .host_ip
                .as_deref()
                .filter(|i| !i.is_empty() && *i != "0.0.0.0")
                .unwrap_or("127.0.0.1");
            Some(format!("{ip}:{port}"))
        })
    })
}

fn swap_steps(
    r: &DeployRecord,
    req: &Request,
    probe: Option<&Probe>,
    green: Option<&crate::runtime::GreenSpec>,
    blue: &bollard::models::ContainerInspectResponse,
) -> Vec<Step> {
    let t = &req.timings;
    let nets = green
        .map(|g| {
            g.extra_networks
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let stop_timeout = blue
        .config
        .as_ref()
        .and_then(|c| c.stop_timeout)
        .map(|s| format!("{s}s"))
        .unwrap_or_else(|| "10s".into());
    let signal = blue
        .config
        .as_ref()
        .and_then(|c| c.stop_signal.clone())
        .unwrap_or_else(|| "SIGTERM".into());
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
                        "wait until Docker reports green healthy (up to {})",
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
                    "router {router} deletes blue's server {}",
                    r.router_blue.as_deref().unwrap_or("blue")
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

fn in_place_steps(r: &DeployRecord) -> Vec<Step> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::router::ServerView;

    fn check(servers: &[(&str, &str)]) -> Preflight {
        Preflight {
            target: "haproxy backend app via /s".into(),
            checked: String::new(),
            servers: servers
                .iter()
                .map(|(name, address)| ServerView {
                    name: name.to_string(),
                    address: address.to_string(),
                    state: "UP".into(),
                    weight: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn blue_server_prefers_label_then_config_then_address() {
        let c = check(&[("web0", "127.0.0.1:27001"), ("web_x", "127.0.0.1:27002")]);
        let pick = |label, configured, addr| blue_server(&c, label, configured, addr, "web-1");
        assert_eq!(
            pick(Some("web_x"), Some("web0"), "127.0.0.1:27001").unwrap(),
            "web_x"
        );
        assert_eq!(pick(None, Some("web0"), "127.0.0.1:27002").unwrap(), "web0");
        // A stale label (a reload dropped that server) falls back to the address.
        assert_eq!(
            pick(Some("gone"), None, "127.0.0.1:27002").unwrap(),
            "web_x"
        );
        let err = pick(Some("gone"), Some("nope"), "127.0.0.1:9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("label tuner.router.server=gone"), "{err}");
        assert!(err.contains("deploy.router.server nope"), "{err}");
        assert!(err.contains("address 127.0.0.1:9"), "{err}");
        assert!(
            err.contains("web0 127.0.0.1:27001, web_x 127.0.0.1:27002"),
            "{err}"
        );
        let twice = check(&[("a", "127.0.0.1:1"), ("b", "127.0.0.1:1")]);
        let err = blue_server(&twice, None, None, "127.0.0.1:1", "web-1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("several servers"), "{err}");
    }
}
