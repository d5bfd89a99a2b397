//! Throughput: the work each window did, from the database's own transaction
//! counter read with every sample, and the two things the judge does with it.
//!
//! WAL bytes/s is work times WAL per unit of work. Under a closed-loop load
//! (a fixed number of clients, as pgbench) a change that makes every commit
//! wait lowers the work done, and with it every rate that scales with work:
//! the WAL rate falls and reads as a win while the users got less done (a
//! real run kept such a change for a 16.7% WAL cut while pgbench lost 15-20%
//! of its throughput). So:
//!
//! - throughput is always a guard, whether or not an objective names it: a
//!   fall beyond its noise band (the median rule of `judge`, higher is
//!   better) is `regressed`, whatever the goal did;
//! - a metric marked `per: transaction` (WAL bytes/s) is judged divided by
//!   the throughput over the span its own query averages over (its
//!   lookback), so a cut that comes only from less work is no effect.
//!
//! Under an open-loop load (the clients set the rate, as the demo's writer
//! does) throughput does not move when commits get slower; the latency the
//! clients see does, and its objective is the guard that catches it.

use std::time::Duration;

use serde::Serialize;

use super::blocks::stride;
use super::stats::median;
use super::{compare, enough, widen, JudgeInput, MetricSpec, Rule, Shift, MIN_READINGS};
use crate::config::Direction;
use crate::metrics::Sample;

/// The name throughput goes by in verdicts and reports.
pub const THROUGHPUT: &str = "throughput";

/// Transactions counted with each sample of one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Seconds since the counter started (the window's CHECKPOINT, or its
    /// first reading), one per sample, rising.
    pub seconds: Vec<f64>,
    /// Transactions committed or rolled back since then, one per sample.
    pub transactions: Vec<f64>,
}

impl Counts {
    pub fn len(&self) -> usize {
        self.transactions.len().min(self.seconds.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Transactions per second over the `span` ending at sample `i`: never
    /// less than the gap since the previous sample (a rate read between two
    /// readings of a counter that backends flush about once a second is
    /// mostly flush timing), never before the counter started.
    pub fn rate(&self, i: usize, span: Duration) -> Option<f64> {
        let (&t, &n) = (self.seconds.get(i)?, self.transactions.get(i)?);
        let previous = if i == 0 { 0.0 } else { self.seconds[i - 1] };
        let from = (t - span.as_secs_f64()).min(previous).max(0.0);
        let elapsed = t - from;
        let rate = (n - self.at(from)?) / elapsed;
        (elapsed > 0.0 && rate.is_finite() && rate >= 0.0).then_some(rate)
    }

    /// Throughput at every sample (`rate`), samples without one left out.
    pub fn series(&self, span: Duration) -> Vec<f64> {
        (0..self.len()).filter_map(|i| self.rate(i, span)).collect()
    }

    /// The count at `t` seconds, linear between readings; 0 when the
    /// counter started.
    fn at(&self, t: f64) -> Option<f64> {
        let points: Vec<(f64, f64)> = std::iter::once((0.0, 0.0))
            .chain(
                self.seconds
                    .iter()
                    .copied()
                    .zip(self.transactions.iter().copied()),
            )
            .collect();
        points.windows(2).find_map(|w| {
            let ((t0, n0), (t1, n1)) = (w[0], w[1]);
            if !(t0 <= t && t <= t1) {
                return None;
            }
            if t1 == t0 {
                return Some(n1);
            }
            Some(n0 + (n1 - n0) * (t - t0) / (t1 - t0))
        })
    }
}

/// Both windows' counts, when the database could count them, the span the
/// throughput guard reads throughput over, and how far throughput drifted
/// between two windows of the setting in force before the change (`reference`):
/// the guard's band is at least that wide.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counted<'a> {
    pub before: Option<&'a Counts>,
    pub after: Option<&'a Counts>,
    pub span: Duration,
    pub drift: Option<f64>,
}

/// `metric` divided by the throughput at each sample: its value per
/// transaction. A sample with no throughput (nothing committed in the span)
/// has no value.
pub(super) fn divide(
    samples: &[Sample],
    metric: &str,
    counts: &Counts,
    span: Duration,
) -> Vec<Sample> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut s = s.clone();
            let value = s
                .get(metric)
                .zip(counts.rate(i, span))
                .filter(|(_, rate)| *rate > 0.0)
                .map(|(v, rate)| v / rate);
            s.values.insert(metric.to_string(), value);
            s
        })
        .collect()
}

/// `spec` is judged per transaction: it is marked so and both windows were
/// counted.
pub(super) fn counted(spec: &MetricSpec, input: &JudgeInput<'_>) -> bool {
    spec.per_transaction.is_some() && input.counts.before.is_some() && input.counts.after.is_some()
}

