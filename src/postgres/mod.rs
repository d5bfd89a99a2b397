//! The safe applier of PostgreSQL settings.
//!
//! A change is looked up in the live `pg_settings`, validated (type, unit,
//! range, allowed values, durability), written with `ALTER SYSTEM`, made
//! effective by a reload or a restart according to the live
//! `pg_settings.context`, and confirmed by reading it back. Anything wrong
//! with the input is refused before the server is touched.
//!
//! Files: `catalog` (pg_settings), `units` and `value` (validation), `sql`
//! (quoting), `safety` (durability), `plan` (what would happen), `client`
//! (the real [`Database`]), `restart_checks` (what a restart needs first),
//! `restart`/`docker` (restarters; the container one goes through
//! `runtime::Runtime`).

mod apply;
mod catalog;
mod client;
mod docker;
mod error;
mod plan;
mod restart;
mod restart_checks;
mod safety;
mod sql;
pub mod units;
mod value;

use async_trait::async_trait;

pub use catalog::{Context, SettingInfo, VarType};
pub use client::{PgDatabase, PgOptions};
pub use docker::DockerRestarter;
pub use error::PostgresError;
pub use plan::{Activation, Applied, Plan, PlanAction};
pub use restart::{ArgvRestarter, Restarter};
pub use sql::quote_literal;
pub use value::{validate, Normalized, Validated};

/// One setting to move to one value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SettingChange {
    pub name: String,
    pub value: String,
    /// Allow values that weaken durability (`fsync = off`, ...). They are
    /// still logged as warnings.
    pub allow_unsafe: bool,
}

impl SettingChange {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> SettingChange {
        SettingChange {
            name: name.into(),
            value: value.into(),
            allow_unsafe: false,
        }
    }
}

/// What the tune cycle needs from PostgreSQL, and nothing more, so the
/// cycle can be tested against an in-memory fake.
#[async_trait]
pub trait Database: Send + Sync {
    /// The live value of a setting, with its unit, for the audit trail.
    async fn current(&self, name: &str) -> Result<SettingInfo, PostgresError>;

    /// Validates a change and says what applying it would do (the SQL,
    /// reload or restart), without changing anything. Refuses exactly what
    /// [`Database::apply`] would refuse.
    async fn plan(&self, change: &SettingChange) -> Result<Plan, PostgresError>;

    /// Applies a change, makes it effective and confirms it.
    async fn apply(&self, change: &SettingChange) -> Result<Applied, PostgresError>;

    /// `ALTER SYSTEM RESET name`: back to the value from `postgresql.conf`
    /// or the built-in default; reloads or restarts as needed.
    async fn reset(&self, name: &str) -> Result<Applied, PostgresError>;

    /// Every setting whose value is not the built-in default, for backups.
    async fn non_default_settings(&self) -> Result<Vec<SettingInfo>, PostgresError>;

    /// `CHECKPOINT`: starts a WAL measurement window at a known point of the
    /// checkpoint cycle. Needs a superuser or `pg_checkpoint` (PG 15+).
    async fn checkpoint(&self) -> Result<(), PostgresError>;

    /// Transactions committed or rolled back in every database since the
    /// statistics were reset: how much work a WAL window has seen.
    async fn transactions(&self) -> Result<u64, PostgresError>;
}
