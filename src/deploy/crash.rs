//! Test hook: `TUNER_DEPLOY_CRASH_AFTER=<phase>` makes the process abort
//! (no destructors, no cleanup, like `kill -9`) right after that phase has
//! been journaled and done. Integration tests use it to prove that the next
//! `tuner deploy` or `tuner deploy status` recovers from any phase.
//! `TUNER_DEPLOY_CRASH_AFTER=journal-<phase>` aborts right after the phase's
//! journal entry, before the phase does anything.

use super::Phase;

pub const ENV: &str = "TUNER_DEPLOY_CRASH_AFTER";

/// Aborts if the hook names `phase` (done).
pub fn after(phase: Phase) {
    if std::env::var(ENV).ok().as_deref() == Some(phase.name()) {
        eprintln!("{ENV}={phase}: aborting as asked (test hook)");
        std::process::abort();
    }
}

/// Aborts if the hook names `journal-<phase>` (journaled, not started).
pub fn after_journal(phase: Phase) {
    if std::env::var(ENV)
        .ok()
        .is_some_and(|v| v.strip_prefix("journal-") == Some(phase.name()))
    {
        eprintln!("{ENV}=journal-{phase}: aborting as asked (test hook)");
        std::process::abort();
    }
}
