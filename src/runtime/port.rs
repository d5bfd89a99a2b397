//! The `Runtime` port: what tuner needs from a container engine, and no
//! more. Deploy's swap and recovery, the container levers, the PostgreSQL
//! restarter and `tuner status --health` see only this trait, so another
//! engine (Docker Swarm) can run the same deploy plan by implementing it,
//! and the phase logic is unit-tested against an in-memory fake.
//!
//! Containers are named by id or name, as the engine accepts either.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::container::{CheckRun, CloneSpec, Container, Engine, FileIn, Usage};
use super::find::{select, Found, ServiceQuery, COMPOSE_SERVICE};
use super::limits::{Limits, MemoryUsage};
use super::DockerError;
use crate::config::units::format_bytes;

#[async_trait]
pub trait Runtime: Send + Sync {
    /// The engine's version and how many CPUs it can give a container.
    async fn engine(&self) -> Result<Engine, DockerError>;

    /// Every container, running or not.
    async fn list(&self) -> Result<Vec<Found>, DockerError>;

    async fn inspect(&self, container: &str) -> Result<Container, DockerError>;

    /// Changes CPU and/or memory of a running container without a restart;
    /// `None` keeps that limit. Returns the limits read back afterwards.
    async fn update_limits(
        &self,
        container: &str,
        cpus: Option<f64>,
        memory: Option<u64>,
    ) -> Result<Limits, DockerError>;

    /// How to create a clone of `blue` with `limits` and `labels` added to
    /// (or replacing) blue's. Reads only.
    async fn clone_spec(
        &self,
        blue: &str,
        limits: &Limits,
        labels: &[(String, String)],
    ) -> Result<CloneSpec, DockerError>;

    /// Creates the clone under `name`, not started; returns its id.
    async fn create_clone(&self, name: &str, spec: &CloneSpec) -> Result<String, DockerError>;

    async fn start(&self, container: &str) -> Result<(), DockerError>;

    /// Stops gracefully: the container's stop signal, then SIGKILL after
    /// `timeout` (the container's own stop timeout when `None`). Already
    /// stopped is fine.
    async fn stop(&self, container: &str, timeout: Option<Duration>) -> Result<(), DockerError>;

    /// Removes a container (killing it first when `force`); already gone is fine.
    async fn remove(&self, container: &str, force: bool) -> Result<(), DockerError>;

    async fn rename(&self, container: &str, new_name: &str) -> Result<(), DockerError>;

    /// Stops with the container's own stop signal, SIGKILL after
    /// `stop_timeout` (its own when `None`), and starts it again; starts a
    /// stopped one.
    async fn restart(
        &self,
        container: &str,
        stop_timeout: Option<Duration>,
    ) -> Result<(), DockerError>;

    /// Writes one file into directory `dir` of a container, running or
    /// stopped (a server that no longer starts can be repaired this way).
    async fn copy_in(
        &self,
        container: &str,
        dir: &str,
        file: FileIn<'_>,
    ) -> Result<(), DockerError>;

    /// Runs `argv` inside a running container, as the engine runs its
    /// healthcheck (the container's user and environment), and waits up to
    /// `timeout`: the exit code and output. A run past `timeout` is a
    /// failed run (exit -1), as for the engine's own healthcheck.
    async fn exec(
        &self,
        container: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<CheckRun, DockerError>;

    /// One sample of CPU and memory, plus the OOM kills since `oom_since`
    /// when asked.
    async fn usage(
        &self,
        container: &str,
        oom_since: Option<DateTime<Utc>>,
    ) -> Result<Usage, DockerError>;

    // What follows is built on the operations above; an engine overrides
    // only what it can do better.

    /// The containers of a service: by Compose labels, else by container
    /// name. None found is an error listing the Compose services seen.
    async fn find_service(&self, query: &ServiceQuery) -> Result<Vec<Found>, DockerError> {
        let all = self.list().await?;
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
    async fn find_one(&self, query: &ServiceQuery) -> Result<Found, DockerError> {
        let mut matches = self.find_service(query).await?;
        if matches.len() > 1 {
            return Err(DockerError::Ambiguous {
                query: query.to_string(),
                matches: matches.iter().map(Found::describe).collect(),
            });
        }
        Ok(matches.remove(0))
    }

    /// Inspects a container that may be gone: `None` when it is.
    async fn try_inspect(&self, container: &str) -> Result<Option<Container>, DockerError> {
        match self.inspect(container).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Refuses a memory limit below the working set plus a margin.
    async fn check_memory_fits(
        &self,
        container: &str,
        memory: u64,
    ) -> Result<MemoryUsage, DockerError> {
        let usage = self.usage(container, None).await?.memory;
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
}
