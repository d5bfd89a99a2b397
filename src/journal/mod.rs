//! Durable state: atomic file writes, locks by target, and the write-ahead
//! intent journal that makes every external change recoverable after a crash.

pub mod atomic;
pub mod backup;
pub mod changelog;
pub mod events;
pub mod lock;
pub mod shutdown;
pub mod tuning_log;
pub mod wal;

pub use atomic::{backup_with_timestamp, write_atomic};
pub use events::{Event, Events, Recorded, Silent};
pub use lock::{Locks, Target, TargetLock};
pub use shutdown::{Shutdown, Trigger};
pub use wal::Journal;

use std::path::PathBuf;

/// The one journal of every action, under the state directory.
pub const FILE: &str = "journal.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: corrupt journal entry: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode a journal entry for {}: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{target} is locked by PID {pid}: {holder}; wait for it to finish (lock file {})", path.display())]
    Locked {
        target: String,
        pid: String,
        holder: String,
        path: PathBuf,
    },
}

pub(crate) fn io_error(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> JournalError {
    let path = path.into();
    move |source| JournalError::Io {
        action,
        path,
        source,
    }
}
