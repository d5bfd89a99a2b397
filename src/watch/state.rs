//! What `tuner watch` remembers between checks and across restarts:
//! consecutive counts, cooldowns, the day's adjustments, memory peaks, OOM
//! history, the last CPU counter. One JSON file under the state dir,
//! replaced atomically after every check, so a restart loses nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::journal::{write_atomic, JournalError};

pub const FILE: &str = "watch-state.json";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WatchState {
    pub services: BTreeMap<String, ServiceState>,
}

/// Checks in a row above `high` / below `low`, per resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    pub high: u32,
    pub low: u32,
}

impl Streak {
    /// Counts one more check at `share` of the limit, up to `enough` (the
    /// policy's `checks`): a longer streak decides nothing more, and a
    /// count that stops moving leaves the saved state unchanged while a
    /// service idles at its floor.
    pub fn count(&mut self, share: f64, high: f64, low: f64, enough: u32) {
        self.high = if share > high {
            (self.high + 1).min(enough)
        } else {
            0
        };
        self.low = if share < low {
            (self.low + 1).min(enough)
        } else {
            0
        };
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The container the counters below belong to; a new container (a
    /// recreate, a swap) starts its kernel counters from zero.
    pub container_id: String,
    pub cpu: Streak,
    pub memory: Streak,
    /// When the last adjustment was made (the cooldown runs from here).
    pub last_change: Option<DateTime<Utc>>,
    /// Adjustments of the last 24 hours.
    pub changes: Vec<DateTime<Utc>>,
    /// The highest working set seen, in bytes.
    pub peak_memory: u64,
    /// The container's OOM-kill counter at the last check.
    pub oom_kills_seen: u64,
    /// When OOM kills were seen.
    pub ooms: Vec<DateTime<Utc>>,
    /// The container's CPU counter (seconds) and when it was read, for the
    /// next check's rate.
    pub last_cpu: Option<(f64, DateTime<Utc>)>,
    /// What the last check decided, in words.
    pub last_decision: String,
}

impl ServiceState {
    /// Adjustments within 24 hours of `now` (older ones are dropped).
    pub fn changes_today(&mut self, now: DateTime<Utc>) -> usize {
        let day = Duration::hours(24);
        self.changes.retain(|t| now - *t < day);
        self.changes.len()
    }

    /// The newest OOM kill, if any.
    pub fn last_oom(&self) -> Option<DateTime<Utc>> {
        self.ooms.iter().max().copied()
    }

    /// Starts over for another container, keeping the history that belongs
    /// to the service (cooldown, daily count, peak, OOMs).
    pub fn follow(&mut self, container_id: &str) {
        if self.container_id != container_id {
            self.container_id = container_id.to_string();
            self.cpu = Streak::default();
            self.memory = Streak::default();
            self.oom_kills_seen = 0;
            self.last_cpu = None;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the watch state {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the watch state {} is corrupt ({source}); move it aside to start counting afresh", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] JournalError),
}

pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The saved state, or an empty one when there is none yet.
pub fn load(path: &Path) -> Result<WatchState, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WatchState::default()),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text).map_err(|source| StateError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

pub fn save(path: &Path, state: &WatchState) -> Result<(), StateError> {
    let text = serde_json::to_vec_pretty(state).map_err(|source| StateError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(write_atomic(path, &text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        assert_eq!(load(&path).unwrap(), WatchState::default());
        let now = Utc::now();
        let mut state = WatchState::default();
        state.services.insert(
            "web".into(),
            ServiceState {
                container_id: "c1".into(),
                cpu: Streak { high: 2, low: 0 },
                last_change: Some(now),
                changes: vec![now],
                peak_memory: 123,
                oom_kills_seen: 1,
                ooms: vec![now],
                last_cpu: Some((1.5, now)),
                ..Default::default()
            },
        );
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), state);
        std::fs::write(&path, "{").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("watch-state.json") && err.contains("corrupt"),
            "{err}"
        );
    }

    #[test]
    fn a_new_container_resets_counters_but_keeps_the_service_history() {
        let now = Utc::now();
        let mut s = ServiceState {
            container_id: "old".into(),
            cpu: Streak { high: 2, low: 0 },
            oom_kills_seen: 3,
            peak_memory: 99,
            changes: vec![now - Duration::hours(25), now],
            ..Default::default()
        };
        s.follow("new");
        assert_eq!(s.cpu, Streak::default());
        assert_eq!(s.oom_kills_seen, 0);
        assert_eq!(s.peak_memory, 99);
        assert_eq!(s.changes_today(now), 1, "a change 25h ago is another day");
    }
}
