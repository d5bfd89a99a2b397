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
//! `postgresql.auto.conf` entry (or its absence) is journaled in the one
//! journal (`.tuner/journal.jsonl`, module `postgres`), and the rollback to
//! that point writes it back. Versions before the one journal kept it under
//! `.tuner/pg-original/`, still read.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::journal::{Journal, Target as JournalTarget};
use crate::levers::catalog::{Lever, Target};
use crate::levers::port::{BackendError, Disruption, LeverBackend, Move, Plan};
use crate::postgres::{Activation, Database, PgDatabase, PostgresError, SettingChange};

pub struct PostgresLevers {
    pub db: PgDatabase,
    /// `.tuner/`: where each setting's pre-tuning auto.conf entry is kept.
    pub state_dir: PathBuf,
}

/// A setting as tuning first found it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Original {
    /// The live value (`SHOW` form) the first change moved away from.
    from: Option<String>,
    /// Its `postgresql.auto.conf` entry then; `None`: there was none.
    entry: Option<String>,
}

/// This backend's entries in the one journal.
const MODULE: &str = "postgres";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum OriginalEntry {
    /// Saved before tuning first touched `parameter`.
    Original {
        parameter: String,
        #[serde(flatten)]
        original: Original,
    },
    /// `parameter` is back at its original: the next change records afresh.
    Restored { parameter: String },
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

    fn journal(&self) -> Journal {
        Journal::new(self.state_dir.join(crate::journal::FILE))
    }

    fn legacy_path(&self, name: &str) -> PathBuf {
        self.state_dir
            .join("pg-original")
            .join(format!("{}.json", name.to_ascii_lowercase()))
    }

    /// The setting as tuning first found it, if that is still on record:
    /// the journal's last word on it, else an older version's file.
    fn original(&self, name: &str) -> Result<Option<Original>, String> {
        let key = name.to_ascii_lowercase();
        let entries: Vec<OriginalEntry> = self
            .journal()
            .entries_of(MODULE, Some(&JournalTarget::Postgres))
            .map_err(|e| e.to_string())?;
        let last = entries.into_iter().rev().find(|e| match e {
            OriginalEntry::Original { parameter, .. } | OriginalEntry::Restored { parameter } => {
                *parameter == key
            }
        });
        match last {
            Some(OriginalEntry::Original { original, .. }) => Ok(Some(original)),
            Some(OriginalEntry::Restored { .. }) => Ok(None),
            None => Ok(std::fs::read(self.legacy_path(name))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())),
        }
    }

    fn record(&self, entry: &OriginalEntry) -> Result<(), String> {
        self.journal()
            .append_as(MODULE, Some(&JournalTarget::Postgres), entry)
            .map_err(|e| e.to_string())
    }

    /// Journals the setting's auto.conf entry before the first change to
    /// it; later changes keep the first record (it is the pre-tuning state).
    async fn save_original(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        let (name, _) = parameter(lever)?;
        let failed = |reason: String| BackendError::Failed {
            lever: lever.name.clone(),
            reason,
        };
        if self.original(name).map_err(failed)?.is_some() {
            return Ok(());
        }
        let entry = self
            .db
            .auto_conf_value(name)
            .await
            .map_err(|e| backend_error(lever, e))?;
        self.record(&OriginalEntry::Original {
            parameter: name.to_ascii_lowercase(),
            original: Original {
                from: mv.from.clone(),
                entry,
            },
        })
        .map_err(failed)
    }

    /// The move that puts the pre-tuning auto.conf entry back, when `mv`
    /// returns to the value tuning first found (and that was recorded).
    fn back_to_original(&self, lever: &Lever, mv: &Move) -> Option<Move> {
        let (name, _) = parameter(lever).ok()?;
        let original = self.original(name).ok()??;
        let same = match (&original.from, &mv.from) {
            (Some(a), Some(b)) => crate::levers::choose::same_value(lever, a, b),
            (None, None) => true,
            _ => false,
        };
        same.then(|| Move {
            from: mv.to.clone(),
            to: original.entry,
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
        if let Some(back) = self.back_to_original(lever, mv) {
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
        if let Some(back) = self.back_to_original(lever, mv) {
            self.write(lever, &back).await?;
            // Back to the pre-tuning state: the next change records afresh.
            let (name, _) = parameter(lever)?;
            self.record(&OriginalEntry::Restored {
                parameter: name.to_ascii_lowercase(),
            })
            .map_err(|reason| BackendError::Failed {
                lever: lever.name.clone(),
                reason,
            })?;
            let _ = std::fs::remove_file(self.legacy_path(name));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(dir: &std::path::Path) -> PostgresLevers {
        let db = PgDatabase::new(
            "postgresql://u@127.0.0.1:1/db",
            None,
            crate::postgres::PgOptions::default(),
        )
        .unwrap();
        PostgresLevers {
            db,
            state_dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn the_original_lives_in_the_one_journal_until_restored() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path());
        assert!(b.original("max_wal_size").unwrap().is_none());
        b.record(&OriginalEntry::Original {
            parameter: "max_wal_size".into(),
            original: Original {
                from: Some("1GB".into()),
                entry: None,
            },
        })
        .unwrap();
        let o = b.original("MAX_WAL_SIZE").unwrap().unwrap();
        assert_eq!(o.from.as_deref(), Some("1GB"));
        assert!(o.entry.is_none());
        assert!(b.original("wal_buffers").unwrap().is_none());
        b.record(&OriginalEntry::Restored {
            parameter: "max_wal_size".into(),
        })
        .unwrap();
        assert!(b.original("max_wal_size").unwrap().is_none());
        assert!(!dir.path().join("pg-original").exists(), "no second store");
    }

    #[test]
    fn an_original_an_older_version_saved_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path());
        std::fs::create_dir_all(dir.path().join("pg-original")).unwrap();
        std::fs::write(
            dir.path().join("pg-original/wal_buffers.json"),
            r#"{"from":"4MB","entry":"'4MB'"}"#,
        )
        .unwrap();
        let o = b.original("wal_buffers").unwrap().unwrap();
        assert_eq!(o.entry.as_deref(), Some("'4MB'"));
    }
}
