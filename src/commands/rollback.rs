//! `tuner rollback`: wiring only. Chooses the scope from the flags, takes
//! the run lock, and renders what was (or would be) undone.

use anyhow::Context as _;

use crate::cli::{OutputFormat, RollbackArgs};
use crate::commands::tune::{journal_path, locks, to_anyhow};
use crate::config::Config;
use crate::journal::{Journal, Target};
use crate::levers::LeverBackend;
use crate::output::tune as render;
use crate::tune::ledger::Ledger;
use crate::tune::rollback::{rollback, Scope};

pub fn scope(args: &RollbackArgs) -> Scope {
    match (&args.to, args.all) {
        (_, true) => Scope::All,
        (Some(id), false) => Scope::To(id.clone()),
        (None, false) => Scope::Last,
    }
}

pub async fn run(
    config: &Config,
    output: OutputFormat,
    args: &RollbackArgs,
    levers: &dyn LeverBackend,
) -> anyhow::Result<u8> {
    let locks = locks(config, "tuner rollback");
    let _lock = if args.dry_run {
        None
    } else {
        Some(
            locks
                .acquire(&Target::Tuning, "a rollback")
                .context("cannot roll back")?,
        )
    };
    let ledger = Ledger::new(Journal::new(journal_path(config)));
    let report = rollback(
        &ledger,
        &locks,
        levers,
        &config.paths.changelog,
        &scope(args),
        args.dry_run,
    )
    .await
    .map_err(to_anyhow)?;
    match output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Table => crate::output::emit_raw(&render::rollback_human(&report))?,
    }
    Ok(crate::exit::OK)
}
