//! The bollard connection and one method per engine operation.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HealthStatusEnum,
    NetworkConnectRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, RenameContainerOptions,
    RestartContainerOptions, StatsOptions, StopContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use serde::Serialize;

use super::find::{select, Found, ServiceQuery, COMPOSE_SERVICE};
use super::limits::{Limits, MemoryUsage};
use super::{api, is_not_found, DockerError};
use crate::config::units::format_bytes;

pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A connected, version-negotiated engine client.
#[derive(Clone)]
pub struct DockerClient {
    docker: Docker,
    host: String,
}

/// Health as Docker reports it, or `None` when the container has no healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::None => "no healthcheck",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        })
    }
}

/// What a running (or stopped) container looks like right now.
#[derive(Debug, Clone, Serialize)]
pub struct LiveContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    /// `running`, `exited`, `created`...
    pub state: String,
    pub running: bool,
    pub exit_code: i64,
    pub health: Health,
    pub limits: Limits,
    #[serde(skip)]
    pub labels: HashMap<String, String>,
}

impl LiveContainer {
    pub fn from_inspect(c: &ContainerInspectResponse) -> LiveContainer {
        let state = c.state.as_ref();
        let health = match state.and_then(|s| s.health.as_ref()).and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
            Some(HealthStatusEnum::STARTING) => Health::Starting,
            _ => Health::None,
        };
        let config = c.config.as_ref();
        LiveContainer {
            id: c.id.clone().unwrap_or_default(),
            name: c
                .name
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            state: state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .unwrap_or_default(),
            running: state.and_then(|s| s.running).unwrap_or(false),
            exit_code: state.and_then(|s| s.exit_code).unwrap_or(0),
            health,
            limits: c
                .host_config
                .as_ref()
                .map(Limits::from_host_config)
                .unwrap_or(Limits::from_host_config(&Default::default())),
            labels: config.and_then(|c| c.labels.clone()).unwrap_or_default(),
        }
    }

    /// Running and, when it has a healthcheck, healthy.
    pub fn serving(&self) -> bool {
        self.running && matches!(self.health, Health::Healthy | Health::None)
    }
}

impl DockerClient {
    /// Connects to `host` (else `DOCKER_HOST`, else the default socket),
    /// pings and pins the API version the engine speaks.
    pub async fn connect(host: Option<&str>) -> Result<DockerClient, DockerError> {
        let host = host
            .map(str::to_string)
            .or_else(|| {
                std::env::var("DOCKER_HOST")
                    .ok()
                    .filter(|h| !h.trim().is_empty())
            })
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let unreachable = |reason: String| DockerError::Connect {
            host: host.clone(),
            reason,
        };
        let docker = Docker::connect_with_host(&host).map_err(|e| unreachable(e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(DockerClient { docker, host })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The raw bollard client, for operations this wrapper does not cover.
    pub fn raw(&self) -> &Docker {
        &self.docker
    }

    /// Number of CPUs the engine sees.
    pub async fn host_cpus(&self) -> Result<i64, DockerError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(api("read engine info from", self.host.clone()))?;
        Ok(info.ncpu.unwrap_or(1))
    }

    /// Every container, running or not.
    pub async fn list_all(&self) -> Result<Vec<Found>, DockerError> {
        let options = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(api("list containers on", self.host.clone()))?;
        Ok(list.iter().map(Found::from_summary).collect())
    }

    /// The containers of a service; an error listing the Compose services
    /// seen when there are none.
    pub async fn find_service(&self, query: &ServiceQuery) -> Result<Vec<Found>, DockerError> {
        let all = self.list_all().await?;
        let matches: Vec<Found> = select(query, &all).into_iter().cloned().collect();
        if matches.is_empty() {
            let mut found: Vec<String> = all
                .iter()
                .filter(|c| c.labels.contains_key(COMPOSE_SERVICE))
                .map(Found::describe)
                .collect();
            found.sort();
            return Err(DockerError::NoMatch {
                query: query.to_string(),
                found,
            });
        }
        Ok(matches)
    }

    /// Exactly one container of a service, else an error listing the matches.
    pub async fn find_one(&self, query: &ServiceQuery) -> Result<Found, DockerError> {
        let mut matches = self.find_service(query).await?;
        if matches.len() > 1 {
            return Err(DockerError::Ambiguous {
                query: query.to_string(),
                matches: matches.iter().map(Found::describe).collect(),
            });
        }
        Ok(matches.remove(0))
    }

    pub async fn inspect(&self, container: &str) -> Result<ContainerInspectResponse, DockerError> {
        self.docker
            .inspect_container(container, None)
            .await
            .map_err(api("inspect container", container))
    }

    /// Inspects a container that may be gone: `None` on 404.
    pub async fn try_inspect(
        &self,
        container: &str,
    ) -> Result<Option<ContainerInspectResponse>, DockerError> {
        match self.docker.inspect_container(container, None).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api("inspect container", container)(e)),
        }
    }

