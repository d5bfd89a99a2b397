//! What a finished deploy reports, and the clock that times its phases.

use std::time::Instant;

use serde::Serialize;

use super::analysis::Analysis;
use super::record::Outcome;
use super::Phase;
use crate::runtime::Limits;

/// What a finished deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub id: String,
    pub service: String,
    pub container: String,
    pub container_id: String,
    pub old: Limits,
    pub new: Limits,
    pub read_back: Limits,
    pub seconds: f64,
    pub outcome: Outcome,
    /// Seconds spent in each phase, in order (`drain` is the wait for
    /// blue's in-flight requests, which depends on the clients, not on us;
    /// `rename` covers rename, persist and verify).
    pub phases: Vec<PhaseTime>,
    /// Seconds from the start until green took traffic (end of `switch`).
    pub seconds_to_green: f64,
    /// The promotion gate's measurements, when there is one.
    pub analysis: Option<Analysis>,
    /// The drain alone: waiting for blue's in-flight requests, which
    /// depends on the clients (part of `seconds`, shown apart).
    pub drain_seconds: f64,
    /// Where the router sends the service now and whether a reload of the
    /// router keeps it; `None` without a router.
    pub router: Option<RouterOutcome>,
}

/// The router after a swap.
#[derive(Debug, Clone, Serialize)]
pub struct RouterOutcome {
    /// The service's server in the router and its address now
    /// (`web 127.0.0.1:27123`).
    pub server: String,
    /// The state file written for the router's next reload.
    pub state_file: Option<String>,
    /// Why a reload of the router would not keep green, and the fix.
    pub warning: Option<String>,
}

/// Time spent in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    pub phase: Phase,
    pub seconds: f64,
}

/// Records when each phase starts.
#[derive(Debug)]
pub(super) struct Clock {
    pub(super) started: Instant,
    marks: Vec<(Phase, Instant)>,
}

impl Clock {
    pub(super) fn new() -> Clock {
        Clock {
            started: Instant::now(),
            marks: Vec::new(),
        }
    }

    pub(super) fn enter(&mut self, phase: Phase) {
        self.marks.push((phase, Instant::now()));
    }

    pub(super) fn phases(&self, end: Instant) -> Vec<PhaseTime> {
        self.marks
            .iter()
            .enumerate()
            .map(|(i, (phase, at))| {
                let next = self.marks.get(i + 1).map(|m| m.1).unwrap_or(end);
                PhaseTime {
                    phase: *phase,
                    seconds: next.saturating_duration_since(*at).as_secs_f64(),
                }
            })
            .collect()
    }

    /// Seconds from the start to the start of `phase`.
    pub(super) fn until(&self, phase: Phase) -> Option<f64> {
        self.marks
            .iter()
            .find(|m| m.0 == phase)
            .map(|m| m.1.saturating_duration_since(self.started).as_secs_f64())
    }
}
