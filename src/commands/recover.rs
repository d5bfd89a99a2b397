//! One recovery, whichever command runs next: before an action takes a
//! target, whatever another action's interrupted run left open on it is
//! finished or undone through that action's own journaled path. A deploy of
//! `web` first restores a tune change a crash left half-applied on `web`'s
//! limits or env; `tune` and `rollback` restore their own at start (the
//! cycle does it), and a deploy recovers its own open swap (`deploy::recover`).

use crate::cli::OutputFormat;
use crate::config::Config;
use crate::journal::{Journal, Locks, Target};
use crate::tune::ledger::{Ledger, Status};
use crate::tune::restore::lock_target;
use crate::tune::rollback::{rollback_reporting, Scope, Undo};

/// Restores the tune changes an interrupted run left unfinished on
/// `target`, holding it through `locks` (which may already hold it).
/// Builds the lever backends only when there is something to restore. A
/// slow revert (a recreate) is a wait rendered for `output`.
pub async fn tune_changes_on(
    config: &Config,
    locks: &Locks,
    target: &Target,
    output: OutputFormat,
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
    let events: std::sync::Arc<dyn crate::journal::Events> =
        std::sync::Arc::from(crate::output::progress::for_format(output));
    let levers = super::levers::real(config, events.clone()).await?;
    let report = rollback_reporting(
        &ledger,
        locks,
        &levers,
        &config.paths.changelog,
        &Scope::UnfinishedOn(target.clone()),
        false,
        events.as_ref(),
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
