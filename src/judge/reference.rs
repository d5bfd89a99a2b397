//! The window that describes the current state (the "before" of the next
//! change), and how far two windows of one setting drift apart.
//!
//! Two CHECKPOINT-aligned WAL windows of the *same* setting, minutes apart,
//! need not agree: the bench (BENCHMARKS.md, run of 2026-11-25 16:55) saw the
//! first window after `max_wal_size` moved to 4GB read 17% below a later
//! window at 4GB, at the same transaction counts. The noise band measured
//! inside one window knows nothing of that, so a change judged against the
//! window right after the previous change could be "improved" or
//! "regressed" by drift alone.
//!
//! So after a kept change, the next WAL change is judged against a fresh
//! window measured right before it, and the goal's noise band is widened to
//! the drift between the two windows of the setting now in force (the kept
//! change's after-window and the fresh one). After a rollback, the window
//! before the change and the re-measurement are two windows of the restored
//! setting, and give the drift the same way.

use super::aligned::{self, Work};
use super::Rule;
use crate::config::Direction;
use crate::metrics::Sample;

/// A window describing the current state.
pub struct Reference {
    pub samples: Vec<Sample>,
    /// It starts at a CHECKPOINT the tuner issued (see `aligned`).
    pub aligned: bool,
    /// Per sample, transactions since that CHECKPOINT, when readable.
    pub work: Option<Vec<f64>>,
    /// It is the first window after a change: a stale "before" for a WAL
    /// goal (module doc).
    pub after_change: bool,
    /// How far a goal metric moved between this window and an earlier one
    /// of the same setting: the least a change must move it to count.
    pub drift: Option<Drift>,
}

/// The drift of one metric between two windows of one setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub metric: String,
    pub value: f64,
}

impl Reference {
    /// A window of samples; `after_change` and `drift` start unset.
    pub fn new(samples: Vec<Sample>, aligned: bool, work: Option<Vec<f64>>) -> Reference {
        Reference {
            samples,
            aligned,
            work,
            after_change: false,
            drift: None,
        }
    }

    /// The same window, recorded with the drift of the goal from `earlier`,
    /// a window of the same setting. Both must start at a CHECKPOINT:
    /// unaligned windows differ by where in the WAL cycle they fell.
    pub fn with_drift_from(mut self, earlier: &Reference, goal: &str, rule: &Rule) -> Reference {
        self.drift = drift(goal, earlier, &self, rule).map(|value| Drift {
            metric: goal.to_string(),
            value,
        });
        self
    }

    /// The drift of `metric`, when it was the one measured: a drift of WAL
    /// bytes/s says nothing about WAL bytes per transaction.
    pub fn drift_of(&self, metric: &str) -> Option<f64> {
        self.drift
            .as_ref()
            .filter(|d| d.metric == metric)
            .map(|d| d.value)
    }
}

/// The goal's shift between two aligned windows of one setting, compared as
/// the judge compares a change (`aligned::compare`); `None` when either is
/// unaligned or too few samples pair up.
fn drift(goal: &str, earlier: &Reference, later: &Reference, rule: &Rule) -> Option<f64> {
    if !(earlier.aligned && later.aligned) {
        return None;
    }
    let work = earlier
        .work
        .as_deref()
        .zip(later.work.as_deref())
        .map(|(before, after)| Work { before, after });
    let shift = aligned::compare(
        goal,
        &earlier.samples,
        &later.samples,
        work,
        Direction::LowerIsBetter,
        rule,
    )?;
    Some((shift.after - shift.before).abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use std::collections::BTreeMap;

    fn window(values: &[f64], aligned: bool) -> Reference {
        let samples = values
            .iter()
            .map(|v| Sample {
                at: Utc::now(),
                values: BTreeMap::from([("wal".to_string(), Some(*v))]),
            })
            .collect();
        Reference::new(samples, aligned, None)
    }

    #[test]
    fn drift_is_the_mean_shift_between_two_aligned_windows() {
        let earlier = window(&[100.0; 12], true);
        let later = window(&[117.0; 12], true).with_drift_from(&earlier, "wal", &Rule::default());
        assert_eq!(later.drift_of("wal"), Some(17.0));
        assert_eq!(later.drift_of("wal_per_txn"), None);
        assert!(!later.after_change);
    }

    #[test]
    fn unaligned_or_short_windows_have_no_drift() {
        let rule = Rule::default();
        let aligned = window(&[100.0; 12], true);
        let plain = window(&[150.0; 12], false).with_drift_from(&aligned, "wal", &rule);
        assert_eq!(plain.drift_of("wal"), None);
        let short = window(&[150.0; 5], true).with_drift_from(&aligned, "wal", &rule);
        assert_eq!(short.drift_of("wal"), None);
    }
}
