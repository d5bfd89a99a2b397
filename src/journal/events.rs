//! The one event stream every action reports its progress through: a tune
//! change, a deploy phase, the waits in between. The core emits events and
//! never draws anything; the edge renders them (`output::progress`): a bar
//! or spinner on a terminal's stderr for humans, JSON lines on stderr with
//! `--output json`.

use serde::Serialize;

/// One thing that happened while an action ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A step began: `cycle 1: max_wal_size=4GB`, `deploy web: health`.
    Step { message: String },
    /// A wait began: `total` counts its units (samples) when known; a wait
    /// without one (a health check) is open-ended.
    Waiting { what: String, total: Option<u64> },
    /// `done` units of the current wait are behind.
    Advanced { done: u64 },
    /// The current wait is over.
    Finished,
}

/// Where an action sends its events. Called from the action's own task.
pub trait Events: Send + Sync {
    fn emit(&self, event: Event);

    fn step(&self, message: &str) {
        self.emit(Event::Step {
            message: message.to_string(),
        });
    }

    fn waiting(&self, what: &str, total: Option<u64>) {
        self.emit(Event::Waiting {
            what: what.to_string(),
            total,
        });
    }

    fn advanced(&self, done: u64) {
        self.emit(Event::Advanced { done });
    }

    fn finished(&self) {
        self.emit(Event::Finished);
    }
}

/// Events nobody watches (tests, and dry runs that print only a plan).
pub struct Silent;

impl Events for Silent {
    fn emit(&self, _: Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_tagged_json_lines() {
        let json = serde_json::to_string(&Event::Waiting {
            what: "observing".into(),
            total: Some(12),
        })
        .unwrap();
        assert_eq!(json, r#"{"event":"waiting","what":"observing","total":12}"#);
        assert_eq!(
            serde_json::to_string(&Event::Finished).unwrap(),
            r#"{"event":"finished"}"#
        );
    }
}
