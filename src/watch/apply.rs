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

    pub(super) fn record(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fake::{FakeContainer, FakeRuntime, Op};
    use crate::watch::policy::Move;

    struct Setup {
        dir: tempfile::TempDir,
        runtime: FakeRuntime,
        journal: Journal,
        locks: Locks,
        id: String,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let runtime = FakeRuntime::new();
        let id = runtime.add(FakeContainer::serving("web-1", &[]));
        let journal = Journal::new(dir.path().join("journal.jsonl"));
        let locks = Locks::new(dir.path(), "tuner watch");
        Setup {
            dir,
            runtime,
            journal,
            locks,
            id,
        }
    }

    impl Setup {
        fn applier(&self) -> Applier<'_> {
            Applier {
                runtime: &self.runtime,
                journal: &self.journal,
                locks: &self.locks,
                compose_dir: Some(self.dir.path().to_path_buf()),
                changelog: self.dir.path().join("CHANGELOG_TUNING.md"),
            }
        }

        fn managed(&self) -> Managed {
            Managed {
                service: "web".into(),
                container_id: self.id.clone(),
                container_name: "web-1".into(),
            }
        }

        fn outcomes(&self) -> Vec<Outcome> {
            self.journal
                .entries_of::<Entry>(MODULE, None)
                .unwrap()
                .into_iter()
                .filter_map(|e| match e {
                    Entry::Outcome { outcome, .. } => Some(outcome),
                    Entry::Intent { .. } => None,
                })
                .collect()
        }
    }

    fn raise() -> Adjustment {
        Adjustment {
            cpus: Some(Move {
                from: 1.0,
                to: 1.25,
            }),
            memory: Some(Move {
                from: 256 << 20,
                to: 320 << 20,
            }),
            reason: "test".into(),
            oom: false,
        }
    }

    #[tokio::test]
    async fn an_adjustment_is_journaled_applied_and_persisted() {
        let s = setup();
        let done = s
            .applier()
            .apply(&s.managed(), &raise(), Utc::now())
            .await
            .unwrap();
        assert!(matches!(done, Applied::Done { .. }), "{done:?}");
        let live = s.runtime.get(&s.id).unwrap().limits;
        assert_eq!(
            (live.cpus, live.memory, live.memory_swap),
            (1.25, 320 << 20, 640 << 20)
        );
        assert_eq!(s.outcomes(), vec![Outcome::Succeeded]);
        let over =
            std::fs::read_to_string(s.dir.path().join("docker-compose.override.yml")).unwrap();
        assert!(over.contains("mem_limit: 320m"), "{over}");
    }

    #[tokio::test]
    async fn a_refused_update_is_journaled_as_failed_and_changes_nothing() {
        let s = setup();
        s.runtime.fail_once(Op::UpdateLimits, None);
        let r = s
            .applier()
            .apply(&s.managed(), &raise(), Utc::now())
            .await
            .unwrap();
        assert!(matches!(r, Applied::Failed { id: Some(_), .. }), "{r:?}");
        assert_eq!(s.runtime.get(&s.id).unwrap().limits.cpus, 1.0);
        assert_eq!(s.outcomes(), vec![Outcome::Failed]);
        assert!(!s.dir.path().join("docker-compose.override.yml").exists());
    }

    #[tokio::test]
    async fn a_service_held_by_a_deploy_is_left_alone() {
        let s = setup();
        let deploy = Locks::new(s.dir.path(), "tuner deploy");
        // A second `Locks` stands for another process: flock excludes it too.
        let _held = deploy
            .acquire(&Target::Service("web".into()), "deploy of web")
            .unwrap();
        let r = s
            .applier()
            .apply(&s.managed(), &raise(), Utc::now())
            .await
            .unwrap();
        assert!(matches!(r, Applied::Busy { .. }), "{r:?}");
        assert!(s.outcomes().is_empty());
    }

    #[tokio::test]
    async fn recovery_keeps_an_applied_change_and_undoes_an_unapplied_one() {
        let s = setup();
        let old = s.runtime.get(&s.id).unwrap().limits;
        let new = old.resized(1.25, 320 << 20);
        let intent = |id: &str| Entry::Intent {
            id: id.into(),
            service: "web".into(),
            container_id: s.id.clone(),
            container: "web-1".into(),
            old,
            new,
            reason: "test".into(),
            at: Utc::now(),
        };
        let target = Target::Service("web".into());
        // Killed before the update: put back (it already has the old limits).
        s.journal
            .append_as(MODULE, Some(&target), &intent("a"))
            .unwrap();
        let notes = s.applier().recover().await.unwrap();
        assert!(notes[0].contains("keeps"), "{notes:?}");
        // Killed after the update: kept, override written again.
        s.journal
            .append_as(MODULE, Some(&target), &intent("b"))
            .unwrap();
        s.runtime
            .update_limits(&s.id, Some(1.25), Some(320 << 20))
            .await
            .unwrap();
        let notes = s.applier().recover().await.unwrap();
        assert!(notes[0].contains("kept"), "{notes:?}");
        assert_eq!(
            s.outcomes(),
            vec![Outcome::RecoveredUndone, Outcome::RecoveredFinished]
        );
        assert!(s.dir.path().join("docker-compose.override.yml").exists());
        assert!(
            s.applier().recover().await.unwrap().is_empty(),
            "idempotent"
        );
    }
}
