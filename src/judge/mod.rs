//! Judging a change: the observation window against the window before it.
//!
//! # The rule
//!
//! For each metric, take the samples before the change (`B`) and after it
//! (`A`). A metric **moved** in one direction only when both hold:
//!
//! 1. its median shifted that way by more than the *noise band* of `B`:
//!    `1.4826 × MAD(B)` (the median absolute deviation, scaled to estimate a
//!    standard deviation but blind to a single checkpoint spike), and never
//!    less than 5% of `B`'s median — a quiet before-window must not turn a
//!    harmless wobble (p95 latency 4.7 → 5.0 ms) into a verdict; and
//! 2. Welch's t-test over the windows' *independent readings* — the samples
//!    one query lookback apart, which share no data (`blocks`) — gives
//!    p < 0.025 for that direction: the test is two-sided at 0.05, so a
//!    change that did nothing reads as moved, either way, at most 5% of the
//!    time. Overlapping `rate()` samples are never counted as separate
//!    evidence (on the demo that called a no-op change `regressed` at
//!    p = 0.0005).
//!
//! And the band is at least the drift between two windows of the setting in
//! force before the change, when measured (`reference`: two before-windows
//! in the first cycle, the re-measurement after a rollback, a fresh window
//! after a kept change): load wanders between windows, not only inside one.
//!
//! Both windows need more than 8 samples and two independent readings
//! (fewer and the test has no power), and at most 20% of the goal metric's
//! samples after the change may be missing.
//!
//! Verdicts, first match wins: an alert that fired → `alert_fired`; missing
//! data → `no_data` (fail closed; transactions counted before the change but
//! not after it are missing data too); a guard with some samples before the
//! change but too few to compare → `inconclusive` (a guard with none at all,
//! an objective nobody measures here, is named in the reason as not
//! guarded); throughput fell beyond its noise band, the goal moved the wrong
//! way, or any other SLA metric (a *guard*) became violated or got
//! materially worse → `regressed`; the goal moved the right way →
//! `improved`; otherwise `no_effect`. Only `improved` keeps a change.
//!
//! Throughput (transactions per second, from the database's own counter) is
//! a guard whether or not an objective names it, and a metric marked
//! `per: transaction` is judged per transaction (`throughput` says why).
//!
//! A guard got *materially* worse when it moved the wrong way by the rule
//! above and the move used up more than `guard_margin` (10%) of its headroom
//! to its objective: a quiet metric has a tiny noise band, and IO-wait going
//! from 0.54% to 0.59% against an objective of < 25% is no reason to throw
//! away a 65% WAL cut. A guard already violated before the change, or one
//! with no objective, has no headroom to spend: any move beyond its noise
//! counts. A throughput guard such as `>= 1` tx/s has about all of its value
//! as headroom, so losing 10% of throughput still counts.
//!
//! A WAL verdict over a window shorter than the server's checkpoint cycle is
//! *provisional*: a window without a checkpoint shows the full-page-image-free
//! floor and flatters long checkpoint spacing (REFERENCE.md). When the tuner
//! could start both windows with a CHECKPOINT, a WAL goal is instead compared
//! by window mean, paired by transactions (or time) since the checkpoint
//! (`aligned`), and the
//! verdict is conservative rather than provisional.

pub mod aligned;
pub mod blocks;
mod explain;
mod guard;
pub mod reference;
pub mod stats;
pub mod throughput;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::explain::{describe, describe_throughput};
use self::explain::{provisional, short, throughput_numbers};
use self::guard::Guards;
use self::stats::{median, scaled_mad, welch_p_less};
use self::throughput::{Counted, THROUGHPUT};
use crate::config::objective::Comparison;
use crate::config::Direction;
use crate::metrics::Sample;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    NoEffect,
    Regressed,
    AlertFired,
    NoData,
    /// Too little evidence about a guard to call the change harmless.
    Inconclusive,
}