    pub async fn live(&self, container: &str) -> Result<LiveContainer, DockerError> {
        Ok(LiveContainer::from_inspect(&self.inspect(container).await?))
    }

    pub async fn limits(&self, container: &str) -> Result<Limits, DockerError> {
        Ok(self.live(container).await?.limits)
    }

    /// Changes CPU and/or memory of a running container without a restart,
    /// through the CPU knob it already uses, Memory and MemorySwap together.
    /// Returns the limits read back afterwards.
    pub async fn update_limits(
        &self,
        container: &str,
        cpus: Option<f64>,
        memory: Option<u64>,
    ) -> Result<Limits, DockerError> {
        let current = self.limits(container).await?;
        let target = current.resized(
            cpus.unwrap_or(current.cpus),
            memory.unwrap_or(current.memory),
        );
        let mut body = target.update_body();
        if cpus.is_none() || current.cpus <= 0.0 && target.cpus <= 0.0 {
            body.nano_cpus = None;
            body.cpu_quota = None;
            body.cpu_period = None;
        }
        if memory.is_none() && current.memory == 0 {
            body.memory = None;
            body.memory_swap = None;
        }
        self.docker
            .update_container(container, body)
            .await
            .map_err(api("update the limits of container", container))?;
        self.limits(container).await
    }

    /// Memory in use, from one stats sample.
    pub async fn memory_usage(&self, container: &str) -> Result<MemoryUsage, DockerError> {
        let options = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stream = self.docker.stats(container, Some(options));
        let stats = match stream.next().await {
            Some(s) => s.map_err(api("read stats of container", container))?,
            None => {
                return Err(DockerError::Invalid {
                    container: container.to_string(),
                    problem: "the engine sent no stats".into(),
                })
            }
        };
        let mem = stats.memory_stats.unwrap_or_default();
        let extra = mem.stats.unwrap_or_default();
        let inactive_file = extra
            .get("total_inactive_file")
            .or_else(|| extra.get("inactive_file"))
            .copied()
            .unwrap_or(0);
        Ok(MemoryUsage {
            usage: mem.usage.unwrap_or(0),
            inactive_file,
            limit: mem.limit.unwrap_or(0),
        })
    }

    /// Refuses a memory limit below the working set plus a margin.
    pub async fn check_memory_fits(
        &self,
        container: &str,
        memory: u64,
    ) -> Result<MemoryUsage, DockerError> {
        let usage = self.memory_usage(container).await?;
        if memory < usage.working_set() + usage.margin() {
            return Err(DockerError::UsageTooHigh {
                container: container.to_string(),
                limit: format_bytes(memory),
                usage: format_bytes(usage.working_set()),
                margin: format_bytes(usage.margin()),
            });
        }
        Ok(usage)
    }

    /// Restarts a container, giving it `stop_timeout` to stop before SIGKILL
    /// (the container's own StopTimeout when `None`).
    pub async fn restart(
        &self,
        container: &str,
        stop_timeout: Option<Duration>,
    ) -> Result<(), DockerError> {
        let options = RestartContainerOptions {
            t: stop_timeout.map(secs_i32),
            ..Default::default()
        };
        self.docker
            .restart_container(container, Some(options))
            .await
            .map_err(api("restart container", container))
    }

    pub async fn create(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, DockerError> {
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(api("create container", name))?;
        Ok(created.id)
    }

    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        endpoint: EndpointSettings,
    ) -> Result<(), DockerError> {
        let request = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(endpoint),
        };
        self.docker
            .connect_network(network, request)
            .await
            .map_err(api(
                "connect to network",
                format!("{network} container {container}"),
            ))
    }

    pub async fn start(&self, container: &str) -> Result<(), DockerError> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(api("start container", container))
    }

    /// Stops gracefully: the stop signal, then SIGKILL after `timeout`
    /// (the container's StopTimeout when `None`). Already stopped is fine.
    pub async fn stop(
        &self,
        container: &str,
        timeout: Option<Duration>,
    ) -> Result<(), DockerError> {
        let options = StopContainerOptions {
            t: timeout.map(secs_i32),
            ..Default::default()
        };
        match self.docker.stop_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(api("stop container", container)(e)),
        }
    }

    /// Removes a container (forcefully when asked); already gone is fine.
    pub async fn remove(&self, container: &str, force: bool) -> Result<(), DockerError> {
        // Anonymous volumes die with the container (a clone gets fresh ones);
        // named volumes are never touched.
        let options = RemoveContainerOptions {
            force,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api("remove container", container)(e)),
        }
    }

    pub async fn rename(&self, container: &str, new_name: &str) -> Result<(), DockerError> {
        let options = RenameContainerOptions {
            name: new_name.to_string(),
        };
        self.docker
            .rename_container(container, options)
            .await
            .map_err(api(
                "rename container",
                format!("{container} to {new_name}"),
            ))
    }
}

fn secs_i32(d: Duration) -> i32 {
    d.as_secs().min(i32::MAX as u64) as i32
}
