//! `postgres` levers through the safe applier in `postgres/`.
//!
//! `current` is the live value in `SHOW` form. Rolling back to a value that
//! postgresql.conf or the built-in default already provides is an
//! `ALTER SYSTEM RESET`, so `postgresql.auto.conf` ends as it was before
//! tuning rather than with a pinned copy of the old value.
//!
//! The `SHOW` form cannot always tell: `wal_buffers = -1` (automatic) shows
//! as `1MB`, and after a crash before a restart the file and the server
//! disagree. So before tuning first touches a setting, its
//! `postgresql.auto.conf` entry (or its absence) is saved under
//! `.tuner/pg-original/`, and the rollback to that point writes it back.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::levers::catalog::{Lever, Target};
use crate::levers::port::{BackendError, Disruption, LeverBackend, Move, Plan};
use crate::postgres::{Activation, Database, PgDatabase, PostgresError, SettingChange};

pub struct PostgresLevers {
    pub db: PgDatabase,
    /// `.tuner/`: where each setting's pre-tuning auto.conf entry is kept.
    pub state_dir: PathBuf,
}

/// A setting as tuning first found it.
#[derive(Debug, Serialize, Deserialize)]
struct Original {
    /// The live value (`SHOW` form) the first change moved away from.
    from: Option<String>,
    /// Its `postgresql.auto.conf` entry then; `None`: there was none.
    entry: Option<String>,
}

fn parameter(lever: &Lever) -> Result<(&str, bool), BackendError> {
    match &lever.target {
        Target::Postgres {
            parameter,
            allow_unsafe,
        } => Ok((parameter.as_str(), *allow_unsafe)),
        _ => Err(BackendError::Rejected {
            lever: lever.name.clone(),
            reason: "not a postgres lever".into(),
        }),
    }
}

/// Refusals made before anything changed skip the lever; anything else is a
/// failure whose outcome the journal must settle.
fn backend_error(lever: &Lever, e: PostgresError) -> BackendError {
    use PostgresError::*;
    let reason = e.to_string();
    match e {
        UnknownParameter { .. }
        | InternalParameter { .. }
        | InvalidValue { .. }
        | ForbiddenCharacters { .. }
        | OutOfRange { .. }
        | NotInEnum { .. }
        | UnsafeValue { .. }
        | NoRestarter { .. }
        | ConfigFileErrors { .. }
        | MemoryLimit { .. } => BackendError::Rejected {
            lever: lever.name.clone(),
            reason,
        },
        _ => BackendError::Failed {
            lever: lever.name.clone(),
            reason,
        },
    }
}

fn to_plan(plan: &crate::postgres::Plan) -> Plan {
    let disruption = match plan.activation {
        Activation::Reload => Disruption::Reload,
        Activation::Restart => Disruption::Restart,
    };
    let mut steps = plan.steps();
    steps.extend(plan.warnings.iter().map(|w| format!("warning: {w}")));
    Plan { steps, disruption }
}

impl PostgresLevers {
    fn change(&self, lever: &Lever, value: &str) -> Result<SettingChange, BackendError> {
        let (name, allow_unsafe) = parameter(lever)?;
        Ok(SettingChange {
            name: name.to_string(),
            value: value.to_string(),
            allow_unsafe,
        })
    }

    fn original_path(&self, name: &str) -> PathBuf {
        self.state_dir
            .join("pg-original")
            .join(format!("{}.json", name.to_ascii_lowercase()))
    }

    /// Saves the setting's auto.conf entry before the first change to it;
    /// later changes keep the first record (it is the pre-tuning state).
    async fn save_original(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        let (name, _) = parameter(lever)?;
        let path = self.original_path(name);
        if path.exists() {
            return Ok(());
        }
        let entry = self
            .db
            .auto_conf_value(name)
            .await
            .map_err(|e| backend_error(lever, e))?;
        let original = Original {
            from: mv.from.clone(),
            entry,
        };
        let failed = |reason: String| BackendError::Failed {
            lever: lever.name.clone(),
            reason,
        };
        let json = serde_json::to_vec(&original).map_err(|e| failed(e.to_string()))?;
        crate::journal::write_atomic(&path, &json)
            .map_err(|e| failed(format!("saving {}: {e}", path.display())))
    }