impl Verdict {
    pub fn keeps(self) -> bool {
        self == Verdict::Improved
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::NoEffect => "no_effect",
            Verdict::Regressed => "regressed",
            Verdict::AlertFired => "alert_fired",
            Verdict::NoData => "no_data",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The thresholds of the rule in the module doc.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub min_samples: usize,
    pub alpha: f64,
    /// Multiples of the scaled MAD a median must move.
    pub band: f64,
    /// The smallest shift that counts, as a fraction of the before-median.
    pub min_effect: f64,
    pub max_missing: f64,
    /// How much of a guard metric's headroom to its objective a change may
    /// use up before its worsening counts as harm (module doc).
    pub guard_margin: f64,
}

impl Default for Rule {
    fn default() -> Rule {
        Rule {
            min_samples: 9,
            alpha: 0.05,
            band: 1.0,
            min_effect: 0.05,
            max_missing: 0.2,
            guard_margin: crate::config::tune::DEFAULT_GUARD_MARGIN,
        }
    }
}

/// An SLA metric as the judge sees it.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    pub name: String,
    pub direction: Direction,
    /// The objective's comparison and limit, when known.
    pub limit: Option<(Comparison, f64)>,
    /// Judged per transaction (`per: transaction`): divided by the
    /// throughput over this span, the lookback of the metric's query.
    pub per_transaction: Option<Duration>,
    /// How far back its query reads (the longest `rate()` range): samples
    /// closer than this share data (`blocks`).
    pub lookback: Duration,
}

/// How the observation window ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Complete,
    AlertFired(String),
    NoData(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Movement {
    Better,
    Worse,
    WithinNoise,
}

/// What a window is summarised by, and the test behind the movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Median, noise band from the MAD, Welch's t over independent readings.
    Median,
    /// Mean of two checkpoint-aligned windows, samples paired by time since
    /// the checkpoint, paired t-test over independent readings (`aligned`).
    AlignedMean,
    /// The same, samples paired by transactions since the checkpoint.
    AlignedMeanByWork,
}

/// One metric's before/after comparison: the evidence behind a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shift {
    pub metric: String,
    pub statistic: Statistic,
    pub n_before: usize,
    pub n_after: usize,
    /// Independent readings (`blocks`) the test compared, per window.
    pub readings: usize,
    /// The window's median, or its mean for `AlignedMean`.
    pub before: f64,
    pub after: f64,
    /// Half-width of the noise band around the before-median.
    pub noise: f64,
    /// The drift between two windows of the setting in force before the
    /// change, when measured (`reference`); the band is at least this wide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<f64>,
    pub p_better: f64,
    pub p_worse: f64,
    pub movement: Movement,
    /// The metric was divided by the throughput: values per transaction.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub per_transaction: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
    pub goal: Option<Shift>,
    pub others: Vec<Shift>,
    /// Throughput before and after, in transactions per second, when the
    /// database counted them in both windows.
    pub throughput: Option<Shift>,
    /// Set when the verdict may change over a full checkpoint cycle.
    pub provisional: Option<String>,
}

pub struct JudgeInput<'a> {
    pub goal: &'a str,
    /// Every SLA metric, the goal included.
    pub metrics: &'a [MetricSpec],
    pub before: &'a [Sample],
    pub after: &'a [Sample],
    pub ended: &'a Ended,
    pub observed: Duration,
    /// The goal is a WAL metric: apply the checkpoint-cycle caveat.
    pub wal_goal: bool,
    /// Both windows start at a CHECKPOINT the tuner issued and are sampled
    /// at the same offsets from it: a WAL goal is compared by `aligned`.
    pub aligned: bool,
    /// Transactions counted with every sample of each window, when the
    /// database could count them: throughput, the guard every change
    /// answers to, and, in aligned windows, the transactions since each
    /// CHECKPOINT that pair their samples.
    pub counts: Counted<'a>,
    /// How far the goal drifted between two windows of the setting in force
    /// before the change: the goal's noise band is widened to it.
    pub drift: Option<f64>,
    pub checkpoint_timeout: Option<Duration>,
    /// Time between two samples: with each metric's lookback, which samples
    /// are independent readings (`blocks`).
    pub interval: Duration,
    pub rule: Rule,
}

fn values(samples: &[Sample], metric: &str) -> Vec<f64> {
    samples
        .iter()
        .filter_map(|s| s.get(metric))
        .filter(|v| v.is_finite())
        .collect()
}

/// The fewest independent readings a window may be judged on: one has no
/// spread to test against.
pub const MIN_READINGS: usize = 2;

