//! `tuner rollback`: undo kept changes, and finish what a crashed run left
//! open, through the same journaled apply path the cycle uses.
//!
//! Unfinished changes (an intent without an outcome, a change applied but
//! never judged, a failed revert) are always restored first. Then, by scope:
//! the last kept change, every kept change from a given id on, or all of
//! them — newest first, so a lever moved twice goes back step by step.
//! A change is restored once; the journal records it, so running the same
//! rollback again finds nothing left to do.

use std::path::Path;

use serde::Serialize;

use super::ledger::{ChangeState, Ledger, Status};
use super::record;
use super::restore::{hold, lock_target, restore_with};
use super::TuneError;
use crate::journal::{Events, Locks, Shutdown, Silent, Target};
use crate::levers::catalog::Lever;
use crate::levers::choose::same_value;
use crate::levers::port::{LeverBackend, Move, Plan};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The last kept change (or only the unfinished ones, when any).
    Last,
    /// Back to just before this change id.
    To(String),
    /// Every kept change: the pre-tuning state.
    All,
    /// Only what an interrupted run left unfinished: what every run of
    /// `tuner tune` restores before its first cycle.
    Unfinished,
    /// What an interrupted run left unfinished on one target: what a deploy
    /// of a service restores before it touches that service.
    UnfinishedOn(Target),
}

#[derive(Debug, Clone, Serialize)]
pub struct Undo {
    pub change_id: String,
    pub lever: String,
    /// `max_wal_size=1GB`: what is restored.
    pub restores: String,
    pub was: Status,
    pub mv: Move,
    /// Filled in a dry run.
    pub plan: Option<Plan>,
    /// Set when the live value is neither the tuned nor the prior one:
    /// someone changed the lever by hand since (it is restored anyway).
    pub drift: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub dry_run: bool,
    pub undone: Vec<Undo>,
    pub message: String,
}

/// Which changes to undo, newest first.
pub fn select<'c>(
    changes: &'c [ChangeState],
    scope: &Scope,
) -> Result<Vec<&'c ChangeState>, TuneError> {
    let unfinished: Vec<&ChangeState> = changes
        .iter()
        .rev()
        .filter(|c| c.status() == Status::Unfinished)
        .filter(|c| match scope {
            Scope::UnfinishedOn(target) => lock_target(&c.lever).as_ref() == Some(target),
            _ => true,
        })
        .collect();
    let kept = changes.iter().rev().filter(|c| c.status() == Status::Kept);
    let mut out = unfinished.clone();
    match scope {
        Scope::Last => {
            if unfinished.is_empty() {
                out.extend(kept.take(1));
            }
        }
        Scope::All => out.extend(kept),
        Scope::Unfinished | Scope::UnfinishedOn(_) => {}
        Scope::To(id) => {
            let Some(position) = changes.iter().position(|c| &c.change_id == id) else {
                return Err(TuneError::UnknownChange(id.clone()));
            };
            let from = &changes[position..];
            if !from
                .iter()
                .any(|c| matches!(c.status(), Status::Kept | Status::Unfinished))
            {
                return Err(TuneError::NotKept { change: id.clone() });
            }
            out.extend(from.iter().rev().filter(|c| c.status() == Status::Kept));
        }
    }
    Ok(out)
}

fn undo_of(c: &ChangeState, plan: Option<Plan>) -> Undo {
    Undo {
        change_id: c.change_id.clone(),
        lever: c.lever.name.clone(),
        restores: c.lever.assignment(c.mv.from.as_deref()),
        was: c.status(),
        mv: c.mv.clone(),
        plan,
        drift: None,
    }
}

/// A note when the lever's live value matches neither side of the change.
async fn drift(backend: &dyn LeverBackend, c: &ChangeState) -> Option<String> {
    let live = backend.current(&c.lever).await.ok()?;
    let matches = |v: &Option<String>| match (&live, v) {
        (Some(a), Some(b)) => same_value(&c.lever, a, b),
        (None, None) => true,
        _ => false,
    };
    if matches(&c.mv.to) || matches(&c.mv.from) {
        return None;
    }
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".into());
    Some(format!(
        "{} is {} now, not the tuned {}: changed by hand since; restoring {} anyway",
        c.lever.name,
        show(&live),
        show(&c.mv.to),
        show(&c.mv.from)
    ))
}

/// [`rollback_reporting`] with nobody watching its waits.
pub async fn rollback(
    ledger: &Ledger,
    locks: &Locks,
    backend: &dyn LeverBackend,
    changelog: &Path,
    scope: &Scope,
    dry_run: bool,
) -> Result<RollbackReport, TuneError> {
    rollback_reporting(ledger, locks, backend, changelog, scope, dry_run, &Silent).await
}

/// Undoes the changes `scope` names, newest first, each through the
/// journaled restore; slow reverts (a recreate, a command) are waits on
/// `progress`.
pub async fn rollback_reporting(
    ledger: &Ledger,
    locks: &Locks,
    backend: &dyn LeverBackend,
    changelog: &Path,
    scope: &Scope,
    dry_run: bool,
    progress: &dyn Events,
) -> Result<RollbackReport, TuneError> {
    let changes = ledger.changes()?;
    let chosen = select(&changes, scope)?;
    if chosen.is_empty() {
        return Ok(RollbackReport {
            dry_run,
            undone: Vec::new(),
            message: "nothing to roll back".into(),
        });
    }
    let mut undone = Vec::new();
    // Nobody interrupts a rollback half-way from here: a trigger-less
    // Shutdown never fires. Ctrl-C kills the process; the journal keeps the
    // open revert, and the next rollback repeats it (revert is idempotent).
    let (_, mut never) = Shutdown::new();
    let mut seen: Vec<&str> = Vec::new();
    for c in chosen {
        let lever: &Lever = &c.lever;
        // Only the newest change of a lever can be compared with the live
        // value before anything is undone (in a dry run nothing is).
        let note = if seen.contains(&lever.name.as_str()) {
            None
        } else {
            drift(backend, c).await
        };
        seen.push(&lever.name);
        if let Some(n) = &note {
            tracing::warn!("{n}");
        }
        if dry_run {
            let plan = backend.plan_revert(lever, &c.mv).await?;
            undone.push(Undo {
                drift: note,
                ..undo_of(c, Some(plan))
            });
            continue;
        }
        let why = match c.status() {
            Status::Unfinished if *scope == Scope::Unfinished => {
                "unfinished change from an interrupted run, restored before tuning again"
            }
            Status::Unfinished if matches!(scope, Scope::UnfinishedOn(_)) => {
                "unfinished change from an interrupted run, restored before a deploy of its service"
            }
            Status::Unfinished => "unfinished change from an interrupted run",
            _ => "kept change undone on request",
        };
        let _held = hold(locks, lever, &format!("rolling back {}", c.change_id))?;
        restore_with(
            ledger,
            backend,
            progress,
            &c.change_id,
            lever,
            &c.mv,
            &mut never,
        )
        .await?;
        record::rollback_entry(changelog, &c.change_id, lever, &c.mv, why)?;
        undone.push(Undo {
            drift: note,
            ..undo_of(c, None)
        });
    }
    let message = if dry_run {
        format!(
            "dry run: would roll back {} change(s); nothing was changed",
            undone.len()
        )
    } else {
        format!("rolled back {} change(s)", undone.len())
    };
    Ok(RollbackReport {
        dry_run,
        undone,
        message,
    })
}
