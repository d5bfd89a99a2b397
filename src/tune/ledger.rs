//! Tune's entries in the write-ahead journal (`.tuner/journal.jsonl`) and
//! the state of every change folded from them.
//!
//! Order of writes for one change: `intent(apply)` is fsynced before the
//! backend is touched, then `outcome(apply)`, then `decision` (verdict, keep
//! or not), then — when not kept — `intent(revert)` and `outcome(revert)`.
//! Any change whose entries stop short of "kept" or "reverted" is
//! *unfinished*: its prior value must be restored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TuneError;
use crate::journal::Journal;
use crate::judge::Verdict;
use crate::levers::catalog::Lever;
use crate::levers::port::{KeptValues, Move};

/// Marks tune's entries: other modules may share the journal file.
const MODULE: &str = "tune";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Apply,
    Revert,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// Written and fsynced before the backend acts. `mv` is the change
    /// itself for both actions; a revert restores `mv.from`.
    Intent {
        change_id: String,
        action: Action,
        lever: Lever,
        mv: Move,
        at: DateTime<Utc>,
    },
    Outcome {
        change_id: String,
        action: Action,
        ok: bool,
        #[serde(default)]
        error: Option<String>,
        at: DateTime<Utc>,
    },
    Decision {
        change_id: String,
        verdict: Verdict,
        kept: bool,
        reason: String,
        at: DateTime<Utc>,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    module: String,
    #[serde(flatten)]
    entry: Entry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    NotStarted,
    /// Intent written, no outcome: the process died mid-step.
    Open,
    Done,
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Must be restored: a crash or failure left it half-done.
    Unfinished,
    Kept,
    RolledBack,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeState {
    pub change_id: String,
    pub lever: Lever,
    pub mv: Move,
    pub applied: StepState,
    pub reverted: StepState,
    pub decision: Option<(Verdict, bool)>,
    pub at: DateTime<Utc>,
}

impl ChangeState {
    pub fn status(&self) -> Status {
        match (&self.reverted, self.decision) {
            (StepState::Done, _) => Status::RolledBack,
            (StepState::NotStarted, Some((_, true))) if self.applied == StepState::Done => {
                Status::Kept
            }
            _ => Status::Unfinished,
        }
    }
}

/// The journal, seen through tune's entries.
#[derive(Debug, Clone)]
pub struct Ledger {
    journal: Journal,
}

impl Ledger {
    pub fn new(journal: Journal) -> Ledger {
        Ledger { journal }
    }

    pub fn record(&self, entry: Entry) -> Result<(), TuneError> {
        Ok(self.journal.append(&Envelope {
            module: MODULE.into(),
            entry,
        })?)
    }

    pub fn intent(
        &self,
        change_id: &str,
        action: Action,
        lever: &Lever,
        mv: &Move,
    ) -> Result<(), TuneError> {
        self.record(Entry::Intent {
            change_id: change_id.into(),
            action,
            lever: lever.clone(),
            mv: mv.clone(),
            at: Utc::now(),
        })
    }

    pub fn outcome(
        &self,
        change_id: &str,
        action: Action,
        result: &Result<(), String>,
    ) -> Result<(), TuneError> {
        self.record(Entry::Outcome {
            change_id: change_id.into(),
            action,
            ok: result.is_ok(),
            error: result.as_ref().err().cloned(),
            at: Utc::now(),
        })
    }

    pub fn decision(
        &self,
        change_id: &str,
        verdict: Verdict,
        reason: &str,
    ) -> Result<(), TuneError> {
        self.record(Entry::Decision {
            change_id: change_id.into(),
            verdict,
            kept: verdict.keeps(),
            reason: reason.into(),
            at: Utc::now(),
        })
    }

    /// Tune's entries in order; entries of other modules are skipped, but a
    /// tune entry that does not parse is an error (never silently dropped).
    pub fn entries(&self) -> Result<Vec<Entry>, TuneError> {
        let raw: Vec<Value> = self.journal.entries()?;
        let mut out = Vec::new();
        for value in raw {
            if value.get("module").and_then(Value::as_str) != Some(MODULE) {
                continue;
            }
            let env: Envelope = serde_json::from_value(value).map_err(|e| TuneError::BadEntry {
                path: self.journal.path().to_path_buf(),
                reason: e.to_string(),
            })?;
            out.push(env.entry);
        }
        Ok(out)
    }

    /// Every change, oldest first.
    pub fn changes(&self) -> Result<Vec<ChangeState>, TuneError> {
        Ok(fold(&self.entries()?))
    }
}

/// Folds entries into per-change state, in the order changes were started.
pub fn fold(entries: &[Entry]) -> Vec<ChangeState> {
    let mut changes: Vec<ChangeState> = Vec::new();
    for entry in entries {
        match entry {
            Entry::Intent {
                change_id,
                action,
                lever,
                mv,
                at,
            } => match changes.iter_mut().find(|c| &c.change_id == change_id) {
                Some(c) => match action {
                    Action::Apply => c.applied = StepState::Open,
                    Action::Revert => c.reverted = StepState::Open,
                },
                None => changes.push(ChangeState {
                    change_id: change_id.clone(),
                    lever: lever.clone(),
                    mv: mv.clone(),
                    applied: if *action == Action::Apply {
                        StepState::Open
                    } else {
                        StepState::NotStarted
                    },
                    reverted: if *action == Action::Revert {
                        StepState::Open
                    } else {
                        StepState::NotStarted
                    },
                    decision: None,
                    at: *at,
                }),
            },
            Entry::Outcome {
                change_id,
                action,
                ok,
                error,
                ..
            } => {
                if let Some(c) = changes.iter_mut().find(|c| &c.change_id == change_id) {
                    let state = if *ok {
                        StepState::Done
                    } else {
                        StepState::Failed(error.clone().unwrap_or_default())
                    };
                    match action {
                        Action::Apply => c.applied = state,
                        Action::Revert => c.reverted = state,
                    }
                }
            }
            Entry::Decision {
                change_id,
                verdict,
                kept,
                ..
            } => {
                if let Some(c) = changes.iter_mut().find(|c| &c.change_id == change_id) {
                    c.decision = Some((*verdict, *kept));
                }
            }
        }
    }
    changes
}

impl KeptValues for Ledger {
    fn last_kept(&self, lever: &str) -> Result<Option<String>, String> {
        let changes = self.changes().map_err(|e| e.to_string())?;
        Ok(changes
            .iter()
            .rev()
            .find(|c| c.lever.name == lever && c.status() == Status::Kept)
            .and_then(|c| c.mv.to.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lever() -> Lever {
        Lever::postgres_probe("max_wal_size")
    }

    fn mv() -> Move {
        Move {
            from: Some("1GB".into()),
            to: Some("4GB".into()),
        }
    }

    #[test]
    fn statuses_follow_the_write_order() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(Journal::new(dir.path().join("j.jsonl")));
        ledger.intent("a", Action::Apply, &lever(), &mv()).unwrap();
        assert_eq!(ledger.changes().unwrap()[0].status(), Status::Unfinished);
        ledger.outcome("a", Action::Apply, &Ok(())).unwrap();
        assert_eq!(
            ledger.changes().unwrap()[0].status(),
            Status::Unfinished,
            "applied, not judged"
        );
        ledger.decision("a", Verdict::Improved, "better").unwrap();
        assert_eq!(ledger.changes().unwrap()[0].status(), Status::Kept);
        ledger.intent("a", Action::Revert, &lever(), &mv()).unwrap();
        assert_eq!(ledger.changes().unwrap()[0].status(), Status::Unfinished);
        ledger
            .outcome("a", Action::Revert, &Err("boom".into()))
            .unwrap();
        assert_eq!(ledger.changes().unwrap()[0].status(), Status::Unfinished);
        ledger.intent("a", Action::Revert, &lever(), &mv()).unwrap();
        ledger.outcome("a", Action::Revert, &Ok(())).unwrap();
        assert_eq!(ledger.changes().unwrap()[0].status(), Status::RolledBack);
    }

    #[test]
    fn other_modules_entries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("j.jsonl"));
        journal
            .append(&serde_json::json!({"module": "deploy", "step": "swap"}))
            .unwrap();
        let ledger = Ledger::new(journal);
        ledger.intent("a", Action::Apply, &lever(), &mv()).unwrap();
        assert_eq!(ledger.changes().unwrap().len(), 1);
        assert_eq!(ledger.changes().unwrap()[0].mv, mv());
    }
}