/// Both windows with every `per: transaction` metric divided by the
/// throughput at each sample, when both were counted; else as they are, with
/// a note naming the metrics judged per second instead.
pub(super) fn normalised(input: &JudgeInput<'_>) -> (Vec<Sample>, Vec<Sample>, Option<String>) {
    let mut before = input.before.to_vec();
    let mut after = input.after.to_vec();
    let mut per_second = Vec::new();
    for spec in input.metrics {
        let Some(span) = spec.per_transaction else {
            continue;
        };
        match input.counts.before.zip(input.counts.after) {
            Some((b, a)) => {
                before = divide(&before, &spec.name, b, span);
                after = divide(&after, &spec.name, a, span);
            }
            None => per_second.push(spec.name.clone()),
        }
    }
    let note = (!per_second.is_empty()).then(|| {
        format!(
            "judged per second, not per transaction (transactions not counted): {}",
            per_second.join(", ")
        )
    });
    (before, after, note)
}

/// An objective on a per-second rate, in the per-transaction units the
/// metric is judged in: the limit at the throughput before the change. A
/// per-transaction guard then "becomes violated" when, doing the same work,
/// it would cross its objective.
pub(super) fn limit_per_transaction(
    spec: &MetricSpec,
    input: &JudgeInput<'_>,
    limit: f64,
) -> Option<f64> {
    let span = spec.per_transaction?;
    let before = median(&input.counts.before?.series(span))?;
    (before > 0.0).then(|| limit / before)
}

/// What the throughput guard says.
pub(super) enum Guard {
    /// Compared: the shift, moved or not.
    Compared(Shift),
    /// No counts before the change (no database): named, not guarded.
    Unguarded(String),
    /// Counts before the change but too few samples: cannot be shown harmless.
    Thin(String),
    /// Counted before the change, not after: fails closed.
    Silent(String),
}

/// Compares the throughput of the two windows by the median rule.
pub(super) fn guard(input: &JudgeInput<'_>) -> Guard {
    let rule: &Rule = &input.rule;
    let Some(before) = input.counts.before else {
        return Guard::Unguarded(
            "throughput not guarded: no transactions counted before the change (no PostgreSQL)"
                .into(),
        );
    };
    let before = before.series(input.counts.span);
    // Throughput read over `span` at each sample: one span apart, the
    // readings are the counter's increases over stretches of their own.
    let stride = stride(input.counts.span, input.interval);
    if !enough(before.len(), stride, rule) {
        return Guard::Thin(format!(
            "{THROUGHPUT}: only {} samples counted before the change, {} needed to tell whether it fell, spanning at least {MIN_READINGS} spans of {} (observe longer)",
            before.len(),
            rule.min_samples,
            crate::config::units::format_duration(input.counts.span)
        ));
    }
    let after = input
        .counts
        .after
        .map(|c| c.series(input.counts.span))
        .unwrap_or_default();
    match compare(
        THROUGHPUT,
        &before,
        &after,
        Direction::HigherIsBetter,
        rule,
        stride,
    ) {
        Some(shift) => Guard::Compared(match input.counts.drift {
            Some(drift) => widen(shift, drift, Direction::HigherIsBetter, rule),
            None => shift,
        }),
        None => Guard::Silent(format!(
            "{THROUGHPUT}: transactions were counted before the change but only {} samples after it (pg_stat_database unreadable?)",
            after.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(seconds: &[f64], transactions: &[f64]) -> Counts {
        Counts {
            seconds: seconds.to_vec(),
            transactions: transactions.to_vec(),
        }
    }

    #[test]
    fn rate_reads_the_span_back_from_each_sample() {
        // A CHECKPOINT at 0, a 5 s lookback waited out, then a sample a
        // second at 100 transactions per second.
        let c = counts(&[5.0, 6.0, 7.0], &[500.0, 600.0, 700.0]);
        let span = Duration::from_secs(5);
        assert_eq!(c.rate(0, span), Some(100.0));
        assert_eq!(c.rate(2, span), Some(100.0));
        assert_eq!(c.series(span), vec![100.0; 3]);
        // Never before the counter started; never less than one gap.
        let c = counts(&[1.0, 2.0, 4.0], &[10.0, 30.0, 70.0]);
        assert_eq!(c.rate(1, span), Some(15.0));
        assert_eq!(c.rate(2, Duration::from_millis(500)), Some(20.0));
        assert_eq!(c.rate(3, span), None);
    }

    #[test]
    fn per_transaction_divides_by_the_throughput_at_each_sample() {
        let samples: Vec<Sample> = [1000.0, 2000.0]
            .iter()
            .map(|v| Sample {
                at: chrono::Utc::now(),
                values: [("wal".to_string(), Some(*v))].into(),
            })
            .collect();
        let c = counts(&[1.0, 2.0], &[10.0, 10.0]);
        let per = divide(&samples, "wal", &c, Duration::from_secs(1));
        assert_eq!(per[0].get("wal"), Some(100.0));
        assert_eq!(per[1].get("wal"), None, "nothing committed: no value");
    }
}
