//! Exit codes are a contract with scripts and CI gates; README documents them.

/// Everything worked and every objective holds.
pub const OK: u8 = 0;
/// A runtime failure: a server unreachable, an apply that failed.
pub const FAILURE: u8 = 1;
/// Bad usage or config: nothing was changed.
pub const USAGE: u8 = 2;
/// The SLA is violated (status) or still violated after tuning.
pub const SLA_VIOLATED: u8 = 3;

/// Marks an error as the user's to fix (exit 2) rather than a runtime failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Maps an error to its exit code by looking for a usage or config error
/// anywhere in its chain. A closed stdout (`| head`) is success: the work
/// was done, only its reader left.
pub fn code_for(error: &anyhow::Error) -> u8 {
    if crate::output::is_closed_stdout(error) {
        return OK;
    }
    for cause in error.chain() {
        if cause.downcast_ref::<UsageError>().is_some()
            || cause.downcast_ref::<crate::config::ConfigError>().is_some()
        {
            return USAGE;
        }
    }
    FAILURE
}

/// How a tune run ended, as an exit code: 0 when the SLA is met (or for a
/// dry run), 3 when it is still violated or no lever is left, 1 when
/// interrupted or unmeasurable.
pub fn for_tune(outcome: crate::tune::Outcome) -> u8 {
    use crate::tune::Outcome;
    match outcome {
        Outcome::SlaMet | Outcome::DryRun => OK,
        Outcome::StillViolated | Outcome::NoLever => SLA_VIOLATED,
        Outcome::Interrupted | Outcome::Unmeasured => FAILURE,
    }
}
