//! Routers: what sends traffic to a service during a swap.
//!
//! The swap drives a router through these steps, in this order, so that a
//! backend only takes traffic once it is known healthy and a retiring one
//! finishes its in-flight requests before it stops.

pub mod haproxy;
pub mod none;

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

/// Where a backend instance listens, as the router reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Router-side name of the slot (`grafana_green`).
    pub name: String,
    /// `127.0.0.1:27123` or `10.0.0.5:8080`.
    pub address: String,
}

/// One server the router knows, as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerView {
    pub name: String,
    pub address: String,
    /// `UP, check L7OK (...), 0 sessions`.
    pub state: String,
    pub weight: u64,
}

/// What a router checked before any change (`--dry-run` shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preflight {
    /// `haproxy backend app via /run/haproxy/admin.sock`.
    pub target: String,
    /// What was checked and found fine.
    pub checked: String,
    pub servers: Vec<ServerView>,
    /// Where the router's running state is saved for its next reload
    /// (HAProxy's server-state file), when configured.
    pub state_file: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("router {router}: {action} failed: {reason}")]
    Failed {
        router: String,
        action: String,
        reason: String,
    },
    /// The router answered, and its answer says it is set up wrongly for a
    /// swap (no such backend, socket not at level admin, a static balance
    /// algorithm): the user fixes the router or tuner's config.
    #[error("router {router}: {action} failed: {reason}")]
    Misconfigured {
        router: String,
        action: String,
        reason: String,
    },
    #[error("router {router}: {what} did not happen within {timeout:?}")]
    Timeout {
        router: String,
        what: String,
        timeout: Duration,
    },
}

#[async_trait]
pub trait Router: Send + Sync {
    /// `haproxy` or `none`, for plans and messages.
    fn kind(&self) -> &'static str;
    /// Whether `drain` really waits for blue's in-flight requests and stops
    /// its traffic. If so, blue can be removed at once afterwards (`rm -f`);
    /// if not, blue must be stopped gracefully with its own stop signal.
    fn drains(&self) -> bool {
        false
    }
    /// Whether the router checks green itself before it sends it traffic
    /// (`wait_healthy` waits for its own checks). If not, whatever routes
    /// to the service (Docker's DNS, Traefik, Compose's `service_healthy`)
    /// may go by Docker's health status alone, so blue must not leave
    /// before Docker itself says green is `healthy`.
    fn checks_green(&self) -> bool {
        false
    }
    /// Checks, before anything changes, that the router can do a swap;
    /// `None` when there is nothing to check.
    async fn preflight(&self) -> Result<Option<Preflight>, RouterError> {
        Ok(None)
    }
    /// Register `green` without giving it traffic, and let the router's own
    /// health checks run against it.
    async fn add_standby(&self, green: &Backend) -> Result<(), RouterError>;
    /// Wait until the router's checks see `green` as up.
    async fn wait_healthy(&self, green: &Backend, timeout: Duration) -> Result<(), RouterError>;
    /// Start sending new requests to `green`.
    async fn promote(&self, green: &Backend) -> Result<(), RouterError>;
    /// Stop sending new requests to `blue` and wait (up to `timeout`) for its
    /// in-flight requests to finish.
    async fn drain(&self, blue: &Backend, timeout: Duration) -> Result<(), RouterError>;
    /// Forget `blue` once it is drained.
    async fn retire(&self, blue: &Backend) -> Result<(), RouterError>;
    /// Once blue's container is gone: give blue's server (`slot`: the
    /// service's name in the router's own config, with green's address)
    /// green's traffic, then forget the `standby` server green was checked
    /// and promoted under. The service keeps one stable server name across
    /// deploys, which is what a reload of the router finds again. Routers
    /// without servers do nothing.
    async fn rehome(&self, _slot: &Backend, _standby: &Backend) -> Result<(), RouterError> {
        Ok(())
    }
    /// Writes the router's running state where the router reads it back when
    /// it reloads; the path written, or `None` when the router keeps no such
    /// state or none is configured.
    async fn save_state(&self) -> Result<Option<String>, RouterError> {
        Ok(None)
    }
    /// Undo `add_standby`/`promote` for a green that will not be kept.
    async fn remove(&self, green: &Backend) -> Result<(), RouterError>;
}
