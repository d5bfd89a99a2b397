//! The one error type of `tune/`.

use crate::levers::port::BackendError;

use super::ports::ObserveError;
use crate::journal::JournalError;
use crate::metrics::MeasureError;

#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("invalid lever catalog:\n{}", .0.join("\n"))]
    Catalog(Vec<String>),
    #[error("metric {metric}: symptom {symptom:?} is not one tuner knows; use one of high_wal_rate, high_io_wait, high_write_latency, cpu_pressure, memory_pressure in tuner.yaml")]
    UnknownSymptom { metric: String, symptom: String },
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    #[error("{}: a tune entry cannot be read: {reason}; the journal was edited or written by another tuner version", path.display())]
    BadEntry {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot write {what} {}: {source}", path.display())]
    Write {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lever backend: {0}")]
    Backend(#[from] BackendError),
    #[error("metrics: {0}")]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    Measure(#[from] MeasureError),
    #[error("unfinished change(s) in the journal: {}; a previous run stopped mid-change. A dry run changes nothing: a real `tuner tune` restores them before its first cycle, or run `tuner rollback`", .0.join(", "))]
    Unfinished(Vec<String>),
    #[error(
        "no change {0:?} in the journal; `tuner rollback --dry-run --all` lists the kept changes"
    )]
    UnknownChange(String),
    #[error("change {change} was already rolled back or never kept; nothing to undo")]
    NotKept { change: String },
    #[error("interrupted before the next change was applied; nothing is open")]
    Interrupted,
    #[error("aborted by a second interrupt while {during}; the journal keeps the open change: the next `tuner tune` or `tuner rollback` restores it")]
    Aborted { during: String },
    #[error("rolling back {change} failed: {source}; the journal keeps it open: fix the cause and run `tuner rollback` again")]
    RollbackFailed {
        change: String,
        #[source]
        source: BackendError,
    },
}

impl TuneError {
    /// Errors the user fixes in files or flags (exit 2); nothing was changed.
    pub fn is_usage(&self) -> bool {
        match self {
            TuneError::Measure(e) => e.is_usage(),
            other => matches!(
                other,
                TuneError::Catalog(_)
                    | TuneError::UnknownSymptom { .. }
                    | TuneError::UnknownChange(_)
            ),
        }
    }
}
