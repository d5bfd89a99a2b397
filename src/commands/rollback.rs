//! `tuner rollback`: wiring only. Chooses the scope from the flags, takes
//! the run lock, and renders what was (or would be) undone.

use anyhow::Context as _;

use crate::cli::{OutputFormat, RollbackArgs};
use crate::commands::tune::{journal_path, locks, to_anyhow};
use crate::config::Config;
use crate::exit::UsageError;
use crate::journal::{Journal, Target};
use crate::levers::LeverBackend;
use crate::output::tune as render;
use crate::tune::ledger::Ledger;
use crate::tune::rollback::{rollback, rollback_reporting, Scope};

pub fn scope(args: &RollbackArgs) -> Scope {
    match (&args.to, args.all) {
        (_, true) => Scope::All,
        (Some(id), false) => Scope::To(id.clone()),
        (None, false) => Scope::Last,
    }
}

/// `--all` undoes every kept change: it needs a yes. Without a terminal to
/// ask on and without `--yes`, refuse (exit 2) before anything is read.
pub fn refuse_unattended(args: &RollbackArgs) -> Result<(), UsageError> {
    if args.all && !args.yes && !args.dry_run && !super::consent::attended() {
        return Err(UsageError(
            "tuner rollback --all undoes every kept tuning change and needs a yes: run it on a terminal to be asked, or pass --yes (`tuner rollback --all --dry-run` shows what it would undo)".into(),
        ));
    }
    Ok(())
}

/// Shows what `--all` would undo and asks; `true` to go on. Nothing to
/// undo needs no question.
async fn confirm_all(
    config: &Config,
    ledger: &Ledger,
    locks: &crate::journal::Locks,
    levers: &dyn LeverBackend,
) -> anyhow::Result<bool> {
    let plan = rollback(
        ledger,
        locks,
        levers,
        &config.paths.changelog,
        &Scope::All,
        true,
    )
    .await
    .map_err(to_anyhow)?;
    if plan.undone.is_empty() {
        return Ok(true);
    }
    // The plan's own closing line says "dry run"; here it is a question.
    let text = render::rollback_human(&plan);
    let table = text
        .strip_suffix(&format!("{}\n", plan.message))
        .unwrap_or(&text);
    eprint!("tuner rollback --all will undo:\n{table}");
    Ok(super::consent::ask(&format!(
        "Undo these {} change(s)?",
        plan.undone.len()
    )))
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
    if args.all && !args.yes && !args.dry_run {
        refuse_unattended(args)?;
        if !confirm_all(config, &ledger, &locks, levers).await? {
            eprintln!("rollback cancelled: nothing was changed");
            return Ok(crate::exit::FAILURE);
        }
    }
    let events = crate::output::progress::for_format(output);
    let report = rollback_reporting(
        &ledger,
        &locks,
        levers,
        &config.paths.changelog,
        &scope(args),
        args.dry_run,
        events.as_ref(),
    )
    .await
    .map_err(to_anyhow)?;
    crate::notify::announce(config, &super::announce::rollback_notices(config, &report)).await;
    if !args.dry_run && config.textfile_dir().is_some() {
        // A catalog that cannot be read only leaves the settings out.
        let catalog = super::tune::load_catalog(config).unwrap_or_default();
        let values = super::textfile::read_settings(&catalog, levers).await;
        super::textfile::tune(config, &catalog, &values);
    }
    match output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Table => crate::output::emit_raw(&render::rollback_human(&report))?,
    }
    Ok(crate::exit::OK)
}
