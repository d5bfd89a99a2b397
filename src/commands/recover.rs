//! One recovery, whichever command runs next: before an action takes a
//! target, whatever another action's interrupted run left open on it is
//! finished or undone through that action's own journaled path. A deploy of
//! `web` first restores a tune change a crash left half-applied on `web`'s
//! limits or env; `tune` and `rollback` restore their own at start (the
//! cycle does it), and a deploy recovers its own open swap (`deploy::recover`).

use crate::config::Config;
use crate::journal::{Journal, Locks, Target};
use crate::tune::ledger::{Ledger, Status};
use crate::tune::restore::lock_target;
use crate::tune::rollback::{rollback, Scope, Undo};

/// Restores the tune changes an interrupted run left unfinished on
/// `target`, holding it through `locks` (which may already hold it).
/// Builds the lever backends only when there is something to restore.
pub async fn tune_changes_on(
    config: &Config,
    locks: &Locks,
    target: &Target,
) -> anyhow::Result<Vec<Undo>> {
    let ledger = Ledger::new(Journal::new(super::tune::journal_path(config)));
    let open = ledger
        .changes()?
        .into_iter()
        .filter(|c| c.status() == Status::Unfinished)
        .any(|c| lock_target(&c.lever).as_ref() == Some(target));
    if !open {
        return Ok(Vec::new());
    }
    // Deploys restore container and env changes here; no restart to report.
    let levers = super::levers::real(config, std::sync::Arc::new(crate::journal::Silent)).await?;
    let report = rollback(
        &ledger,
        locks,
        &levers,
        &config.paths.changelog,
        &Scope::UnfinishedOn(target.clone()),
        false,
    )
    .await
    .map_err(super::tune::to_anyhow)?;
    for u in &report.undone {
        eprintln!(
            "restored {} ({}), left unfinished on {target} by an interrupted tune run",
            u.change_id, u.restores
        );
    }
    Ok(report.undone)
}
