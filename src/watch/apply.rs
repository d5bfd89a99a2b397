//! Making one adjustment as a journaled step: under the service's lock
//! (the lock deploy takes), the intent with the old and new limits is in
//! the one journal before the engine is touched, then the live update
//! (memory and swap together, no restart, refused below current usage),
//! the Compose override so `docker-compose up -d` keeps the limits, and
//! the outcome. `recover` finishes or undoes what a killed run left open.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::policy::Adjustment;
use super::source::Managed;
use crate::config::units::format_bytes;
use crate::journal::changelog::{self, ChangelogEntry};
use crate::journal::{Journal, JournalError, Locks, Target};
use crate::runtime::compose_override::ServiceLimits;
use crate::runtime::{DockerError, Limits, OverrideError, OverrideFile, Runtime};

/// The journal's module name for watch's entries.
pub const MODULE: &str = "watch";

/// Test hook: milliseconds to wait between the journaled intent and the
/// live update, so a test can signal or kill a run mid-adjustment.
/// Unset (always, outside tests) it does nothing.
pub const PAUSE_ENV: &str = "TUNER_WATCH_TEST_PAUSE_MS";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Entry {
    Intent {
        id: String,
        service: String,
        container_id: String,
        container: String,
        old: Limits,
        new: Limits,
        reason: String,
        at: DateTime<Utc>,
    },
    Outcome {
        id: String,
        outcome: Outcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Found applied after a crash and kept.
    RecoveredFinished,
    /// Found unapplied (or half-applied) after a crash and put back.
    RecoveredUndone,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{service}: {source}")]
    Engine {
        service: String,
        #[source]
        source: DockerError,
    },
    #[error("{service}: the live limits are changed but the Compose override is not: {source}")]
    Override {
        service: String,
        #[source]
        source: OverrideError,
    },
}

/// What an adjustment needs from the run.
pub struct Applier<'a> {
    pub runtime: &'a dyn Runtime,
    pub journal: &'a Journal,
    pub locks: &'a Locks,
    /// `compose.project_dir`, when the stack is a Compose project.
    pub compose_dir: Option<PathBuf>,
    pub changelog: PathBuf,
}

/// How an adjustment ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Applied {
    Done {
        id: String,
        old: Limits,
        new: Limits,
    },
    /// Another action holds the service (a deploy): nothing was done.
    Busy { holder: String },
    /// The engine refused; nothing changed.
    Failed { id: Option<String>, error: String },
}

