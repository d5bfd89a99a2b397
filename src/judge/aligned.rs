//! Checkpoint-aligned WAL windows.
//!
//! WAL volume is set by full-page images, which cluster right after each
//! checkpoint: the first change of every page after a checkpoint logs the
//! whole 8 kB page. A window that happens to hold no checkpoint shows the
//! FPI-free floor, and one that starts mid-cycle shows an arbitrary slice of
//! the burst, so comparing two such windows mostly compares *where in the
//! cycle* they fell. That fooled the median rule: after `max_wal_size` was
//! raised, the next minute held no checkpoint, every setting looked like a
//! 80% win, and `wal_compression` was never tried.
//!
//! For a WAL goal the tuner therefore starts both windows with a `CHECKPOINT`
//! of its own and samples them at the same offsets from it, and pairs each
//! before-sample with the after-window at the same point of the burst:
//!
//! - **by transactions since the CHECKPOINT**, when the database's counter
//!   was read with every sample of both windows. The burst is spent page by
//!   page as transactions first touch them, so it is work, not time, that
//!   moves a window through it: a window that ran 10% more transactions per
//!   second is further through its burst at every second and shows less WAL
//!   per transaction for no other reason. The after-window's curve is
//!   interpolated at each before-sample's count; counts outside it drop out.
//! - **by time since the CHECKPOINT** (sample *i* with sample *i*) without
//!   the counts, or when too few counts overlap.
//!
//! Then:
//!
//! - **statistic**: the window mean (what the window wrote in all: the burst
//!   counts in full, as it does on disk and in replication), not the median,
//!   which a burst shorter than half the window would hide;
//! - **noise band**: the scaled MAD of the before-window's independent
//!   readings over √k (a robust standard error of its mean), never below
//!   the 5% minimum effect;
//! - **test**: the paired t-test (`stats::paired_t_p_less`), two-sided at
//!   0.05, on the pairs one query lookback apart (`blocks`: neighbours share
//!   data), on the log of each pair's ratio: a WAL cut is a share of the
//!   burst, large in it and small after, and in logs it is one effect, not a
//!   spread that hides it. (A sign-flip test has no use for the 3-4 readings
//!   of a short window: its smallest p is 1/2^k.)
//!
//! The verdict is conservative, not flattering: a window shorter than the
//! server's checkpoint cycle holds exactly one burst, so spacing checkpoints
//! further apart than the window earns nothing here, while compression and
//! any spacing within the window are measured in full.

use super::blocks::thin;
use super::stats::{mean, paired_t_p_less, scaled_mad};
use super::{movement, Rule, Shift, Statistic, MIN_READINGS};
use crate::config::Direction;
use crate::metrics::Sample;

/// Pairs `(before, after)` of a metric at the same time from each window's
/// checkpoint; offsets where either side has no data are left out.
fn pairs_by_time(metric: &str, before: &[Sample], after: &[Sample]) -> Vec<(f64, f64)> {
    before
        .iter()
        .zip(after)
        .filter_map(|(b, a)| Some((b.get(metric)?, a.get(metric)?)))
        .filter(|(b, a)| b.is_finite() && a.is_finite())
        .collect()
}

/// Transactions since each window's CHECKPOINT, one per sample.
#[derive(Debug, Clone, Copy)]
pub struct Work<'a> {
    pub before: &'a [f64],
    pub after: &'a [f64],
}

/// Pairs each before-sample with the after-window's value interpolated at
/// the same count of transactions since its checkpoint (module doc).
fn pairs_by_work(
    metric: &str,
    before: &[Sample],
    after: &[Sample],
    work: Work<'_>,
) -> Vec<(f64, f64)> {
    if work.before.len() != before.len() || work.after.len() != after.len() {
        return Vec::new();
    }
    let curve: Vec<(f64, f64)> = after
        .iter()
        .zip(work.after)
        .filter_map(|(s, &x)| Some((x, s.get(metric)?)))
        .filter(|(x, v)| x.is_finite() && v.is_finite())
        .collect();
    before
        .iter()
        .zip(work.before)
        .filter_map(|(s, &x)| {
            let b = s.get(metric).filter(|v| v.is_finite())?;
            Some((b, interpolate(&curve, x)?))
        })
        .collect()
}

/// The value of a piecewise-linear curve (points in rising `x`) at `x`;
/// `None` outside its range.
fn interpolate(curve: &[(f64, f64)], x: f64) -> Option<f64> {
    curve.windows(2).find_map(|w| {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if !(x0 <= x && x <= x1) {
            return None;
        }
        if x1 == x0 {
            return Some(y0);
        }
        Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    })
}

