//! The guards: every SLA metric but the goal. A change must not make one
//! violated, nor worse beyond its noise by more than `guard_margin` of its
//! headroom to its objective (the module doc of `judge` says why).

use super::blocks::stride;
use super::throughput::{counted, limit_per_transaction};
use super::{
    compare, describe, direction_of, enough, short, values, JudgeInput, Movement, Shift,
    MIN_READINGS,
};
use crate::config::objective::Comparison;

/// What the guards say about a change.
pub(super) struct Guards {
    /// Every guard's comparison, for the report.
    pub others: Vec<Shift>,
    /// The first harm found: a guard made violated or materially worse.
    pub harm: Option<String>,
    /// The first guard that went silent after the change (too few samples).
    pub silent: Option<String>,
    /// The first guard with some samples before the change, but too few to
    /// compare: the change cannot be shown harmless to it.
    pub thin: Option<String>,
    /// Guards with no sample at all before the change (an objective nobody
    /// can measure here): named in the reason, never silently dropped.
    pub unguarded: Vec<String>,
    /// Guards that got worse within their share of headroom, for the reason.
    pub tolerated: Vec<String>,
}

/// Compares every guard's windows and applies the guard rule.
pub(super) fn guards(input: &JudgeInput<'_>) -> Guards {
    let rule = &input.rule;
    let mut others = Vec::new();
    let mut harm: Option<String> = None;
    let mut silent: Option<String> = None;
    let mut thin: Option<String> = None;
    let mut unguarded: Vec<String> = Vec::new();
    let mut tolerated: Vec<String> = Vec::new();
    for spec in input.metrics.iter().filter(|m| m.name != input.goal) {
        let before = values(input.before, &spec.name);
        let after = values(input.after, &spec.name);
        if before.is_empty() {
            unguarded.push(spec.name.clone());
            continue;
        }
        let stride = stride(spec.lookback, input.interval);
        if !enough(before.len(), stride, rule) {
            thin.get_or_insert_with(|| {
                format!(
                    "{}: only {} samples before the change, {} needed to tell whether it got worse, spanning at least {MIN_READINGS} of its query's {} lookbacks (observe longer)",
                    spec.name,
                    before.len(),
                    rule.min_samples,
                    crate::config::units::format_duration(spec.lookback)
                )
            });
            continue;
        }
        let Some(mut shift) = compare(
            &spec.name,
            &before,
            &after,
            direction_of(spec),
            rule,
            stride,
        ) else {
            silent.get_or_insert_with(|| {
                format!(
                    "{}: only {} samples after the change",
                    spec.name,
                    after.len()
                )
            });
            continue;
        };
        // A guard judged per transaction is held to its objective at the
        // throughput before the change (`limit_per_transaction`).
        shift.per_transaction = counted(spec, input);
        let limit = match spec.limit {
            Some((cmp, limit)) if shift.per_transaction => {
                limit_per_transaction(spec, input, limit).map(|l| (cmp, l))
            }
            other => other,
        };
        if harm.is_none() {
            if let Some((cmp, limit)) = limit {
                if cmp.holds(shift.before, limit) && !cmp.holds(shift.after, limit) {
                    harm = Some(format!(
                        "{} became violated: median {:.4} → {:.4}, objective {} {limit}",
                        spec.name,
                        shift.before,
                        shift.after,
                        cmp.symbol()
                    ));
                }
            }
        }
        if harm.is_none() && shift.movement == Movement::Worse {
            match headroom_used(limit, &shift) {
                Some(used) if used <= rule.guard_margin => tolerated.push(format!(
                    "{} moved {} → {}, {:.1}% of its headroom",
                    spec.name,
                    short(shift.before),
                    short(shift.after),
                    used * 100.0
                )),
                _ => {
                    harm = Some(format!(
                        "{} got worse beyond its noise: {}",
                        spec.name,
                        describe(&shift)
                    ))
                }
            }
        }
        others.push(shift);
    }

    Guards {
        others,
        harm,
        silent,
        thin,
        unguarded,
        tolerated,
    }
}

/// The share of a guard's headroom to its objective that a shift used up;
/// `None` when it has no objective or was violated before the change.
fn headroom_used(limit: Option<(Comparison, f64)>, shift: &Shift) -> Option<f64> {
    let (cmp, limit) = limit?;
    if !cmp.holds(shift.before, limit) {
        return None;
    }
    let headroom = (limit - shift.before).abs();
    let used = (shift.after - shift.before).abs();
    Some(if headroom > 0.0 {
        used / headroom
    } else {
        f64::INFINITY
    })
}
