//! Docker Swarm services behind one narrow trait.
//!
//! On Swarm the orchestrator owns the swap: a service update with
//! `start-first` order starts each new task, waits until it is healthy and
//! only then stops an old one, and rolls back by itself when a new task
//! fails inside the monitor window. So tuner does not clone containers
//! there; it writes the whole service spec back with new limits and the
//! update policy it needs, at the version index it read (a concurrent
//! change makes the engine refuse the write instead of losing it), then
//! follows the tasks. `spec` is the pure part (limits read from a spec, the
//! resized spec, the diff `--dry-run` prints); `engine` is bollard.
//!
//! The spec is kept as the engine's own JSON, so every field tuner does
//! not touch goes back exactly as it came.

pub mod engine;
#[cfg(test)]
pub mod fake;
pub mod spec;

use async_trait::async_trait;
use serde::Serialize;

use super::limits::Limits;
use super::DockerError;

pub use engine::SwarmEngine;

/// A Swarm service as tuner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub id: String,
    pub name: String,
    /// The version index an update must quote.
    pub version: u64,
    /// The spec as the engine returned it (`Name`, `TaskTemplate`, ...).
    pub spec: serde_json::Value,
    /// The spec before the last update: what Swarm's rollback returns to.
    pub previous_spec: Option<serde_json::Value>,
    pub update: Option<UpdateStatus>,
}

impl Service {
    pub fn limits(&self) -> Limits {
        spec::limits(&self.spec)
    }
}

/// Where the service's last update (or rollback) stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateStatus {
    pub state: UpdateState,
    /// When it started, as the engine wrote it: tells one update from the next.
    pub started_at: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    Updating,
    Paused,
    Completed,
    RollbackStarted,
    RollbackPaused,
    RollbackCompleted,
    Unknown,
}

impl UpdateState {
    pub fn parse(s: &str) -> UpdateState {
        match s {
            "updating" => UpdateState::Updating,
            "paused" => UpdateState::Paused,
            "completed" => UpdateState::Completed,
            "rollback_started" => UpdateState::RollbackStarted,
            "rollback_paused" => UpdateState::RollbackPaused,
            "rollback_completed" => UpdateState::RollbackCompleted,
            _ => UpdateState::Unknown,
        }
    }

    /// No further change will come without a new request.
    pub fn is_final(self) -> bool {
        !matches!(self, UpdateState::Updating | UpdateState::RollbackStarted)
    }
}

/// One task (a container Swarm schedules) of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: String,
    /// Replica number of a replicated service.
    pub slot: Option<i64>,
    /// The node's host name (its id when the node is unknown).
    pub node: String,
    /// `new`, `pending`, `starting`, `running`, `failed`, `shutdown`, ...
    pub state: String,
    pub desired: String,
    pub message: String,
    pub error: Option<String>,
    /// The limits of the spec this task runs.
    pub limits: Limits,
    pub container_id: Option<String>,
}

impl Task {
    /// Running and meant to run. A task with a healthcheck reaches
    /// `running` only once its container is healthy.
    pub fn serving(&self) -> bool {
        self.state == "running" && self.desired == "running"
    }

    pub fn label(&self, service: &str) -> String {
        match self.slot {
            Some(slot) => format!("{service}.{slot}"),
            None => format!("{service}.{}", super::find::short_id(&self.id)),
        }
    }
}

/// What deploy needs from Swarm, and no more.
#[async_trait]
pub trait Swarm: Send + Sync {
    /// The service named (or with the id) `name`; `None` when there is no
    /// such service or this engine is not a Swarm manager.
    async fn service(&self, name: &str) -> Result<Option<Service>, DockerError>;

    /// Writes `spec` at the version `service` was read at; with `rollback`,
    /// asks Swarm to return to the previous spec instead. Returns the
    /// engine's warnings (a local image without a registry digest, ...).
    async fn update(
        &self,
        service: &Service,
        spec: &serde_json::Value,
        rollback: bool,
    ) -> Result<Vec<String>, DockerError>;

    /// Every task of a service, old and new, on every node.
    async fn tasks(&self, service_id: &str) -> Result<Vec<Task>, DockerError>;

    /// The most CPUs one node of the swarm has.
    async fn max_node_cpus(&self) -> Result<f64, DockerError>;

    /// True when `image` has a HEALTHCHECK of its own.
    async fn image_has_healthcheck(&self, image: &str) -> Result<bool, DockerError>;
}
