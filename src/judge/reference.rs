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
//! setting, and give the drift the same way. A goal judged per transaction
//! drifts per transaction: both windows are divided by their throughput
//! first.
//!
//! And in the first cycle there is no earlier window at all: the tuner
//! measures two before-windows, and the second is judged against with the
//! drift from the first. Without it the band knows only the noise inside one
//! window, and a no-op change whose after-window caught a calmer minute of
//! the host reads as a win or a loss (an A/A test: BENCHMARKS.md). Plain
//! windows (not opened by a CHECKPOINT) drift by their medians, as the judge
//! compares them.
//!
//! Throughput drifts too (the host's other work comes and goes: consecutive
//! 15 s pgbench windows of one setting differed by up to 12% on a shared
//! 2-core machine), so the same two windows give the drift of throughput,
//! and the throughput guard's band is widened to it the same way.

use std::time::Duration;

use super::aligned::{self, Work};
use super::blocks;
use super::throughput::{divide, Counts};
use super::{values, Rule};
use crate::config::Direction;
use crate::metrics::Sample;

/// A window describing the current state.
pub struct Reference {
    pub samples: Vec<Sample>,
    /// It starts at a CHECKPOINT the tuner issued (see `aligned`).
    pub aligned: bool,
    /// Per sample, transactions since the window's CHECKPOINT (or its
    /// start, unaligned), when the database could count them.
    pub counts: Option<Counts>,
    /// It is the first window after a change: a stale "before" for a WAL
    /// goal (module doc).
    pub after_change: bool,
    /// How far a goal metric moved between this window and an earlier one
    /// of the same setting: the least a change must move it to count.
    pub drift: Option<Drift>,
    /// How far the median throughput moved between this window and an
    /// earlier one of the same setting, in transactions per second.
    pub throughput_drift: Option<f64>,
}

/// The drift of one metric between two windows of one setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub metric: String,
    /// Measured per transaction.
    pub per_transaction: bool,
    pub value: f64,
}

impl Reference {
    /// A window of samples; `after_change` and `drift` start unset.
    pub fn new(samples: Vec<Sample>, aligned: bool, counts: Option<Counts>) -> Reference {
        Reference {
            samples,
            aligned,
            counts,
            after_change: false,
            drift: None,
            throughput_drift: None,
        }
    }

    /// The same window, recorded with the drift of the goal from `earlier`,
    /// a window of the same setting, compared as the judge compares a change
    /// (every `stride`-th sample a reading, `blocks`). Both must start at a
    /// CHECKPOINT, or neither: a window opened by one holds a burst the other
    /// does not. With `per_transaction` (the span of the goal's query), the
    /// goal is divided by each window's throughput first, when both were
    /// counted.
    pub fn with_drift_from(
        mut self,
        earlier: &Reference,
        goal: &str,
        per_transaction: Option<Duration>,
        rule: &Rule,
        stride: usize,
    ) -> Reference {
        self.drift =
            drift(goal, earlier, &self, per_transaction, rule, stride).map(|(value, per)| Drift {
                metric: goal.to_string(),
                per_transaction: per,
                value,
            });
        self
    }

    /// The same window, recorded with the drift of its throughput (read over
    /// `span`) from `earlier`, a window of the same setting, when both were
    /// counted. Unlike WAL, throughput has no cycle to align to.
    pub fn with_throughput_drift_from(
        mut self,
        earlier: &Reference,
        span: Duration,
        rule: &Rule,
        interval: Duration,
    ) -> Reference {
        let (Some(before), Some(after)) = (&earlier.counts, &self.counts) else {
            return self;
        };
        self.throughput_drift = super::compare(
            super::throughput::THROUGHPUT,
            &before.series(span),
            &after.series(span),
            Direction::HigherIsBetter,
            rule,
            blocks::stride(span, interval),
        )
        .map(|s| (s.after - s.before).abs());
        self
    }

    /// The drift of `metric` in the units it is judged in: a drift of WAL
    /// bytes/s says nothing about WAL bytes per transaction, nor the other
    /// way round.
    pub fn drift_of(&self, metric: &str, per_transaction: bool) -> Option<f64> {
        self.drift
            .as_ref()
            .filter(|d| d.metric == metric && d.per_transaction == per_transaction)
            .map(|d| d.value)
    }
}