    /// The move that puts the pre-tuning auto.conf entry back, when `mv`
    /// returns to the value tuning first found (and that was recorded).
    fn back_to_original(&self, lever: &Lever, mv: &Move) -> Option<(Move, PathBuf)> {
        let (name, _) = parameter(lever).ok()?;
        let path = self.original_path(name);
        let original: Original = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        let same = match (&original.from, &mv.from) {
            (Some(a), Some(b)) => crate::levers::choose::same_value(lever, a, b),
            (None, None) => true,
            _ => false,
        };
        same.then(|| {
            (
                Move {
                    from: mv.to.clone(),
                    to: original.entry,
                },
                path,
            )
        })
    }

    /// `ALTER SYSTEM SET` (or `RESET` for `to: None`) and activate it.
    async fn write(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        let (name, _) = parameter(lever)?;
        match &mv.to {
            Some(value) => self.db.apply(&self.change(lever, value)?).await,
            None => self.db.reset(name).await,
        }
        .map(|_| ())
        .map_err(|e| backend_error(lever, e))
    }

    /// RESET when restoring what the config files already give.
    async fn restores_by_reset(&self, lever: &Lever, mv: &Move) -> Result<bool, BackendError> {
        let (name, _) = parameter(lever)?;
        match &mv.from {
            None => Ok(true),
            Some(old) => self
                .db
                .is_fallback_value(name, old)
                .await
                .map_err(|e| backend_error(lever, e)),
        }
    }
}

#[async_trait]
impl LeverBackend for PostgresLevers {
    async fn current(&self, lever: &Lever) -> Result<Option<String>, BackendError> {
        let (name, _) = parameter(lever)?;
        let info = self
            .db
            .current(name)
            .await
            .map_err(|e| backend_error(lever, e))?;
        Ok(Some(info.human_value()))
    }

    async fn plan(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        let (name, _) = parameter(lever)?;
        let plan = match &mv.to {
            Some(value) => self.db.plan(&self.change(lever, value)?).await,
            None => self.db.plan_reset(name).await,
        }
        .map_err(|e| backend_error(lever, e))?;
        Ok(to_plan(&plan))
    }

    async fn apply(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.save_original(lever, mv).await?;
        self.write(lever, mv).await
    }

    async fn plan_revert(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        if let Some((back, _)) = self.back_to_original(lever, mv) {
            return self.plan(lever, &back).await;
        }
        if self.restores_by_reset(lever, mv).await? {
            let back = Move {
                from: mv.to.clone(),
                to: None,
            };
            return self.plan(lever, &back).await;
        }
        self.plan(lever, &mv.inverse()).await
    }

    async fn revert(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        if let Some((back, path)) = self.back_to_original(lever, mv) {
            self.write(lever, &back).await?;
            // Back to the pre-tuning state: the next change records afresh.
            let _ = std::fs::remove_file(path);
            return Ok(());
        }
        if self.restores_by_reset(lever, mv).await? {
            let back = Move {
                from: mv.to.clone(),
                to: None,
            };
            return self.write(lever, &back).await;
        }
        self.write(lever, &mv.inverse()).await
    }

    async fn settings_snapshot(&self) -> Result<String, BackendError> {
        let settings = self
            .db
            .non_default_settings()
            .await
            .map_err(|e| BackendError::Failed {
                lever: "postgres".into(),
                reason: e.to_string(),
            })?;
        let mut out = format!("# non-default settings of {}\n", self.db.target());
        for s in settings {
            let origin = s.sourcefile.clone().unwrap_or_else(|| s.source.clone());
            out.push_str(&format!(
                "{} = {}  # {}\n",
                s.name,
                crate::postgres::quote_literal(&s.human_value()),
                origin
            ));
        }
        Ok(out)
    }

    /// postgresql.auto.conf lives in the server's data dir; the applier
    /// keeps its own copy around restarts, and the settings snapshot is the backup.
    fn files_touched(&self, _lever: &Lever) -> Vec<PathBuf> {
        Vec::new()
    }

    async fn checkpoint(&self) -> Result<bool, BackendError> {
        self.db
            .checkpoint()
            .await
            .map(|()| true)
            .map_err(|e| BackendError::Failed {
                lever: "postgres".into(),
                reason: e.to_string(),
            })
    }

    async fn transactions(&self) -> Result<Option<u64>, BackendError> {
        self.db
            .transactions()
            .await
            .map(Some)
            .map_err(|e| BackendError::Failed {
                lever: "postgres".into(),
                reason: e.to_string(),
            })
    }
}
