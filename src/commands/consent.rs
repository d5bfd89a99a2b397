//! Asking before anything drastic. Only the edge talks to the person at the
//! terminal; the core is handed the answer as data (`tune::Options::
//! allow_restart`, or a rollback that runs or does not).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use crate::cli::TuneArgs;
use crate::config::Config;
use crate::levers::catalog::Target;
use crate::levers::{Catalog, LeverBackend};

/// Someone can answer: both stdin (to read the answer) and stderr (where
/// the question goes) are terminals. A pipe, a cron job or CI is not.
pub fn attended() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks `question` on stderr and reads a line from stdin. Only `y` or `yes`
/// is a yes; anything else, end of input or an error is a no.
pub fn ask(question: &str) -> bool {
    let mut err = std::io::stderr().lock();
    if write!(err, "{question} [y/N] ")
        .and_then(|()| err.flush())
        .is_err()
    {
        return false;
    }
    drop(err);
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => false,
        Ok(_) => is_yes(&line),
    }
}

/// Whether this run may restart PostgreSQL. `--yes` or
/// `tune.allow_restart: true` allow it; otherwise someone at a terminal is
/// asked once, and only when a lever's next move would restart it; an
/// unattended run skips those levers and says so. A dry run never asks: it
/// plans as the real run on the same terminal would after a yes.
pub async fn restart(
    config: &Config,
    args: &TuneArgs,
    catalog: &Catalog,
    levers: &dyn LeverBackend,
) -> bool {
    if args.yes || config.tune.as_ref().is_some_and(|t| t.allow_restart) {
        return true;
    }
    // Only a PostgreSQL setting restarts anything; without one, no note.
    let postgres = catalog
        .levers
        .iter()
        .any(|l| matches!(l.target, Target::Postgres { .. }));
    if !postgres {
        return true;
    }
    let attended = attended();
    if args.dry_run {
        return attended;
    }
    if !attended {
        crate::output::note(
            "unattended run: levers that restart PostgreSQL are skipped; pass --yes or set tune.allow_restart: true to allow them",
        );
        return false;
    }
    let restarting = crate::levers::choose::restart_levers(catalog, levers).await;
    if restarting.is_empty() {
        return true;
    }
    ask(&format!(
        "{} would restart PostgreSQL (a few seconds to minutes of downtime). Allow restarts in this run?",
        restarting.join(", ")
    ))
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_yes_is_a_yes() {
        assert!(is_yes("y\n") && is_yes(" YES ") && is_yes("Yes"));
        assert!(!is_yes("") && !is_yes("\n") && !is_yes("n") && !is_yes("yep"));
    }
}