/// The goal's shift between two windows of one setting, compared as the
/// judge compares a change (`aligned::compare` when both start at a
/// CHECKPOINT, by median when neither does), and whether it is per
/// transaction; `None` when only one is aligned or too few samples pair up.
fn drift(
    goal: &str,
    earlier: &Reference,
    later: &Reference,
    per_transaction: Option<Duration>,
    rule: &Rule,
    stride: usize,
) -> Option<(f64, bool)> {
    if earlier.aligned != later.aligned {
        return None;
    }
    let counts = earlier.counts.as_ref().zip(later.counts.as_ref());
    let work = counts.map(|(before, after)| Work {
        before: &before.transactions,
        after: &after.transactions,
    });
    let (before, after, per) = match (per_transaction, counts) {
        (Some(span), Some((b, a))) => (
            divide(&earlier.samples, goal, b, span),
            divide(&later.samples, goal, a, span),
            true,
        ),
        _ => (earlier.samples.clone(), later.samples.clone(), false),
    };
    let shift = if later.aligned {
        aligned::compare(
            goal,
            &before,
            &after,
            work,
            Direction::LowerIsBetter,
            rule,
            stride,
        )?
    } else {
        super::compare(
            goal,
            &values(&before, goal),
            &values(&after, goal),
            Direction::LowerIsBetter,
            rule,
            stride,
        )?
    };
    Some(((shift.after - shift.before).abs(), per))
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
        let later =
            window(&[117.0; 12], true).with_drift_from(&earlier, "wal", None, &Rule::default(), 1);
        assert_eq!(later.drift_of("wal", false), Some(17.0));
        assert_eq!(later.drift_of("wal", true), None);
        assert_eq!(later.drift_of("lat", false), None);
        assert!(!later.after_change);
    }

    #[test]
    fn a_goal_judged_per_transaction_drifts_per_transaction() {
        // The later window ran 20% fewer transactions at the same WAL per
        // transaction (500 B): 20% less WAL per second, no drift per
        // transaction.
        let counted = |tps: f64| Counts {
            seconds: (1..=12).map(|i| 5.0 * f64::from(i)).collect(),
            transactions: (1..=12).map(|i| tps * 5.0 * f64::from(i)).collect(),
        };
        let window = |tps: f64| Reference {
            counts: Some(counted(tps)),
            ..window(&[tps * 500.0; 12], true)
        };
        let rule = Rule::default();
        let span = Some(Duration::from_secs(5));
        let later = window(800.0).with_drift_from(&window(1000.0), "wal", span, &rule, 1);
        assert_eq!(later.drift_of("wal", true), Some(0.0));
        assert_eq!(later.drift_of("wal", false), None);
        let later = window(800.0).with_drift_from(&window(1000.0), "wal", None, &rule, 1);
        assert_eq!(later.drift_of("wal", false), Some(100_000.0));
    }

    #[test]
    fn throughput_drifts_between_any_two_counted_windows() {
        let counted = |tps: f64| Reference {
            counts: Some(Counts {
                seconds: (1..=12).map(f64::from).collect(),
                transactions: (1..=12).map(|i| tps * f64::from(i)).collect(),
            }),
            ..window(&[1.0; 12], false)
        };
        let rule = Rule::default();
        let span = Duration::from_secs(1);
        let later = counted(1080.0).with_throughput_drift_from(&counted(1200.0), span, &rule, span);
        assert_eq!(later.throughput_drift, Some(120.0));
        let uncounted = window(&[1.0; 12], false);
        let later = counted(1080.0).with_throughput_drift_from(&uncounted, span, &rule, span);
        assert_eq!(later.throughput_drift, None);
    }

    #[test]
    fn mixed_or_short_windows_have_no_drift_and_plain_ones_drift_by_median() {
        let rule = Rule::default();
        let aligned = window(&[100.0; 12], true);
        let plain = window(&[150.0; 12], false).with_drift_from(&aligned, "wal", None, &rule, 1);
        assert_eq!(plain.drift_of("wal", false), None);
        let short = window(&[150.0; 5], true).with_drift_from(&aligned, "wal", None, &rule, 1);
        assert_eq!(short.drift_of("wal", false), None);
        let earlier = window(&[100.0; 12], false);
        let later = window(&[108.0; 12], false).with_drift_from(&earlier, "wal", None, &rule, 1);
        assert_eq!(later.drift_of("wal", false), Some(8.0));
    }
}
