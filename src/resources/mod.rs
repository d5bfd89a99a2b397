//! `tuner resources`: size a stack from the machine it runs on.
//!
//! Host facts (`host`), the score and tier (`score`), services.yaml
//! (`services`), limits and reservations per service (`allocate`),
//! PostgreSQL's memory settings from its container's limit (`pg`), the
//! override file to write (`write`), and the capacity plan from Prometheus
//! (`capacity`). The override is written under the services' locks, its
//! intent journaled first (`apply`).

pub mod allocate;
pub mod apply;
pub mod capacity;
pub mod host;
pub mod pg;
pub mod score;
pub mod services;
pub mod write;

#[cfg(test)]
mod services_tests;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use allocate::{allocate, AllocateError, Allocated, Allocation, LeftOut, Profile};
pub use capacity::CapacityPlan;
pub use host::{detect, HostFacts};
pub use pg::PgSetting;
pub use score::{score, Score, Tier};
pub use services::{ServicesError, ServicesFile};
pub use write::{KeyChange, OverridePlan};

/// PostgreSQL's settings for the memory its container is planned to get.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostgresPlan {
    pub service: String,
    pub memory: u64,
    pub max_connections: u32,
    pub settings: Vec<PgSetting>,
}

/// Connections work_mem is shared between, PostgreSQL's default.
pub const MAX_CONNECTIONS: u32 = 100;

/// The settings for the PostgreSQL service of `file`, if it is planned.
pub fn postgres_plan(
    alloc: &Allocation,
    file: &ServicesFile,
    host: &HostFacts,
) -> Option<PostgresPlan> {
    let spec = file.postgres()?;
    let planned = alloc.get(&spec.name)?;
    Some(PostgresPlan {
        service: spec.name.clone(),
        memory: planned.memory,
        max_connections: MAX_CONNECTIONS,
        settings: pg::settings(planned.memory, host.disk_free_bytes, MAX_CONNECTIONS),
    })
}

/// Everything `tuner resources` found and planned, and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub host: HostFacts,
    pub allocation: Allocation,
    pub postgres: Option<PostgresPlan>,
    /// `None` when no Compose project is configured.
    pub override_plan: Option<OverridePlan>,
    /// Services whose containers the next `docker-compose up -d` recreates.
    pub recreated: Vec<String>,
    /// Why a real run would refuse to write without `--force` (shown by
    /// `--dry-run`, which refuses nothing since it writes nothing).
    pub blocked: Vec<String>,
    pub dry_run: bool,
    pub written: bool,
    pub capacity: Option<CapacityPlan>,
}
