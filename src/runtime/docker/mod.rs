//! The Docker engine through bollard: the one connection every command
//! uses, and one method per `Runtime` operation. Every bollard error is
//! mapped into a `DockerError` naming the operation and the container.

mod clone;
mod convert;
mod tar;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::NetworkConnectRequest;
use bollard::query_parameters::{
    CreateContainerOptions, EventsOptions, ListContainersOptions, RemoveContainerOptions,
    RenameContainerOptions, RestartContainerOptions, StatsOptions, StopContainerOptions,
    UploadToContainerOptions,
};
use bollard::Docker;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::container::{CheckRun, CloneSpec, Container, Engine, FileIn, Usage};
use super::find::Found;
use super::limits::Limits;
use super::port::Runtime;
use super::{api, is_not_found, DockerError};

use clone::GreenSpec;

pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Bollard's own request timeout; waits that may take longer (a restart
/// with a long stop timeout) get their own.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long past a stop timeout the engine may take to answer.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// The engine `configured` names, else `DOCKER_HOST`, else the local
/// socket. Commands pass `docker.host` as loaded, where `DOCKER_HOST`
/// already overrides the file (README); callers without a config get the
/// environment here.
pub fn resolve_host(configured: Option<&str>) -> String {
    configured
        .filter(|h| !h.trim().is_empty())
        .map(str::to_string)
        .or_else(|| {
            std::env::var("DOCKER_HOST")
                .ok()
                .filter(|h| !h.trim().is_empty())
        })
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

/// A connected, version-negotiated Docker engine.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    host: String,
}

impl DockerRuntime {
    /// Connects to the engine `resolve_host` names, pings it and pins the
    /// API version it speaks (bollard's default is newer than this engine's,
    /// and the engine silently ignores fields it does not know).
    pub async fn connect(configured: Option<&str>) -> Result<DockerRuntime, DockerError> {
        let host = resolve_host(configured);
        let unreachable = |reason: String| DockerError::Connect {
            host: host.clone(),
            reason,
        };
        let docker = Docker::connect_with_host(&host).map_err(|e| unreachable(e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(DockerRuntime { docker, host })
    }

    /// Where the engine is (`unix:///var/run/docker.sock`), for messages.
    /// The Swarm services API over the same connection.
    pub fn swarm(&self) -> crate::runtime::swarm::SwarmEngine {
        crate::runtime::swarm::SwarmEngine::new(self.docker.clone())
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// A client whose requests may take `stop_timeout` plus a grace: the
    /// engine answers a stop or restart only once the container is down.
    fn patient(&self, stop_timeout: Option<Duration>) -> Docker {
        let wait = stop_timeout.map_or(REQUEST_TIMEOUT, |t| (t + STOP_GRACE).max(REQUEST_TIMEOUT));
        self.docker.clone().with_timeout(wait)
    }

    async fn inspect_raw(
        &self,
        container: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, DockerError> {
        self.docker
            .inspect_container(container, None)
            .await
            .map_err(api("inspect container", container))
    }

    async fn oom_events(&self, container: &str, since: DateTime<Utc>) -> Result<u64, DockerError> {
        // `until` now makes the engine replay what it remembers and close
        // the stream instead of following it.
        let options = EventsOptions {
            since: Some(since.timestamp().to_string()),
            until: Some(Utc::now().timestamp().saturating_add(1).to_string()),
            filters: Some(HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("event".to_string(), vec!["oom".to_string()]),
                ("container".to_string(), vec![container.to_string()]),
            ])),
        };
        let mut events = self.docker.events(Some(options));
        let mut count = 0;
        while let Some(event) = events.next().await {
            event.map_err(api("read the OOM events of container", container))?;
            count += 1;
        }
        Ok(count)
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn engine(&self) -> Result<Engine, DockerError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(api("read the version of the engine at", self.host.clone()))?;
        let info = self
            .docker
            .info()
            .await
            .map_err(api("read engine info from", self.host.clone()))?;
        Ok(Engine {
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            cpus: info.ncpu.unwrap_or(1),
        })
    }

    async fn list(&self) -> Result<Vec<Found>, DockerError> {
        let options = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(api("list containers on", self.host.clone()))?;
        Ok(list.iter().map(convert::found).collect())
    }

    async fn inspect(&self, container: &str) -> Result<Container, DockerError> {
        Ok(convert::container(&self.inspect_raw(container).await?))
    }

    /// Through the CPU knob the container already uses, Memory and
    /// MemorySwap together; a limit that is not asked for is not sent.
    async fn update_limits(
        &self,
        container: &str,
        cpus: Option<f64>,
        memory: Option<u64>,
    ) -> Result<Limits, DockerError> {
        let current = self.inspect(container).await?.limits;
        let target = current.resized(
            cpus.unwrap_or(current.cpus),
            memory.unwrap_or(current.memory),
        );
        let mut body = convert::update_body(&target);
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
        Ok(self.inspect(container).await?.limits)
    }

    async fn clone_spec(
        &self,
        blue: &str,
        limits: &Limits,
        labels: &[(String, String)],
    ) -> Result<CloneSpec, DockerError> {
        let inspected = self.inspect_raw(blue).await?;
        clone::green_spec(&inspected, limits, labels)
            .into_clone_spec(&inspected)
            .map_err(|e| DockerError::Invalid {
                container: blue.to_string(),
                problem: format!("cannot describe its clone: {e}"),
            })
    }

    /// Creates with the first network, then connects the others: API 1.41
    /// accepts one network at create.
    async fn create_clone(&self, name: &str, spec: &CloneSpec) -> Result<String, DockerError> {
        let green: GreenSpec =
            serde_json::from_value(spec.request.clone()).map_err(|e| DockerError::Invalid {
                container: name.to_string(),
                problem: format!("the clone spec is not a Docker create request: {e}"),
            })?;
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(Some(options), green.body)
            .await
            .map_err(api("create container", name))?
            .id;
        for (network, endpoint) in green.extra_networks {
            let request = NetworkConnectRequest {
                container: id.clone(),
                endpoint_config: Some(endpoint),
            };
            self.docker
                .connect_network(&network, request)
                .await
                .map_err(api(
                    "connect to network",
                    format!("{network} container {name}"),
                ))?;
        }
        Ok(id)
    }

    async fn start(&self, container: &str) -> Result<(), DockerError> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(api("start container", container))
    }

    async fn stop(&self, container: &str, timeout: Option<Duration>) -> Result<(), DockerError> {
        let options = StopContainerOptions {
            t: timeout.map(secs_i32),
            ..Default::default()
        };
        match self
            .patient(timeout)
            .stop_container(container, Some(options))
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(api("stop container", container)(e)),
        }
    }