/// The mean of a metric over a window: its SLA value when the window starts
/// at a checkpoint (an instant reading could sit in the FPI-free floor).
pub fn window_mean(samples: &[Sample], metric: &str) -> Option<f64> {
    let values: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.get(metric))
        .filter(|v| v.is_finite())
        .collect();
    mean(&values)
}

/// The effect of each independent pair (module doc): the log of its ratio
/// when every value is positive, else its difference.
fn effects(pairs: &[(f64, f64)]) -> Vec<f64> {
    if pairs.iter().all(|(b, a)| *b > 0.0 && *a > 0.0) {
        pairs.iter().map(|(b, a)| (a / b).ln()).collect()
    } else {
        pairs.iter().map(|(b, a)| a - b).collect()
    }
}

/// Compares two checkpoint-aligned windows of one metric (module doc),
/// paired by `work` when given and enough of it overlaps, testing every
/// `stride`-th pair; `None` with fewer than `rule.min_samples` pairs or
/// `MIN_READINGS` independent ones.
pub fn compare(
    metric: &str,
    before: &[Sample],
    after: &[Sample],
    work: Option<Work<'_>>,
    direction: Direction,
    rule: &Rule,
    stride: usize,
) -> Option<Shift> {
    let by_work = work
        .map(|w| pairs_by_work(metric, before, after, w))
        .filter(|p| p.len() >= rule.min_samples);
    let (pairs, statistic) = match by_work {
        Some(p) => (p, Statistic::AlignedMeanByWork),
        None => (pairs_by_time(metric, before, after), Statistic::AlignedMean),
    };
    if pairs.len() < rule.min_samples {
        return None;
    }
    let b: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let a: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let (mean_before, mean_after) = (mean(&b)?, mean(&a)?);
    let independent = thin(&pairs, stride);
    if independent.len() < MIN_READINGS {
        return None;
    }
    let readings: Vec<f64> = independent.iter().map(|p| p.0).collect();
    let standard_error = scaled_mad(&readings)? / (readings.len() as f64).sqrt();
    let noise = (rule.band * standard_error).max(rule.min_effect * mean_before.abs());
    let down = effects(&independent);
    let up: Vec<f64> = down.iter().map(|d| -d).collect();
    let p_down = paired_t_p_less(&down)?;
    let p_up = paired_t_p_less(&up)?;
    let (p_better, p_worse) = match direction {
        Direction::LowerIsBetter => (p_down, p_up),
        Direction::HigherIsBetter => (p_up, p_down),
    };
    Some(Shift {
        metric: metric.to_string(),
        statistic,
        n_before: pairs.len(),
        n_after: pairs.len(),
        readings: independent.len(),
        before: mean_before,
        after: mean_after,
        noise,
        drift: None,
        p_better,
        p_worse,
        per_transaction: false,
        movement: movement(
            direction,
            mean_before,
            mean_after,
            noise,
            p_better,
            p_worse,
            rule,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::Movement;
    use chrono::Utc;
    use std::collections::BTreeMap;

    fn window(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .map(|v| Sample {
                at: Utc::now(),
                values: BTreeMap::from([("wal".to_string(), Some(*v))]),
            })
            .collect()
    }

    /// A burst right after the checkpoint, decaying to a floor of 400.
    fn burst(peak: f64) -> Vec<f64> {
        (0..12)
            .map(|i| 400.0 + peak * 0.6f64.powi(i) + [3.0, -2.0, 1.0, -4.0][i as usize % 4])
            .collect()
    }

    #[test]
    fn a_smaller_burst_is_a_win_the_median_cannot_see() {
        // Compression shrinks the burst; the floor is untouched. Over 12
        // samples the burst is gone after ~5, so the medians barely move.
        let before = window(&burst(5000.0));
        let after = window(&burst(1000.0));
        let rule = Rule::default();
        let s = compare(
            "wal",
            &before,
            &after,
            None,
            Direction::LowerIsBetter,
            &rule,
            1,
        )
        .unwrap();
        assert_eq!(s.movement, Movement::Better, "{s:?}");
        assert_eq!(s.statistic, Statistic::AlignedMean);
        assert!(s.after < s.before * 0.5, "{s:?}");
        let values = |w: &[Sample]| -> Vec<f64> { w.iter().filter_map(|x| x.get("wal")).collect() };
        let by_median = crate::judge::compare(
            "wal",
            &values(&before),
            &values(&after),
            Direction::LowerIsBetter,
            &rule,
            1,
        )
        .unwrap();
        assert_eq!(by_median.movement, Movement::WithinNoise, "{by_median:?}");
    }

    #[test]
    fn the_same_burst_twice_is_no_effect_and_a_bigger_one_is_worse() {
        let rule = Rule::default();
        let same = compare(
            "wal",
            &window(&burst(3000.0)),
            &window(&burst(3000.0)),
            None,
            Direction::LowerIsBetter,
            &rule,
            1,
        )
        .unwrap();
        assert_eq!(same.movement, Movement::WithinNoise, "{same:?}");
        let worse = compare(
            "wal",
            &window(&burst(1000.0)),
            &window(&burst(4000.0)),
            None,
            Direction::LowerIsBetter,
            &rule,
            1,
        )
        .unwrap();
        assert_eq!(worse.movement, Movement::Worse, "{worse:?}");
    }

    /// WAL per transaction as the burst is spent: a function of the
    /// transactions since the checkpoint, sampled at `tps` for 18 samples.
    fn by_work(peak: f64, tps: f64) -> (Vec<Sample>, Vec<f64>) {
        let work: Vec<f64> = (1..=18).map(|i| tps * 5.0 * i as f64).collect();
        let values: Vec<f64> = work
            .iter()
            .enumerate()
            .map(|(i, x)| 400.0 + peak * (-x / 20_000.0).exp() + [2.0, -1.0, 1.0][i % 3])
            .collect();
        (window(&values), work)
    }

    /// Compares two windows drawn by `by_work`, paired by their counts.
    fn compare_by_work(before: &(Vec<Sample>, Vec<f64>), after: &(Vec<Sample>, Vec<f64>)) -> Shift {
        let work = Work {
            before: &before.1,
            after: &after.1,
        };
        compare(
            "wal",
            &before.0,
            &after.0,
            Some(work),
            Direction::LowerIsBetter,
            &Rule::default(),
            1,
        )
        .unwrap()
    }

    #[test]
    fn more_transactions_per_second_is_not_a_win_when_paired_by_work() {
        // Nothing changed but the load: 30% more transactions per second
        // spend the burst sooner, so by time every after-sample is lower.
        let rule = Rule::default();
        let before = by_work(3000.0, 1000.0);
        let after = by_work(3000.0, 1300.0);
        let by_time = compare(
            "wal",
            &before.0,
            &after.0,
            None,
            Direction::LowerIsBetter,
            &rule,
            1,
        )
        .unwrap();
        assert_eq!(by_time.movement, Movement::Better, "{by_time:?}");
        let s = compare_by_work(&before, &after);
        assert_eq!(s.statistic, Statistic::AlignedMeanByWork);
        assert_eq!(s.movement, Movement::WithinNoise, "{s:?}");

        // A real cut still shows, whatever the load did.
        let s = compare_by_work(&before, &by_work(1000.0, 1300.0));
        assert_eq!(s.movement, Movement::Better, "{s:?}");
    }

    #[test]
    fn too_little_overlap_in_work_falls_back_to_time() {
        // The after-window ran a third of the transactions: most
        // before-counts lie beyond its curve.
        let s = compare_by_work(&by_work(3000.0, 1000.0), &by_work(3000.0, 330.0));
        assert_eq!(s.statistic, Statistic::AlignedMean, "{s:?}");
        assert_eq!(interpolate(&[(0.0, 1.0), (10.0, 3.0)], 5.0), Some(2.0));
        assert_eq!(interpolate(&[(0.0, 1.0), (10.0, 3.0)], 11.0), None);
    }

    #[test]
    fn pairs_skip_gaps_and_need_enough_of_them() {
        let before = window(&burst(3000.0));
        let mut after = window(&burst(500.0));
        for s in after.iter_mut().take(4) {
            s.values.insert("wal".into(), None);
        }
        // 8 pairs left: below the 9 the rule needs.
        assert!(compare(
            "wal",
            &before,
            &after,
            None,
            Direction::LowerIsBetter,
            &Rule::default(),
            1,
        )
        .is_none());
        assert_eq!(window_mean(&window(&[1.0, 2.0, 6.0]), "wal"), Some(3.0));
        assert_eq!(window_mean(&[], "wal"), None);
    }
}
