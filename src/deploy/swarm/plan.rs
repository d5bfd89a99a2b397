//! The plan of a Swarm update: the exact spec tuner will write, its diff
//! from the live one, and every refusal made before anything changes.

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use crate::config::deploy::DeployConfig;
use crate::deploy::policy::ROLE_LABEL;
use crate::deploy::record::{new_id, DeployRecord, Kind};
use crate::deploy::{DeployError, Target};
use crate::runtime::swarm::spec::{self, Change, Rollout};
use crate::runtime::swarm::{Service, Swarm};
use crate::runtime::Limits;

/// The least and the most Swarm watches each new task before the next.
const MONITOR_MIN: Duration = Duration::from_secs(2);
const MONITOR_MAX: Duration = Duration::from_secs(30);

/// What was asked of a Swarm service.
#[derive(Debug, Clone)]
pub enum Ask {
    /// New limits.
    Resize(Target),
    /// Swarm's own rollback to the previous spec; the journal's last
    /// update says which limits that spec had.
    Rollback { previous: Option<Limits> },
}

#[derive(Debug, Clone, Serialize)]
pub struct SwarmPlan {
    pub engine: &'static str,
    pub record: DeployRecord,
    pub service_id: String,
    /// The version index the update quotes.
    pub version: u64,
    pub replicas: Option<u64>,
    pub rollback: bool,
    /// Field by field, what the update writes (empty for a rollback: Swarm
    /// restores its stored previous spec).
    pub changes: Vec<Change>,
    pub monitor_secs: f64,
    pub notes: Vec<String>,
    /// Update status when read, so the follower tells ours from the last.
    #[serde(skip)]
    pub update_started_before: Option<String>,
    #[serde(skip)]
    pub spec: serde_json::Value,
}

impl SwarmPlan {
    pub fn nothing_to_do(&self) -> bool {
        !self.rollback && self.record.old.same_size(&self.record.new)
    }
}

/// Validates and builds the plan from the live service (reads only).
pub async fn build(
    swarm: &dyn Swarm,
    service: &Service,
    ask: &Ask,
    config: &DeployConfig,
) -> Result<SwarmPlan, DeployError> {
    check_stateless(service, config)?;
    let old = service.limits();
    let monitor = spec::healthcheck_window(&service.spec)
        .unwrap_or(MONITOR_MIN)
        .clamp(MONITOR_MIN, MONITOR_MAX);
    let mut notes = Vec::new();
    let (new, new_spec, rollback) = match ask {
        Ask::Resize(target) => {
            let host = swarm.max_node_cpus().await?;
            if host > 0.0 {
                target.check_host(host.floor() as i64)?;
            }
            check_healthcheck(swarm, service).await?;
            let new_spec = spec::resized(
                &service.spec,
                target.cpus,
                target.memory,
                Rollout { monitor },
            );
            (spec::limits(&new_spec), new_spec, false)
        }
        Ask::Rollback { previous } => {
            let Some(previous) = previous else {
                return Err(DeployError::NothingToRollBack {
                    service: service.name.clone(),
                    journal: "the journal (no Swarm update of it recorded)".into(),
                });
            };
            notes.push(format!(
                "Swarm's rollback restores the service's previous spec as Swarm stored it (by the journal: {})",
                previous.describe()
            ));
            (*previous, service.spec.clone(), true)
        }
    };
    let changes = if rollback {
        Vec::new()
    } else {
        spec::diff(&service.spec, &new_spec)
    };
    let replicas = spec::replicas(&service.spec);
    notes.push(format!(
        "Swarm replaces {} one at a time, start-first: each new task must be healthy before an old one stops; a task failing within {:.0}s makes Swarm roll the service back",
        match replicas {
            Some(1) => "the task".to_string(),
            Some(n) => format!("the {n} tasks"),
            None => "the tasks (global service)".to_string(),
        },
        monitor.as_secs_f64()
    ));
    let record = DeployRecord {
        id: new_id(),
        kind: if rollback {
            Kind::SwarmRollback
        } else {
            Kind::Swarm
        },
        service: service.name.clone(),
        project: None,
        blue_id: service.id.clone(),
        blue_name: service.name.clone(),
        green_name: service.name.clone(),
        old,
        new,
        override_path: None,
        override_before: None,
        override_after: None,
        router_blue: None,
        router_green: None,
        started_at: Utc::now(),
    };
    Ok(SwarmPlan {
        engine: "swarm",
        record,
        service_id: service.id.clone(),
        version: service.version,
        replicas,
        rollback,
        changes,
        monitor_secs: monitor.as_secs_f64(),
        notes,
        update_started_before: service.update.as_ref().map(|u| u.started_at.clone()),
        spec: new_spec,
    })
}

/// Start-first runs two copies at once, as a blue-green swap does, so the
/// same services are refused: the config's lists, the `tuner.role` label
/// (service or container), a named volume.
fn check_stateless(service: &Service, config: &DeployConfig) -> Result<(), DeployError> {
    let name = &service.name;
    if config.stateless.iter().any(|s| s == name) {
        return Ok(());
    }
    let refuse = |reason: String, hint: String| DeployError::SwarmStateful {
        service: name.clone(),
        reason,
        hint,
    };
    if config.stateful.iter().any(|s| s == name) {
        return Err(refuse("listed under deploy.stateful".into(), String::new()));
    }
    match spec::labels(&service.spec)
        .get(ROLE_LABEL)
        .map(String::as_str)
    {
        Some("stateful") => {
            return Err(refuse(
                format!("labelled {ROLE_LABEL}=stateful"),
                String::new(),
            ))
        }
        Some("stateless") => return Ok(()),
        _ => {}
    }
    let volumes = spec::named_volumes(&service.spec);
    if !volumes.is_empty() {
        return Err(refuse(
            format!("named volume {}", volumes.join(", ")),
            format!("; to update it anyway, list {name:?} under deploy.stateless in the config"),
        ));
    }
    Ok(())
}

/// Swarm's start-first waits for a new task to be healthy only when it
/// has a healthcheck; without one "running" means "started".
async fn check_healthcheck(swarm: &dyn Swarm, service: &Service) -> Result<(), DeployError> {
    if spec::has_healthcheck(&service.spec) {
        return Ok(());
    }
    let image = spec::image(&service.spec);
    if !spec::healthcheck_disabled(&service.spec) && swarm.image_has_healthcheck(&image).await? {
        return Ok(());
    }
    Err(DeployError::SwarmNoHealthcheck {
        service: service.name.clone(),
        image,
    })
}