/// Whether a window of `n` samples, `stride` apart per reading, has enough
/// of both to be compared.
pub(crate) fn enough(n: usize, stride: usize, rule: &Rule) -> bool {
    n >= rule.min_samples && n.div_ceil(stride.max(1)) >= MIN_READINGS
}

/// Compares two windows of one metric by the rule, testing every
/// `stride`-th sample (`blocks`); `None` when either has too few samples or
/// readings.
pub fn compare(
    metric: &str,
    before: &[f64],
    after: &[f64],
    direction: Direction,
    rule: &Rule,
    stride: usize,
) -> Option<Shift> {
    if !enough(before.len(), stride, rule) || !enough(after.len(), stride, rule) {
        return None;
    }
    let center_before = median(before)?;
    let center_after = median(after)?;
    let noise = (rule.band * scaled_mad(before)?).max(rule.min_effect * center_before.abs());
    let (b, a) = (blocks::thin(before, stride), blocks::thin(after, stride));
    let (p_down, p_up) = (welch_p_less(&a, &b)?, welch_p_less(&b, &a)?);
    let (p_better, p_worse) = match direction {
        Direction::LowerIsBetter => (p_down, p_up),
        Direction::HigherIsBetter => (p_up, p_down),
    };
    Some(Shift {
        metric: metric.to_string(),
        statistic: Statistic::Median,
        n_before: before.len(),
        n_after: after.len(),
        readings: a.len().min(b.len()),
        before: center_before,
        after: center_after,
        noise,
        drift: None,
        p_better,
        p_worse,
        per_transaction: false,
        movement: movement(
            direction,
            center_before,
            center_after,
            noise,
            p_better,
            p_worse,
            rule,
        ),
    })
}

/// Moved only when the shift clears the noise band *and* the test agrees,
/// two-sided: each direction gets half of `alpha`.
pub(super) fn movement(
    direction: Direction,
    before: f64,
    after: f64,
    noise: f64,
    p_better: f64,
    p_worse: f64,
    rule: &Rule,
) -> Movement {
    let gain = match direction {
        Direction::LowerIsBetter => before - after,
        Direction::HigherIsBetter => after - before,
    };
    let alpha = rule.alpha / 2.0;
    if gain > noise && p_better < alpha {
        Movement::Better
    } else if -gain > noise && p_worse < alpha {
        Movement::Worse
    } else {
        Movement::WithinNoise
    }
}

fn direction_of(spec: &MetricSpec) -> Direction {
    match spec.limit {
        Some((c, _)) if c.upper_bound() => Direction::LowerIsBetter,
        Some(_) => Direction::HigherIsBetter,
        None => spec.direction,
    }
}

