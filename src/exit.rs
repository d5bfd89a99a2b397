//! Exit codes are a contract with scripts and CI gates; README documents them.

/// Everything worked and every objective holds.
pub const OK: u8 = 0;
/// A runtime failure: a server unreachable, an apply that failed.
pub const FAILURE: u8 = 1;
/// Bad usage or config: nothing was changed.
pub const USAGE: u8 = 2;
/// The SLA is violated (status, a dry run) or still violated after tuning;
/// for `check`, a budget objective fails.
pub const SLA_VIOLATED: u8 = 3;

/// Marks an error as the user's to fix (exit 2) rather than a runtime failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// One SLA reading as an exit code, the same for every command that reads
/// the SLA: 0 when no objective is violated and at least one was measured
/// (objectives without data or baseline are reported, not failed), 3 when
/// one is violated, 1 when not one could be measured.
pub fn for_sla(verdict: crate::metrics::Verdict) -> u8 {
    use crate::metrics::Verdict;
    match verdict {
        Verdict::Met => OK,
        Verdict::Violated => SLA_VIOLATED,
        Verdict::Unmeasured => FAILURE,
    }
}

/// How a tune run ended, as an exit code: its last SLA reading's code (so a
/// dry run exits as `status` would on the same reading), 1 when interrupted
/// or when the SLA could not be read again after the last cycle.
pub fn for_tune(report: &crate::tune::RunReport) -> u8 {
    match (report.outcome, &report.sla) {
        (crate::tune::Outcome::Interrupted, _) | (_, None) => FAILURE,
        (_, Some(sla)) => for_sla(sla.verdict),
    }
}

/// A budget check as an exit code: 3 when an objective fails, 0 otherwise
/// (warnings do not fail a CI gate).
pub fn for_check(verdict: crate::gate::State) -> u8 {
    match verdict {
        crate::gate::State::Fail => SLA_VIOLATED,
        crate::gate::State::Pass | crate::gate::State::Warn => OK,
    }
}
