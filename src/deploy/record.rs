//! Deploy's entries in the one journal (`<state_dir>/journal.jsonl`, module
//! `deploy`, target the service), fsynced per entry. A `Started` entry
//! carries everything recovery needs (blue's id and name, green's name and
//! label, both limits, the override file before and after); a `Phase` entry
//! is written before each phase starts; `Finished` closes the deploy.
//!
//! Versions before the one journal kept a file per service under
//! `<state_dir>/deploy/`; it is still read (first), so a deploy such a
//! version left open is recovered, but never written.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Phase;
use crate::journal::{Journal, JournalError, Locks, Target, TargetLock};
use crate::runtime::Limits;

/// Label put on green so recovery finds it under any name.
pub const DEPLOY_ID_LABEL: &str = "tuner.deploy.id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Deploy,
    Rollback,
    InPlace,
    /// A Swarm service update (Swarm's own start-first rollout).
    Swarm,
    /// Swarm's rollback to the service's previous spec.
    SwarmRollback,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
            Kind::InPlace => "in-place",
            Kind::Swarm => "swarm",
            Kind::SwarmRollback => "swarm-rollback",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployRecord {
    pub id: String,
    pub kind: Kind,
    pub service: String,
    pub project: Option<String>,
    pub blue_id: String,
    pub blue_name: String,
    pub green_name: String,
    pub old: Limits,
    pub new: Limits,
    /// docker-compose.override.yml of the project, when it is a Compose service.
    pub override_path: Option<PathBuf>,
    /// Its text before the deploy (`None`: there was no file).
    pub override_before: Option<String>,
    /// Its text once the deploy is done.
    pub override_after: Option<String>,
    /// Router-side names of blue and green.
    pub router_blue: Option<String>,
    pub router_green: Option<String>,
    pub started_at: DateTime<Utc>,
}

/// A deploy of a service with several replicas: one swap per replica, in
/// this order, each journaled as a deploy of its own between the rollout's
/// start and finish entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutRecord {
    pub id: String,
    pub kind: Kind,
    pub service: String,
    /// The replicas' container names, which a swap keeps.
    pub replicas: Vec<String>,
    pub old: Limits,
    pub new: Limits,
    /// The override file before the rollout (`None`: there was none).
    pub override_before: Option<String>,
    /// The health probe asked for, so a recovery probes the same way.
    pub health_path: Option<String>,
    pub health_port: Option<u16>,
    pub started_at: DateTime<Utc>,
}

/// One rollout as read back from the journal.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutHistory {
    pub record: RolloutRecord,
    /// Ids of the deploys (swaps) journaled inside it, rollbacks included.
    pub members: Vec<String>,
    pub outcome: Option<Outcome>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Done by the run that started it.
    Succeeded,
    /// Failed; blue left as it was.
    Failed,
    /// Interrupted, then undone by recovery (blue kept).
    Undone,
    /// Interrupted, then finished by recovery (green kept).
    Completed,
}

