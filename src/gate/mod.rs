//! `tuner check`: performance budgets for CI gates.
//!
//! A budget (`config/budget.yaml`, [`budget`]) names objectives with a
//! target and warning and critical levels. One reader per result format
//! turns its input into one [`Measurement`] per objective: live Prometheus
//! through the one SLA measurement ([`live`]), a k6 `--summary-export`
//! ([`k6_summary`]), a k6 `--out json` stream ([`k6_stream`]), a Locust
//! `_stats.csv` ([`locust`]), pgbench's summary ([`pgbench`]) and its
//! per-transaction `--log` files ([`pgbench_log`]). [`evaluate`] judges each
//! measurement PASS / WARN / FAIL, [`baseline`] adds a comparison with a
//! baseline file, and [`junit`] renders the result for CI systems.
//!
//! Nothing here prints: `output::check` renders the report.

pub mod alerts;
pub mod baseline;
pub mod budget;
pub mod evaluate;
pub mod input;
pub mod junit;
pub mod k6_stream;
pub mod k6_summary;
pub mod live;
pub mod locust;
pub mod pgbench;
pub mod pgbench_log;
pub mod quantile;
pub mod report;
pub mod stat;

pub use budget::{Budget, Objective, Stat};
pub use evaluate::{evaluate, CheckResult, Measurement, Report, State};
pub use input::{read_files, Format};

use std::path::{Path, PathBuf};

/// Everything `check` can refuse. All of it is the user's to fix (a budget
/// to correct, a file to regenerate, a flag to add), so every variant is
/// exit 2, and each names the file and the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The budget file is missing, malformed or inconsistent.
    #[error("{}", .problems.join("\n"))]
    Budget { problems: Vec<String> },
    /// An input file cannot be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An input file is not what its format says: malformed, truncated, or
    /// without a field the budget needs.
    #[error("{}: {problem}", path.display())]
    Input { path: PathBuf, problem: String },
    /// The flags do not fit the input (several files where one is read).
    #[error("{0}")]
    Usage(String),
}

impl GateError {
    pub(crate) fn input(path: &Path, problem: impl Into<String>) -> GateError {
        GateError::Input {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    pub(crate) fn read(path: &Path, source: std::io::Error) -> GateError {
        GateError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}
