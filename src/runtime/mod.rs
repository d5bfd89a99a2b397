//! Docker engine access through bollard: connect, find a service's
//! containers, read and live-update limits, memory usage, restart, clone a
//! container for a blue-green swap, and the Compose override file.
//!
//! One `DockerClient` with one method per operation; every bollard error is
//! mapped into a `DockerError` naming the operation and the container.

pub mod client;
pub mod clone;
pub mod compose_hash;
pub mod compose_override;
pub mod find;
pub mod limits;

pub use client::{DockerClient, Health, LiveContainer};
pub use clone::{current_spec, green_spec, GreenSpec};
pub use compose_override::{OverrideError, OverrideFile};
pub use find::{ServiceQuery, COMPOSE_PROJECT, COMPOSE_SERVICE, COMPOSE_WORKING_DIR};
pub use limits::{CpuKnob, Limits, MemoryUsage};

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