impl Outcome {
    pub fn kept_new_limits(self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::Completed)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Entry {
    Started {
        record: Box<DeployRecord>,
    },
    Phase {
        id: String,
        phase: Phase,
        at: DateTime<Utc>,
    },
    /// One measurement of a promotion gate's check.
    Measured {
        id: String,
        check: String,
        value: Option<f64>,
        verdict: String,
        at: DateTime<Utc>,
    },
    Finished {
        id: String,
        outcome: Outcome,
        phase: Option<Phase>,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// A rollout over several replicas begins (before its first swap).
    RolloutStarted {
        rollout: Box<RolloutRecord>,
    },
    RolloutFinished {
        id: String,
        outcome: Outcome,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
}

/// One deploy as read back from the journal.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub record: DeployRecord,
    pub last_phase: Option<Phase>,
    /// A live update was journaled: an in-place deploy or rollback, whose
    /// record says only `deploy` or `rollback`.
    #[serde(skip)]
    pub live_update: bool,
    pub outcome: Option<Outcome>,
    pub failed_phase: Option<Phase>,
    pub reason: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl History {
    pub fn duration_secs(&self) -> Option<f64> {
        self.finished_at
            .map(|f| (f - self.record.started_at).num_milliseconds() as f64 / 1000.0)
    }
}

/// Marks deploy's entries in the shared journal.
pub const MODULE: &str = "deploy";

/// The journal entries and the lock of one service.
#[derive(Debug, Clone)]
pub struct ServiceJournal {
    journal: Journal,
    legacy: Journal,
    target: Target,
    locks: Locks,
}

impl ServiceJournal {
    pub fn new(state_dir: &Path, service: &str) -> ServiceJournal {
        let key: String = service
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        ServiceJournal {
            journal: Journal::new(state_dir.join(crate::journal::FILE)),
            legacy: Journal::new(state_dir.join("deploy").join(format!("{key}.jsonl"))),
            target: Target::Service(service.to_string()),
            locks: Locks::new(state_dir, "tuner deploy"),
        }
    }

    pub fn path(&self) -> &Path {
        self.journal.path()
    }

    /// The locks this journal takes its service with: a step of the same
    /// command (restoring another action's open change on the service) may
    /// take the service again through them.
    pub fn locks(&self) -> &Locks {
        &self.locks
    }

    /// The service alone: no other deploy of it, and no tune change of
    /// its limits or env, while this is held.
    pub fn lock(&self) -> Result<TargetLock, JournalError> {
        self.locks
            .acquire(&self.target, &format!("a deploy of {}", self.target))
    }

    fn append(&self, entry: &Entry) -> Result<(), JournalError> {
        self.journal.append_as(MODULE, Some(&self.target), entry)
    }

    pub fn started(&self, record: &DeployRecord) -> Result<(), JournalError> {
        self.append(&Entry::Started {
            record: Box::new(record.clone()),
        })
    }

    pub fn phase(&self, id: &str, phase: Phase) -> Result<(), JournalError> {
        self.append(&Entry::Phase {
            id: id.to_string(),
            phase,
            at: Utc::now(),
        })?;
        super::crash::after_journal(phase);
        Ok(())
    }

    /// Journals one measured value of a promotion gate.
    pub fn measured(
        &self,
        id: &str,
        check: &str,
        value: Option<f64>,
        verdict: &str,
    ) -> Result<(), JournalError> {
        self.append(&Entry::Measured {
            id: id.to_string(),
            check: check.to_string(),
            value,
            verdict: verdict.to_string(),
            at: Utc::now(),
        })
    }

    pub fn finished(
        &self,
        id: &str,
        outcome: Outcome,
        phase: Option<Phase>,
        reason: Option<String>,
    ) -> Result<(), JournalError> {
        self.append(&Entry::Finished {
            id: id.to_string(),
            outcome,
            phase,
            reason,
            at: Utc::now(),
        })
    }

    pub fn rollout_started(&self, rollout: &RolloutRecord) -> Result<(), JournalError> {
        self.append(&Entry::RolloutStarted {
            rollout: Box::new(rollout.clone()),
        })
    }

    pub fn rollout_finished(
        &self,
        id: &str,
        outcome: Outcome,
        reason: Option<String>,
    ) -> Result<(), JournalError> {
        self.append(&Entry::RolloutFinished {
            id: id.to_string(),
            outcome,
            reason,
            at: Utc::now(),
        })
    }

    fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        let mut entries = self.legacy.entries::<Entry>()?;
        entries.extend(
            self.journal
                .entries_of::<Entry>(MODULE, Some(&self.target))?,
        );
        Ok(entries)
    }

    /// Every deploy, oldest first.
    pub fn history(&self) -> Result<Vec<History>, JournalError> {
        Ok(fold(self.entries()?))
    }

    /// Every rollout over replicas, oldest first.
    pub fn rollouts(&self) -> Result<Vec<RolloutHistory>, JournalError> {
        Ok(fold_rollouts(self.entries()?))
    }

    /// The rollout that was started and never finished, if any.
    pub fn open_rollout(&self) -> Result<Option<RolloutHistory>, JournalError> {
        Ok(self
            .rollouts()?
            .into_iter()
            .rev()
            .find(|r| r.outcome.is_none()))
    }

    /// The last deploy whose new limits were kept, for `deploy rollback`:
    /// a swap inside a rollout that did not succeed as a whole (a replica
    /// failed, and the ones done were swapped back) does not count.
    pub fn last_kept(&self) -> Result<Option<History>, JournalError> {
        let entries = self.entries()?;
        let unkept: Vec<String> = fold_rollouts(entries.clone())
            .into_iter()
            .filter(|r| r.outcome != Some(Outcome::Succeeded))
            .flat_map(|r| r.members)
            .collect();
        Ok(fold(entries).into_iter().rev().find(|h| {
            h.outcome.is_some_and(|o| o.kept_new_limits()) && !unkept.contains(&h.record.id)
        }))
    }

    /// The deploy that was started and never finished, if any.
    pub fn open(&self) -> Result<Option<History>, JournalError> {
        Ok(self
            .history()?
            .into_iter()
            .rev()
            .find(|h| h.outcome.is_none()))
    }
}

/// Folds journal entries into one `History` per deploy.
pub fn fold(entries: Vec<Entry>) -> Vec<History> {
    let mut out: Vec<History> = Vec::new();
    for entry in entries {
        match entry {
            Entry::Started { record } => out.push(History {
                record: *record,
                last_phase: None,
                live_update: false,
                outcome: None,
                failed_phase: None,
                reason: None,
                finished_at: None,
            }),
            Entry::Phase { id, phase, .. } => {
                if let Some(h) = out.iter_mut().rev().find(|h| h.record.id == id) {
                    h.last_phase = Some(phase);
                    h.live_update |= phase == Phase::LiveUpdate;
                }
            }
            Entry::Measured { .. }
            | Entry::RolloutStarted { .. }
            | Entry::RolloutFinished { .. } => {}
            Entry::Finished {
                id,
                outcome,
                phase,
                reason,
                at,
            } => {
                if let Some(h) = out.iter_mut().rev().find(|h| h.record.id == id) {
                    h.outcome = Some(outcome);
                    h.failed_phase = phase;
                    h.reason = reason;
                    h.finished_at = Some(at);
                }
            }
        }
    }
    out
}

/// Folds journal entries into one `RolloutHistory` per rollout; a deploy
/// started while a rollout is open is one of its members (the service's
/// lock keeps anything else out meanwhile).
pub fn fold_rollouts(entries: Vec<Entry>) -> Vec<RolloutHistory> {
    let mut out: Vec<RolloutHistory> = Vec::new();
    for entry in entries {
        match entry {
            Entry::RolloutStarted { rollout } => out.push(RolloutHistory {
                record: *rollout,
                members: Vec::new(),
                outcome: None,
                reason: None,
            }),
            Entry::Started { record } => {
                if let Some(r) = out.last_mut().filter(|r| r.outcome.is_none()) {
                    r.members.push(record.id.clone());
                }
            }
            Entry::RolloutFinished {
                id,
                outcome,
                reason,
                ..
            } => {
                if let Some(r) = out.iter_mut().rev().find(|r| r.record.id == id) {
                    r.outcome = Some(outcome);
                    r.reason = reason;
                }
            }
            Entry::Phase { .. } | Entry::Measured { .. } | Entry::Finished { .. } => {}
        }
    }
    out
}

/// A fresh deploy id: UTC time plus the PID, sortable and unique per host.
pub fn new_id() -> String {
    format!(
        "{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::CpuKnob;

    fn record(id: &str) -> DeployRecord {
        let l = Limits {
            cpus: 1.0,
            memory: 1 << 30,
            memory_swap: 2 << 30,
            knob: CpuKnob::NanoCpus,
        };
        DeployRecord {
            id: id.into(),
            kind: Kind::Deploy,
            service: "web".into(),
            project: None,
            blue_id: "b".into(),
            blue_name: "web".into(),
            green_name: "web_green".into(),
            old: l,
            new: l.resized(2.0, 2 << 30),
            override_path: None,
            override_before: None,
            override_after: None,
            router_blue: None,
            router_green: None,
            started_at: Utc::now(),
        }
    }

    #[test]
    fn open_deploy_is_the_unfinished_one() {
        let dir = tempfile::tempdir().unwrap();
        let j = ServiceJournal::new(dir.path(), "web");
        j.started(&record("1")).unwrap();
        j.phase("1", Phase::Prepare).unwrap();
        j.finished("1", Outcome::Succeeded, None, None).unwrap();
        assert!(j.open().unwrap().is_none());
        j.started(&record("2")).unwrap();
        j.phase("2", Phase::Health).unwrap();
        let open = j.open().unwrap().unwrap();
        assert_eq!(open.record.id, "2");
        assert_eq!(open.last_phase, Some(Phase::Health));
        assert_eq!(j.history().unwrap().len(), 2);
        // Another service's deploys are its own.
        let other = ServiceJournal::new(dir.path(), "api");
        assert!(other.history().unwrap().is_empty());
    }

    #[test]
    fn a_deploy_left_open_in_the_old_per_service_file_is_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let old = Journal::new(dir.path().join("deploy/web.jsonl"));
        old.append(&Entry::Started {
            record: Box::new(record("1")),
        })
        .unwrap();
        let j = ServiceJournal::new(dir.path(), "web");
        assert_eq!(j.open().unwrap().unwrap().record.id, "1");
        j.finished("1", Outcome::Undone, None, None).unwrap();
        assert!(j.open().unwrap().is_none());
    }
}
