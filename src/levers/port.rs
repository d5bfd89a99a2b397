//! The port every lever kind implements: read a lever's live value, plan a
//! move, apply and revert it. One backend per kind lives in `backends/`;
//! unit tests use in-memory fakes.

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::catalog::Lever;

/// One lever moved from one value to another. `None` means "the server's
/// default / unset" (a rollback to `None` is an `ALTER SYSTEM RESET`, an
/// env key removed, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Move {
    pub fn inverse(&self) -> Move {
        Move {
            from: self.to.clone(),
            to: self.from.clone(),
        }
    }
}

/// How disruptive applying a plan is, as the backend determined it from the
/// live system (for postgres: `pg_settings.context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disruption {
    /// Takes effect on its own (a live `docker update`, a command).
    None,
    /// `SELECT pg_reload_conf()`.
    Reload,
    /// A service or container is recreated (env change, Compose up).
    Recreate,
    /// The database restarts.
    Restart,
}

impl fmt::Display for Disruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disruption::None => "live",
            Disruption::Reload => "reload",
            Disruption::Recreate => "recreate",
            Disruption::Restart => "restart",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_need_comes_from_pg_context() {
        assert_eq!(
            Disruption::from_pg_context("postmaster"),
            Ok(Disruption::Restart)
        );
        assert_eq!(
            Disruption::from_pg_context("sighup"),
            Ok(Disruption::Reload)
        );
        assert_eq!(
            Disruption::from_pg_context("superuser"),
            Ok(Disruption::Reload)
        );
        assert!(Disruption::from_pg_context("internal").is_err());
    }
}

impl Disruption {
    /// What a change to a setting of this `pg_settings.context` takes.
    /// `internal` settings cannot be changed at all.
    pub fn from_pg_context(context: &str) -> Result<Disruption, String> {
        match context {
            "postmaster" => Ok(Disruption::Restart),
            "sighup" | "superuser" | "user" | "backend" | "superuser-backend" => {
                Ok(Disruption::Reload)
            }
            "internal" => Err("a read-only (internal) setting; it cannot be changed".into()),
            other => Err(format!("unknown pg_settings.context {other:?}")),
        }
    }
}

/// The ordered steps applying one move will take, built before anything
/// changes. `--dry-run` prints it; the real run executes the same thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Human-readable steps: `ALTER SYSTEM SET max_wal_size = '4GB'`,
    /// `SELECT pg_reload_conf()`, `docker update --memory 1G postgres`, ...
    pub steps: Vec<String>,
    pub disruption: Disruption,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The live system says this move cannot be made (unknown parameter, a
    /// value out of range, no such service). The lever is skipped.
    #[error("{lever}: {reason}")]
    Rejected { lever: String, reason: String },
    /// The operation failed or its outcome is unknown.
    #[error("{lever}: {reason}")]
    Failed { lever: String, reason: String },
}

/// Reads and moves levers on the live system.
///
/// Contract: `apply` must be idempotent (setting a lever to the value it
/// already has is a no-op success) because crash recovery may repeat it, and
/// it must confirm the change took effect (e.g. re-read `pg_settings`) before
/// returning `Ok`.
#[async_trait]
pub trait LeverBackend: Send + Sync {
    /// The live value (`SHOW param`, the container's limit, the env value);
    /// `None` when unset.
    async fn current(&self, lever: &Lever) -> Result<Option<String>, BackendError>;
    /// The steps `apply(lever, mv)` would take, with the disruption read from
    /// the live system. Must not change anything.
    async fn plan(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError>;
    /// Executes the plan for `mv`.
    async fn apply(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError>;
    /// The steps `revert(lever, mv)` would take; must match `revert`.
    async fn plan_revert(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        self.plan(lever, &mv.inverse()).await
    }
    /// Undoes `mv` (restores `mv.from`). The same path as `apply`, reversed;
    /// override only when undo differs (a command lever's rollback argv).
    async fn revert(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.apply(lever, &mv.inverse()).await
    }
    /// The non-default PostgreSQL settings, as text, for `backups/<ts>/`.
    async fn settings_snapshot(&self) -> Result<String, BackendError>;
    /// Files this lever edits (env file, Compose override), backed up before
    /// the first change of a run.
    fn files_touched(&self, lever: &Lever) -> Vec<PathBuf>;
    /// Forces a database checkpoint so a WAL window starts at the same point
    /// of the checkpoint cycle as the one it is compared with. `Ok(false)`:
    /// this backend has no database to checkpoint.
    async fn checkpoint(&self) -> Result<bool, BackendError> {
        Ok(false)
    }
    /// The database's transaction counter (`None`: no database), read with
    /// each sample of a window opened by a CHECKPOINT, so two windows can be
    /// compared at the same amount of work since it, not only the same time.
    async fn transactions(&self) -> Result<Option<u64>, BackendError> {
        Ok(None)
    }
}

/// Where a lever that has no readable live value (a command) finds it: the
/// `to` of its last kept change, as the change ledger records it.
pub trait KeptValues: Send + Sync {
    fn last_kept(&self, lever: &str) -> Result<Option<String>, String>;
}