/// Applies the rule in the module doc.
pub fn judge(input: &JudgeInput<'_>) -> Judgement {
    let rule = &input.rule;
    let provisional = provisional(input);
    let verdict = |verdict, reason: String, goal, others, throughput| Judgement {
        verdict,
        reason,
        goal,
        others,
        throughput,
        provisional: provisional.clone(),
    };

    match input.ended {
        Ended::AlertFired(name) => {
            return verdict(
                Verdict::AlertFired,
                format!("alert {name} started firing during observation"),
                None,
                Vec::new(),
                None,
            )
        }
        Ended::NoData(why) => return verdict(Verdict::NoData, why.clone(), None, Vec::new(), None),
        Ended::Complete => {}
    }

    let (throughput, throughput_note, throughput_thin) = match throughput::guard(input) {
        throughput::Guard::Compared(shift) => (Some(shift), None, None),
        throughput::Guard::Unguarded(why) => (None, Some(why), None),
        throughput::Guard::Thin(why) => (None, None, Some(why)),
        throughput::Guard::Silent(why) => {
            return verdict(Verdict::NoData, why, None, Vec::new(), None)
        }
    };
    let (before, after, per_second) = throughput::normalised(input);
    let input = &JudgeInput {
        before: &before,
        after: &after,
        ..*input
    };

    let goal_spec = input.metrics.iter().find(|m| m.name == input.goal);
    let goal_direction = goal_spec.map(direction_of).unwrap_or_default();
    let goal_lookback = goal_spec.map(|s| s.lookback).unwrap_or_default();
    let goal_stride = blocks::stride(goal_lookback, input.interval);
    let goal_before = values(input.before, input.goal);
    let goal_after = values(input.after, input.goal);
    let missing = input.after.len().saturating_sub(goal_after.len());
    if !input.after.is_empty() && missing as f64 > rule.max_missing * input.after.len() as f64 {
        let why = format!(
            "{}: {missing} of {} samples after the change had no data",
            input.goal,
            input.after.len()
        );
        return verdict(Verdict::NoData, why, None, Vec::new(), None);
    }
    let goal = if input.wal_goal && input.aligned {
        let work = input
            .counts
            .before
            .zip(input.counts.after)
            .map(|(b, a)| aligned::Work {
                before: &b.transactions,
                after: &a.transactions,
            });
        aligned::compare(
            input.goal,
            input.before,
            input.after,
            work,
            goal_direction,
            rule,
            goal_stride,
        )
    } else {
        compare(
            input.goal,
            &goal_before,
            &goal_after,
            goal_direction,
            rule,
            goal_stride,
        )
    };
    let goal = match input.drift {
        Some(drift) => goal.map(|g| widen(g, drift, goal_direction, rule)),
        None => goal,
    };
    let Some(mut goal) = goal else {
        let why = format!(
            "{}: {} samples before and {} after; more than {} each are needed, spanning at least {MIN_READINGS} of its query's {} lookbacks (observe longer)",
            input.goal,
            goal_before.len(),
            goal_after.len(),
            rule.min_samples - 1,
            crate::config::units::format_duration(goal_lookback)
        );
        return verdict(Verdict::NoData, why, None, Vec::new(), None);
    };
    goal.per_transaction = goal_spec.is_some_and(|s| throughput::counted(s, input));

    let Guards {
        others,
        harm,
        silent,
        thin,
        unguarded,
        tolerated,
    } = guard::guards(input);
    let verdict = |v, reason, goal, others| verdict(v, reason, goal, others, throughput.clone());

    if let Some(why) = silent {
        return verdict(Verdict::NoData, why, Some(goal), others);
    }
    if let Some(why) = thin.or(throughput_thin) {
        return verdict(Verdict::Inconclusive, why, Some(goal), others);
    }
    let mut notes = String::new();
    if !unguarded.is_empty() {
        notes.push_str(&format!(
            "; not guarded (no data before the change): {}",
            unguarded.join(", ")
        ));
    }
    for note in throughput_note.iter().chain(&per_second) {
        notes.push_str(&format!("; {note}"));
    }
    if let Some(fell) = throughput
        .as_ref()
        .filter(|t| t.movement == Movement::Worse)
    {
        let also = if goal.movement == Movement::Worse {
            format!("; {} got worse too", input.goal)
        } else {
            format!("; less work was done, whatever {} did", input.goal)
        };
        let why = format!(
            "{THROUGHPUT} fell beyond its noise band: {}{also}{notes}",
            throughput_numbers(fell)
        );
        return verdict(Verdict::Regressed, why, Some(goal), others);
    }
    if goal.movement == Movement::Worse {
        let why = format!("{} got worse beyond its noise band{notes}", input.goal);
        return verdict(Verdict::Regressed, why, Some(goal), others);
    }
    if let Some(why) = harm {
        return verdict(Verdict::Regressed, why, Some(goal), others);
    }
    if goal.movement == Movement::Better {
        let mut why = format!("{} improved beyond its noise band", input.goal);
        if goal.per_transaction {
            why.push_str(" per transaction");
        }
        if !tolerated.is_empty() {
            why.push_str(&format!(
                " (within {:.0}% of their objectives' headroom: {})",
                rule.guard_margin * 100.0,
                tolerated.join("; ")
            ));
        }
        why.push_str(&notes);
        return verdict(Verdict::Improved, why, Some(goal), others);
    }
    let why = format!("{} within its noise band{notes}", input.goal);
    verdict(Verdict::NoEffect, why, Some(goal), others)
}

/// Widens a shift's noise band to the drift measured between two windows of
/// one setting, and decides its movement again.
fn widen(mut shift: Shift, drift: f64, direction: Direction, rule: &Rule) -> Shift {
    shift.drift = Some(drift);
    if drift > shift.noise {
        shift.noise = drift;
        shift.movement = movement(
            direction,
            shift.before,
            shift.after,
            shift.noise,
            shift.p_better,
            shift.p_worse,
            rule,
        );
    }
    shift
}

#[cfg(test)]
mod tests;
