//! Builds the plan from live state: find blue, check it may be cloned,
//! choose the health probe, compute green's spec, the override text and the
//! Compose config hash. Reads only; changes nothing.

use std::path::PathBuf;

use chrono::Utc;

use super::health::{self, Probe};
use super::plan::{spec_diff, OverrideChange, Plan, Timings};
use super::record::{new_id, DeployRecord, Kind, DEPLOY_ID_LABEL};
use super::router::Router;
use super::routing::{self, blue_server, SERVER_LABEL};
use super::steps::{in_place_steps, swap_steps};
use super::{policy, DeployError, Target};
use crate::config::deploy::DeployConfig;
use crate::runtime::compose_hash::{side_effects, Effects};
use crate::runtime::compose_override::ServiceLimits;
use crate::runtime::find::{
    Found, COMPOSE_CONFIG_FILES, COMPOSE_CONFIG_HASH, COMPOSE_PROJECT, COMPOSE_SERVICE,
    COMPOSE_WORKING_DIR,
};
use crate::runtime::{OverrideFile, Runtime, ServiceQuery};

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

/// The plan for a service of one container (several are an error).
pub async fn build(
    runtime: &dyn Runtime,
    req: &Request,
    config: &DeployConfig,
    router: &dyn Router,
) -> Result<Plan, DeployError> {
    let found = runtime.find_one(&req.query).await?;
    build_for(runtime, req, config, router, found, new_id()).await
}

/// One plan per container of the service: one for a single container, one
/// per replica, in swap order, for a Compose service scaled to several.
/// Never empty: a service without containers is `DockerError::NoMatch`.
pub async fn build_replicas(
    runtime: &dyn Runtime,
    req: &Request,
    config: &DeployConfig,
    router: &dyn Router,
) -> Result<Vec<Plan>, DeployError> {
    let found = runtime.find_service(&req.query).await?;
    let mut replicas = super::replicas::order(&req.query, found)?;
    if replicas.len() == 1 {
        // ok: exactly one element, checked just above.
        let found = replicas.remove(0);
        return Ok(vec![
            build_for(runtime, req, config, router, found, new_id()).await?,
        ]);
    }
    let base = new_id();
    let mut plans = Vec::with_capacity(replicas.len());
    for (k, found) in replicas.into_iter().enumerate() {
        let id = format!("{base}-r{}", k + 1);
        plans.push(build_for(runtime, req, config, router, found, id).await?);
    }
    Ok(plans)
}