    async fn remove(&self, container: &str, force: bool) -> Result<(), DockerError> {
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

    async fn exec(
        &self,
        container: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<CheckRun, DockerError> {
        let failed = api("run a command in container", container);
        let create = CreateExecOptions {
            cmd: Some(argv.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let run = async {
            let id = self.docker.create_exec(container, create).await?.id;
            let mut output = String::new();
            if let StartExecResults::Attached {
                output: mut out, ..
            } = self.docker.start_exec(&id, None).await?
            {
                while let Some(chunk) = out.next().await {
                    // Docker keeps the first 4 KiB of a healthcheck's output.
                    if output.len() < 4096 {
                        output.push_str(&chunk?.to_string());
                    }
                }
            }
            let done = self.docker.inspect_exec(&id).await?;
            Ok::<_, bollard::errors::Error>(CheckRun {
                exit_code: done.exit_code.unwrap_or(-1),
                output,
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result.map_err(failed),
            Err(_) => Ok(CheckRun {
                exit_code: -1,
                output: format!("timed out after {timeout:?}"),
            }),
        }
    }

    async fn rename(&self, container: &str, new_name: &str) -> Result<(), DockerError> {
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

    async fn restart(
        &self,
        container: &str,
        stop_timeout: Option<Duration>,
    ) -> Result<(), DockerError> {
        let options = RestartContainerOptions {
            t: stop_timeout.map(secs_i32),
            ..Default::default()
        };
        self.patient(stop_timeout)
            .restart_container(container, Some(options))
            .await
            .map_err(api("restart container", container))
    }

    /// As a one-file tar through the archive API, which works on stopped
    /// containers too.
    async fn copy_in(
        &self,
        container: &str,
        dir: &str,
        file: FileIn<'_>,
    ) -> Result<(), DockerError> {
        let target = format!("{container} at {dir}/{}", file.name);
        let mtime = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let archive = tar::single_file(&tar::TarFile {
            name: file.name,
            contents: file.contents,
            mode: file.mode,
            uid: file.uid,
            gid: file.gid,
            mtime,
        })
        .map_err(|problem| DockerError::Invalid {
            container: target.clone(),
            problem,
        })?;
        let options = UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(container, Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(api("copy a file into container", target))
    }

    async fn usage(
        &self,
        container: &str,
        oom_since: Option<DateTime<Utc>>,
    ) -> Result<Usage, DockerError> {
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
        let mut usage = convert::usage(&stats);
        if let Some(since) = oom_since {
            usage.oom_events = Some(self.oom_events(container, since).await?);
        }
        Ok(usage)
    }
}

fn secs_i32(d: Duration) -> i32 {
    d.as_secs().min(i32::MAX as u64) as i32
}
