//! Putting a lever back, journaled: the one undo path shared by the cycle
//! (a change not kept, an interrupt) and `tuner rollback`.

use super::cycle::Context;
use super::ledger::{Action, Ledger};
use super::TuneError;
use crate::journal::{Events, Locks, Shutdown, Target, TargetLock};
use crate::levers::catalog::{self, Lever};
use crate::levers::port::{LeverBackend, Move};

/// What a change of `lever` holds alone from its intent until it is kept or
/// undone: the service whose containers it changes (limits, or env and a
/// recreate), or PostgreSQL. A command lever holds nothing beyond the
/// tuning loop its run already holds.
pub fn lock_target(lever: &Lever) -> Option<Target> {
    match &lever.target {
        catalog::Target::Postgres { .. } => Some(Target::Postgres),
        catalog::Target::Container { service, .. } | catalog::Target::Env { service, .. } => {
            Some(Target::Service(service.clone()))
        }
        catalog::Target::Command { .. } => None,
    }
}

/// Takes `lever`'s target for `action`; a target held by another action (a
/// deploy of the same service) refuses the change before anything moved.
pub(crate) fn hold(
    locks: &Locks,
    lever: &Lever,
    action: &str,
) -> Result<Option<TargetLock>, TuneError> {
    lock_target(lever)
        .map(|target| locks.acquire(&target, action))
        .transpose()
        .map_err(TuneError::from)
}

/// Restores a change's prior value through the journal: intent, revert,
/// outcome. A second interrupt abandons it, leaving the intent open for
/// `tuner rollback`.
pub(crate) async fn restore(
    cx: &Context<'_>,
    change_id: &str,
    lever: &Lever,
    mv: &Move,
    shutdown: &mut Shutdown,
) -> Result<(), TuneError> {
    restore_with(
        &cx.ledger,
        cx.backend,
        cx.progress,
        change_id,
        lever,
        mv,
        shutdown,
    )
    .await
}

/// What a revert waits on, when it is slow: a recreate or a command can
/// take as long as `tune.command_timeout`. A PostgreSQL restart reports
/// its own wait, from the database client.
fn slow_revert(lever: &Lever, mv: &Move) -> Option<String> {
    let restores = lever.assignment(mv.from.as_deref());
    match &lever.target {
        catalog::Target::Env { service, .. } => {
            Some(format!("restoring {restores}: recreating {service}"))
        }
        catalog::Target::Command { .. } => Some(format!(
            "restoring {restores}: running its rollback command"
        )),
        catalog::Target::Postgres { .. } | catalog::Target::Container { .. } => None,
    }
}

pub(crate) async fn restore_with(
    ledger: &Ledger,
    backend: &dyn LeverBackend,
    progress: &dyn Events,
    change_id: &str,
    lever: &Lever,
    mv: &Move,
    shutdown: &mut Shutdown,
) -> Result<(), TuneError> {
    ledger.intent(change_id, Action::Revert, lever, mv)?;
    let slow = slow_revert(lever, mv);
    if let Some(what) = &slow {
        progress.waiting(what, None);
    }
    let result = tokio::select! {
        // Checked first: a second interrupt must abort even if the revert is ready.
        biased;
        _ = shutdown.reached(2) => {
            if slow.is_some() {
                progress.finished();
            }
            return Err(TuneError::Aborted { during: format!("rolling back {change_id}") });
        }
        r = backend.revert(lever, mv) => r,
    };
    if slow.is_some() {
        progress.finished();
    }
    crate::crash::at(crate::crash::Point::Reverted);
    ledger.outcome(
        change_id,
        Action::Revert,
        &result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
    )?;
    result.map_err(|source| TuneError::RollbackFailed {
        change: change_id.to_string(),
        source,
    })
}