/// The plan for one container, `found`, journaled under `id`.
pub async fn build_for(
    runtime: &dyn Runtime,
    req: &Request,
    config: &DeployConfig,
    router: &dyn Router,
    found: Found,
    id: String,
) -> Result<Plan, DeployError> {
    let blue = runtime.inspect(&found.id).await?;
    let labels = blue.labels.clone();
    let service = labels
        .get(COMPOSE_SERVICE)
        .cloned()
        .unwrap_or_else(|| found.name.clone());
    let project = labels.get(COMPOSE_PROJECT).cloned();
    req.target.check_host(runtime.engine().await?.cpus)?;

    let old = blue.limits;
    let new = old.resized(req.target.cpus, req.target.memory);
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

    // Compose merges every service once an override exists, so the write can
    // change another service's hash: a deploy that would make the next
    // `docker-compose up -d` restart, say, the database is refused here.
    let effects: Option<Result<Effects, String>> = match (&compose_dir, &project) {
        (Some(dir), Some(project)) => {
            let files: Vec<String> = labels
                .get(COMPOSE_CONFIG_FILES)
                .map(|f| f.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            Some(
                side_effects(
                    dir,
                    project,
                    &files,
                    before.as_deref(),
                    after.as_deref(),
                    &service,
                )
                .map_err(|e| e.to_string()),
            )
        }
        _ => None,
    };
    if let Some(Ok(e)) = &effects {
        if !e.others.is_empty() {
            let list = e
                .others
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            if req.kind == Kind::Rollback {
                notes.push(format!("restoring the override file changes the Compose config hash of other services too, so `docker-compose up -d` would recreate them: {list}"));
            } else {
                return Err(DeployError::SideEffects {
                    service: service.clone(),
                    path: override_file
                        .as_ref()
                        .map(|f| f.path.display().to_string())
                        .unwrap_or_default(),
                    others: e
                        .others
                        .iter()
                        .map(|o| o.service.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    reasons: list,
                });
            }
        }
    }

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
    // Green is checked and promoted under a standby server, then moved into
    // blue's own server once blue is gone: the service keeps one name in
    // the router, the one its config defines.
    let router_green = format!("{router_blue}_tuner_green");
    let green_name = format!("{}_tuner_green", found.name);

    // Named in the notes as the user runs it (v2 plugin or v1).
    let compose = crate::runtime::compose_cmd::get().display();
    let mut probe: Option<Probe> = None;
    let mut green = None;
    let mut spec_changes = Vec::new();
    let mut unchanged = 0;
    if req.strategy == Strategy::BlueGreen {
        if !blue.running {
            return Err(DeployError::NotRunning {
                container: found.name.clone(),
                state: blue.state.clone(),
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
        let mut extra = vec![
            (DEPLOY_ID_LABEL.to_string(), id.clone()),
            (SERVER_LABEL.to_string(), router_blue.clone()),
        ];
        let draft = runtime.clone_spec(&blue.id, &new, &extra).await?;
        // Two containers cannot publish one host port: without a router in
        // front, green would answer on a random port and the published one
        // would stay dead after the swap. In-place keeps the port and the
        // container; a router keeps the port on its own listener.
        if req.router_kind == "none" && !draft.moved_ports.is_empty() {
            return Err(DeployError::FixedPorts {
                service: service.clone(),
                ports: draft.moved_ports.join(", "),
            });
        }
        let hash = match (&compose_dir, &project) {
            (Some(_), Some(_)) if draft.moved_ports.is_empty() => match &effects {
                Some(Ok(Effects { hash: Some(h), .. })) => Some(h.clone()),
                Some(Err(e)) => {
                    notes.push(format!("green keeps blue's Compose config hash ({e}); the next `{compose} up -d` recreates the service from the files, with the new limits"));
                    None
                }
                _ => labels.get(COMPOSE_CONFIG_HASH).cloned(),
            },
            (Some(_), Some(_)) => {
                notes.push(format!(
                    "blue publishes fixed host ports ({}); green gets random 127.0.0.1 ports and keeps blue's Compose config hash, so the next `{compose} up -d` recreates the service with the new limits on its fixed ports",
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
            Some(h) => {
                extra.push((COMPOSE_CONFIG_HASH.to_string(), h.clone()));
                runtime.clone_spec(&blue.id, &new, &extra).await?
            }
            None => draft,
        };
        if let Some(h) = &hash {
            if labels.get(COMPOSE_CONFIG_HASH) != Some(h) {
                notes.push(format!("green carries the config hash of the updated Compose files, so `{compose} up -d` sees it as up to date"));
            }
        }
        (spec_changes, unchanged) = spec_diff(&spec.blue_view, &spec.green_view);
        green = Some(spec);
        if project.is_some() {
            notes.push(format!("do not run {compose} for this project during the swap: while blue and green coexist it may remove the new container"));
        }
        if req.router_kind == "none" {
            notes.push("router none: green answers under the service's network aliases as soon as it starts; blue keeps serving until green is healthy".into());
        }
    }
    let green_address = green.as_ref().and_then(|g| g.address.clone());
    if let Some(check) = &router_check {
        let green_at = green_address
            .clone()
            .unwrap_or_else(|| "<green's address>".to_string());
        match &check.state_file {
            Some(file) => notes.push(format!(
                "{}: after the swap, server {router_blue} points at green ({green_at}) and HAProxy's state is written to {file}, which a reload reads back when haproxy.cfg has `server-state-file` and `load-server-state-from-file`",
                check.target
            )),
            None => notes.push(format!(
                "{}: after the swap, server {router_blue} points at green ({green_at}), a runtime change: a reload of HAProxy goes back to haproxy.cfg ({router_blue} {blue_address}) unless tuner saves HAProxy's state: set deploy.router.haproxy.state_file (README, \"Reloads\")",
                check.target
            )),
        }
        let same_ip = |a: &str| a.rsplit_once(':').map(|(ip, _)| ip.to_string());
        if check.state_file.is_some()
            && green_address.as_deref().and_then(same_ip) != same_ip(&blue_address)
        {
            notes.push("green's IP differs from blue's: HAProxy restores a server's IP from the state file only when haproxy.cfg names the server by host name with `init-addr last,libc,none` (it always restores the port)"
                .to_string());
        }
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
