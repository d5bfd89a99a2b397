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
    /// A wait began: `total` counts its units when known (samples, unless
    /// `unit` says otherwise: `s` for a timed wait such as settle); a wait
    /// without one (a health check, a restart) is open-ended.
    Waiting {
        what: String,
        total: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
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
            unit: None,
        });
    }

    /// A wait of a known length, counted in whole seconds; `advanced`
    /// then reports the seconds behind.
    fn waiting_for(&self, what: &str, length: std::time::Duration) {
        self.emit(Event::Waiting {
            what: what.to_string(),
            total: Some(length.as_secs_f64().ceil() as u64),
            unit: Some("s".into()),
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

/// Keeps every event, so tests can check what a wait reported.
#[derive(Default)]
pub struct Recorded(pub std::sync::Mutex<Vec<Event>>);

impl Recorded {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Events for Recorded {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_tagged_json_lines() {
        let json = serde_json::to_string(&Event::Waiting {
            what: "observing".into(),
            total: Some(12),
            unit: None,
        })
        .unwrap();
        assert_eq!(json, r#"{"event":"waiting","what":"observing","total":12}"#);
        let json = serde_json::to_string(&Event::Waiting {
            what: "settling".into(),
            total: Some(60),
            unit: Some("s".into()),
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"event":"waiting","what":"settling","total":60,"unit":"s"}"#
        );
        assert_eq!(
            serde_json::to_string(&Event::Finished).unwrap(),
            r#"{"event":"finished"}"#
        );
    }
}
