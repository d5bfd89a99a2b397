//! Test hook: `TUNER_TUNE_CRASH_AT=<point>` makes the process abort (no
//! destructors, no journal outcome, like `kill -9`) at that point of a
//! change, so integration tests can prove `tuner rollback` restores the
//! system from any of them. Points:
//!
//! - `apply`: the apply intent is journaled and the backend has applied the
//!   change, but its outcome is not journaled yet.
//! - `written`: a reload-only PostgreSQL setting has been written with
//!   `ALTER SYSTEM` but not yet reloaded: the file says the new value, the
//!   server still runs the old one.
//! - `live`: a container's limits were updated live, before the Compose
//!   override file says so.
//! - `env_written`: an env file holds the new value, before the service is
//!   recreated to read it.
//! - `restart`: a restart-only PostgreSQL setting has been written with
//!   `ALTER SYSTEM` and the restarter is about to run: the file says the new
//!   value, the running server still the old one.
//! - `restarted`: the restarter brought PostgreSQL back on the new value,
//!   before the change is confirmed or its outcome journaled.
//! - `observe`: the change is applied and the first observation sample is in
//!   tuning.log.
//! - `verdict`: the verdict is journaled, before the change is reverted.
//! - `reverted`: a revert (in a cycle or in `tuner rollback`) has put the
//!   old value back, before its outcome is journaled.
//!
//! Unset (always, outside tests) it does nothing.

pub const ENV: &str = "TUNER_TUNE_CRASH_AT";

/// Where a run can be made to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Apply,
    Restart,
    Restarted,
    Observe,
    Written,
    Live,
    EnvWritten,
    Verdict,
    Reverted,
}

impl Point {
    pub fn name(self) -> &'static str {
        match self {
            Point::Apply => "apply",
            Point::Restart => "restart",
            Point::Restarted => "restarted",
            Point::Observe => "observe",
            Point::Written => "written",
            Point::Live => "live",
            Point::EnvWritten => "env_written",
            Point::Verdict => "verdict",
            Point::Reverted => "reverted",
        }
    }
}

/// Aborts if the hook names `point`.
pub fn at(point: Point) {
    if std::env::var(ENV).ok().as_deref() == Some(point.name()) {
        eprintln!("{ENV}={}: aborting as asked (test hook)", point.name());
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_names_match_the_documented_values() {
        let names: Vec<_> = [
            Point::Apply,
            Point::Restart,
            Point::Restarted,
            Point::Observe,
            Point::Written,
            Point::Live,
            Point::EnvWritten,
            Point::Verdict,
            Point::Reverted,
        ]
        .iter()
        .map(|p| p.name())
        .collect();
        assert_eq!(
            names,
            [
                "apply",
                "restart",
                "restarted",
                "observe",
                "written",
                "live",
                "env_written",
                "verdict",
                "reverted"
            ]
        );
    }
}
