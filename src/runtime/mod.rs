//! The container engine behind one narrow trait.
//!
//! `Runtime` (in `port`) is every operation tuner needs from an engine:
//! find a service's containers, inspect, live limit updates, clone, start,
//! stop, remove, rename, restart, copy a file in, read usage. It speaks
//! tuner's own types (`container`, `limits`, `find`). `DockerRuntime` is
//! the one implementation today, over bollard, with the one connection path
//! (`docker.host`, else `DOCKER_HOST`, else the local socket) every command
//! uses; `fake` is an in-memory engine for unit tests. The Compose override
//! file and config hash live here too: they are how a resize survives
//! `compose up -d`; so do the Compose command (v2 plugin or v1, found once)
//! and the Compose file names a project folder may use.

pub mod cgroup;
pub mod compose_cmd;
pub mod compose_files;
pub mod compose_hash;
pub mod compose_override;
#[cfg(test)]
mod compose_override_tests;
pub mod container;
pub mod docker;
#[cfg(test)]
pub mod fake;
pub mod find;
pub mod limits;
pub mod port;
pub mod swarm;

pub use compose_override::{OverrideError, OverrideFile};
pub use container::{
    CheckRun, CloneSpec, Container, Engine, FileIn, Health, HealthCommand, Mount, NetworkAddress,
    Published, Usage,
};
pub use docker::DockerRuntime;
pub use find::{Found, ServiceQuery, COMPOSE_PROJECT, COMPOSE_SERVICE, COMPOSE_WORKING_DIR};
pub use limits::{CpuKnob, Limits, MemoryUsage};
pub use port::Runtime;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker engine at {host}: {reason}; is dockerd running and may this user use its socket? (set DOCKER_HOST or docker.host in the config)")]
    Connect { host: String, reason: String },
    #[error("cannot {op} {object}: {source}")]
    Api {
        op: &'static str,
        object: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "no container found for {query}; running containers of Compose services: {}",
        list_or_none(found)
    )]
    NoMatch { query: String, found: Vec<String> },
    #[error("{query} matches {} containers: {}; pass --project or the container name", matches.len(), matches.join(", "))]
    Ambiguous { query: String, matches: Vec<String> },
    #[error("container {container}: new memory limit {limit} is below its current usage {usage} plus a margin of {margin}; free memory first or choose a higher limit")]
    UsageTooHigh {
        container: String,
        limit: String,
        usage: String,
        margin: String,
    },
    #[error("container {container}: {problem}")]
    Invalid { container: String, problem: String },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

impl DockerError {
    /// True when the engine says the container (or other object) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DockerError::Api { source, .. } if is_not_found(source))
    }
}

/// Maps a bollard error for `op` on `object`.
pub(crate) fn api(
    op: &'static str,
    object: impl Into<String>,
) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let object = object.into();
    move |source| DockerError::Api { op, object, source }
}

/// True when the engine answered 404 for the object.
pub fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
