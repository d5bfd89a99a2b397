//! Blue-green re-sizing: plan, execute, roll back, recover; health probes; routers.
//!
//! A deploy clones the service's container ("blue") into "green" with new
//! limits, waits until green is healthy, moves traffic through a `Router`,
//! drains and removes blue, then gives green blue's name. Every phase is
//! journaled before it starts, so a run killed at any point is finished or
//! undone by the next `tuner deploy` or `tuner deploy status` (`recover`).

pub mod analysis;
pub mod crash;
#[cfg(test)]
mod fake_metrics;
#[cfg(test)]
mod fakes;
pub mod health;
pub mod inplace;
#[cfg(test)]
mod inplace_tests;
pub mod metrics;
pub mod phase;
pub mod plan;
pub mod policy;
pub mod prepare;
pub mod record;
pub mod recover;
#[cfg(test)]
mod recover_tests;
pub mod replicas;
#[cfg(test)]
mod replicas_tests;
pub mod report;
pub mod request;
pub mod router;
pub mod routing;
pub mod status;
pub mod steps;
pub mod swap;
#[cfg(test)]
mod swap_tests;
pub mod swarm;

pub use phase::Phase;
pub use plan::Plan;
pub use request::Target;

use crate::journal::JournalError;
use crate::runtime::{DockerError, OverrideError};
use router::RouterError;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    InvalidLimit(String),
    #[error("{service} is stateful ({reason}): a blue-green swap would run two copies of it at once; use --strategy in-place (live update, no restart) or resize it in a maintenance window{hint}")]
    Stateful {
        service: String,
        reason: String,
        hint: String,
    },
    #[error("green for {container} would have no health check: the image has no HEALTHCHECK and no `tuner.health.path`/`tuner.health.port` labels; add a healthcheck or pass --health-path and --health-port")]
    NoHealthProbe { container: String },
    #[error("deploying {service} would change the Compose config of {others} too, so the next `docker-compose up -d` would recreate them: {reasons}. Nothing was changed; fix the main Compose file as said, or create {path} yourself and run `docker-compose up -d` once at a time of your choosing")]
    SideEffects {
        service: String,
        path: String,
        others: String,
        reasons: String,
    },
    #[error("{service} publishes fixed host ports ({ports}): with `deploy.router.kind: none` a blue-green swap cannot keep them (green would answer on another port and the published one would stay dead); use --strategy in-place (a live update of the same container, no restart, the ports keep answering), or put a router in front (`deploy.router.kind: haproxy`, the published port on HAProxy)")]
    FixedPorts { service: String, ports: String },
    #[error("{container} is {state}, not running: a blue-green swap needs a serving container to clone; start it first, or use --strategy in-place")]
    NotRunning { container: String, state: String },
    #[error("deploy of {service} failed in phase {phase}: {reason}{aftermath}")]
    PhaseFailed {
        service: String,
        phase: Phase,
        reason: String,
        aftermath: String,
    },
    #[error("deploy of {service} stopped at replica {replica} of {replicas} ({container}): {reason}{aftermath}")]
    ReplicaFailed {
        service: String,
        replica: usize,
        replicas: usize,
        container: String,
        reason: String,
        aftermath: String,
    },
    #[error("cannot recover the interrupted deploy {id} of {service}: {reason}")]
    Recovery {
        id: String,
        service: String,
        reason: String,
    },
    #[error("nothing to roll back for {service}: no successful deploy in the journal {journal}")]
    NothingToRollBack { service: String, journal: String },
    #[error("router {target}: cannot tell which server is blue {container}: {reason}; set `deploy.router.server` to blue's server name, or label the container `tuner.router.server=<name>`")]
    RouterBlue {
        container: String,
        target: String,
        reason: String,
    },
    #[error("{service} is a stateful Swarm service ({reason}): a start-first update would run two copies of it at once; resize it in a maintenance window (docker service update --update-order stop-first){hint}")]
    SwarmStateful {
        service: String,
        reason: String,
        hint: String,
    },
    #[error("Swarm service {service} has no healthcheck (none in its spec, none in image {image}): Swarm would call a new task ready as soon as it starts; add a healthcheck to the service (docker service update --health-cmd ...) or the image")]
    SwarmNoHealthcheck { service: String, image: String },
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Override(#[from] OverrideError),
    #[error(transparent)]
    Router(#[from] RouterError),
}

impl DeployError {
    /// Errors the user fixes by changing the command or config (exit 2):
    /// nothing was changed.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DeployError::InvalidLimit(_)
                | DeployError::NotRunning { .. }
                | DeployError::Stateful { .. }
                | DeployError::NoHealthProbe { .. }
                | DeployError::NothingToRollBack { .. }
                | DeployError::RouterBlue { .. }
                | DeployError::SideEffects { .. }
                | DeployError::FixedPorts { .. }
                | DeployError::SwarmStateful { .. }
                | DeployError::SwarmNoHealthcheck { .. }
        ) || matches!(
            self,
            DeployError::Docker(
                DockerError::NoMatch { .. }
                    | DockerError::Ambiguous { .. }
                    | DockerError::UsageTooHigh { .. }
            )
        ) || matches!(self, DeployError::Router(RouterError::Misconfigured { .. }))
    }
}