impl Applier<'_> {
    pub async fn apply(
        &self,
        m: &Managed,
        adj: &Adjustment,
        now: DateTime<Utc>,
    ) -> Result<Applied, ApplyError> {
        let target = Target::Service(m.service.clone());
        let id = format!("watch-{}-{}", now.format("%Y%m%dT%H%M%S%3fZ"), m.service);
        let _lock = match self
            .locks
            .acquire(&target, &format!("watch adjustment {id}"))
        {
            Ok(l) => l,
            Err(JournalError::Locked { holder, pid, .. }) => {
                return Ok(Applied::Busy {
                    holder: format!("{holder} (PID {pid})"),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let engine = |source| ApplyError::Engine {
            service: m.service.clone(),
            source,
        };
        let old = self
            .runtime
            .inspect(&m.container_id)
            .await
            .map_err(engine)?
            .limits;
        let new = old.resized(
            adj.cpus.map(|c| c.to).unwrap_or(old.cpus),
            adj.memory.map(|c| c.to).unwrap_or(old.memory),
        );
        if new.memory < old.memory {
            if let Err(e) = self
                .runtime
                .check_memory_fits(&m.container_id, new.memory)
                .await
            {
                return Ok(Applied::Failed {
                    id: None,
                    error: e.to_string(),
                });
            }
        }
        self.journal.append_as(
            MODULE,
            Some(&target),
            &Entry::Intent {
                id: id.clone(),
                service: m.service.clone(),
                container_id: m.container_id.clone(),
                container: m.container_name.clone(),
                old,
                new,
                reason: adj.reason.clone(),
                at: now,
            },
        )?;
        test_pause().await;
        let cpus = adj.cpus.map(|c| c.to);
        let memory = adj.memory.map(|c| c.to);
        if let Err(e) = self
            .runtime
            .update_limits(&m.container_id, cpus, memory)
            .await
        {
            self.outcome(&target, &id, Outcome::Failed, Some(e.to_string()))?;
            return Ok(Applied::Failed {
                id: Some(id),
                error: e.to_string(),
            });
        }
        self.persist(&m.service, &new)
            .map_err(|source| ApplyError::Override {
                service: m.service.clone(),
                source,
            })?;
        self.outcome(&target, &id, Outcome::Succeeded, None)?;
        self.record(m, adj, &id, &old, &new, now)?;
        Ok(Applied::Done { id, old, new })
    }

    fn outcome(
        &self,
        target: &Target,
        id: &str,
        outcome: Outcome,
        error: Option<String>,
    ) -> Result<(), JournalError> {
        self.journal.append_as(
            MODULE,
            Some(target),
            &Entry::Outcome {
                id: id.to_string(),
                outcome,
                error,
                at: Utc::now(),
            },
        )
    }

    /// Writes the new limits into the Compose override file, when there is
    /// a Compose project: a later `up -d` recreates with them.
    fn persist(&self, service: &str, new: &Limits) -> Result<(), OverrideError> {
        let Some(dir) = &self.compose_dir else {
            return Ok(());
        };
        let file = OverrideFile::in_dir(dir);
        let text = file.with_limits(
            service,
            ServiceLimits {
                cpus: new.cpus,
                memory: new.memory,
                memory_swap: new.memory_swap,
            },
        )?;
        file.write(Some(&text))
    }

    fn record(
        &self,
        m: &Managed,
        adj: &Adjustment,
        id: &str,
        old: &Limits,
        new: &Limits,
        now: DateTime<Utc>,
    ) -> Result<(), JournalError> {
        changelog::append(
            &self.changelog,
            &ChangelogEntry {
                at: now,
                lever: format!(
                    "{} limits {} -> {}",
                    m.service,
                    old.describe(),
                    new.describe()
                ),
                goal: None,
                result: format!("✅ applied by tuner watch ({})", adj.direction().name()),
                details: vec![
                    format!("Reason: {}", adj.reason),
                    format!("Container: {}", m.container_name),
                    format!("Adjustment: {id}"),
                ],
            },
        )
    }

    /// Finishes or undoes every adjustment a killed run left without an
    /// outcome: kept when the container already has the new limits (the
    /// override is written again), put back to the old ones otherwise.
    pub async fn recover(&self) -> Result<Vec<String>, ApplyError> {
        let entries: Vec<Entry> = self.journal.entries_of(MODULE, None)?;
        let mut open: Vec<Entry> = Vec::new();
        for e in entries {
            match &e {
                Entry::Intent { .. } => open.push(e),
                Entry::Outcome { id, .. } => {
                    open.retain(|i| !matches!(i, Entry::Intent { id: x, .. } if x == id))
                }
            }
        }
        let mut notes = Vec::new();
        for e in open {
            let Entry::Intent {
                id,
                service,
                container_id,
                old,
                new,
                ..
            } = e
            else {
                continue;
            };
            let target = Target::Service(service.clone());
            let _lock = self.locks.acquire(&target, &format!("recovery of {id}"))?;
            let engine = |source| ApplyError::Engine {
                service: service.clone(),
                source,
            };
            let live = match self
                .runtime
                .try_inspect(&container_id)
                .await
                .map_err(engine)?
            {
                Some(c) => c.limits,
                None => {
                    self.outcome(
                        &target,
                        &id,
                        Outcome::RecoveredUndone,
                        Some("container gone".into()),
                    )?;
                    notes.push(format!(
                        "{id}: {service}'s container is gone; nothing to finish"
                    ));
                    continue;
                }
            };
            if live.same_size(&new) {
                self.persist(&service, &new)
                    .map_err(|source| ApplyError::Override {
                        service: service.clone(),
                        source,
                    })?;
                self.outcome(&target, &id, Outcome::RecoveredFinished, None)?;
                notes.push(format!(
                    "{id}: {service} already had {}; kept",
                    new.describe()
                ));
            } else {
                if !live.same_size(&old) {
                    self.runtime
                        .update_limits(&container_id, Some(old.cpus), Some(old.memory))
                        .await
                        .map_err(engine)?;
                }
                self.outcome(&target, &id, Outcome::RecoveredUndone, None)?;
                notes.push(format!(
                    "{id}: {service} was not resized (interrupted); it keeps {}",
                    old.describe()
                ));
            }
        }
        Ok(notes)
    }
}

async fn test_pause() {
    let Some(ms) = std::env::var(PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// Memory in words for tables.
pub fn bytes(b: u64) -> String {
    if b == 0 {
        "-".into()
    } else {
        format_bytes(b)
    }
}
