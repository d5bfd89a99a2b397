//! Burn-rate scenarios that pull a pair's two windows apart. The constant
//! error ratios of `slo::unit_tests` put the long and the short window of a
//! pair over (or under) the threshold together, so they cannot show that
//! each window is really required. Here, for every pair of every tier:
//!
//! - *only the long window over*: a burst of errors that ended before the
//!   tier's short windows begin, so the long window still carries it;
//! - *only the short window over*: a burst over the last short window, too
//!   small a share of the long one;
//! - *both over*: a steady ratio above the pair's threshold.
//!
//! The first two must leave the tier quiet, the third must fire it. What
//! every tier does is worked out by a small evaluator of the windows'
//! ratios over the generated series; a scenario is written only when every
//! compared value sits clearly (by [`MARGIN`]) on one side of its
//! threshold, so `rate()`'s extrapolation at the window edges cannot flip
//! the expectation. promtool then checks the real rules agree.

use super::decimal::Decimal;
use super::model::{prom_duration, Alert, AlertCase, Expected, Series, UnitTest};
use super::spec::{Alerting, Events, Selector, Slo, Window};

/// How far a window's value must sit from its threshold to count as
/// clearly over or under.
const MARGIN: f64 = 1.5;

/// Minutes between the burst's end and the short windows, and between the
/// long window's start and the burst: room for `rate()`'s edges.
const GAP: u64 = 2;

/// Which side of the threshold a scenario puts a pair's windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    OnlyLong,
    OnlyShort,
    Both,
}

impl Shape {
    fn words(self) -> &'static str {
        match self {
            Shape::OnlyLong => "only the long window over, must not fire",
            Shape::OnlyShort => "only the short window over, must not fire",
            Shape::Both => "both windows over, must fire",
        }
    }
}

/// The error ratio per minute: `burst` within `[from, to]` (minutes, both
/// ends included), nothing outside; events at a constant rate.
#[derive(Debug, Clone, Copy)]
struct Errors {
    from: u64,
    to: u64,
    burst: Decimal,
}

impl Errors {
    /// The error ratio over the `window` minutes up to `t`, as `rate()`
    /// over both counters gives it: events at a constant rate cancel out.
    fn ratio(&self, t: u64, window: u64) -> f64 {
        let start = t.saturating_sub(window);
        if t == start {
            return 0.0;
        }
        // Minutes start+1..=t that fall in the burst.
        let first = (start + 1).max(self.from);
        let last = t.min(self.to);
        let inside = if last >= first { last - first + 1 } else { 0 };
        self.burst.to_f64() * inside as f64 / (t - start) as f64
    }
}

/// Whether an alert's condition holds, clearly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Over,
    Under,
    Unclear,
}

fn side(value: f64, threshold: f64) -> Side {
    if value >= threshold * MARGIN {
        Side::Over
    } else if value * MARGIN <= threshold {
        Side::Under
    } else {
        Side::Unclear
    }
}

fn minutes(d: std::time::Duration) -> Option<u64> {
    (d.as_secs().is_multiple_of(60) && d.as_secs() > 0).then_some(d.as_secs() / 60)
}

/// One pair's condition at minute `t`: both windows over the threshold,
/// and enough events in the long window when a guard is set.
fn pair_at(slo: &Slo, w: &Window, errors: &Errors, per_minute: f64, t: u64) -> Option<Side> {
    let (long, short) = (minutes(w.long)?, minutes(w.short)?);
    let threshold = w.burn.times(slo.budget()).to_f64();
    let mut sides = vec![
        side(errors.ratio(t, long), threshold),
        side(errors.ratio(t, short), threshold),
    ];
    if slo.min_events > 0 {
        let events = per_minute * long.min(t) as f64;
        sides.push(side(events, slo.min_events as f64));
    }
    Some(if sides.contains(&Side::Under) {
        Side::Under
    } else if sides.iter().all(|s| *s == Side::Over) {
        Side::Over
    } else {
        Side::Unclear
    })
}

/// Whether a tier's alert fires at `eval`: some pair holds through the
/// whole `for:` before it (fires), or no pair holds at `eval` (quiet).
/// `None` when that is not clear.
fn tier_fires(
    slo: &Slo,
    alerting: &Alerting,
    tier: &str,
    errors: &Errors,
    per_minute: f64,
    eval: u64,
) -> Option<bool> {
    let windows = alerting.windows.get(tier)?;
    let hold = alerting
        .for_
        .get(tier)
        .map(|d| d.as_secs().div_ceil(60))
        .unwrap_or(0);
    let mut quiet = true;
    for w in windows {
        let now = pair_at(slo, w, errors, per_minute, eval)?;
        if now != Side::Under {
            quiet = false;
        }
        let since = eval.saturating_sub(hold + 1);
        let mut held = true;
        for t in since..=eval {
            if pair_at(slo, w, errors, per_minute, t)? != Side::Over {
                held = false;
            }
        }
        if held {
            return Some(true);
        }
    }
    quiet.then_some(false)
}

/// The series: each counter as promtool's expanding notation, one value a
/// minute from minute 0 (all zero) to `end`.
fn series(slo: &Slo, errors: &Errors, per_minute: Decimal, end: u64) -> Vec<Series> {
    // Segments of equal increments: before, during and after the burst.
    let bad = per_minute.times(errors.burst);
    let mut segments: Vec<(Decimal, u64)> = Vec::new();
    let mut push = |inc: Decimal, from: u64, to: u64| {
        if to >= from {
            segments.push((inc, to - from + 1));
        }
    };
    push(Decimal::ZERO, 1, errors.from.saturating_sub(1));
    push(bad, errors.from.max(1), errors.to.min(end));
    push(Decimal::ZERO, errors.to + 1, end);
    let counter = |sel: &Selector, of: &dyn Fn(Decimal) -> Decimal| {
        let mut text = String::from("0");
        let mut value = Decimal::ZERO;
        for (inc, count) in &segments {
            let inc = of(*inc);
            let first = value.plus(inc);
            text.push_str(&format!(" {first}+{inc}x{}", count - 1));
            value = value.plus(inc.times(Decimal::from_int(*count as i64)));
        }
        Series {
            series: sel.to_string(),
            values: text,
        }
    };
    let errors_of = |inc: Decimal| inc;
    let good_of = |inc: Decimal| per_minute.minus(inc);
    let total_of = |_: Decimal| per_minute;
    match &slo.events {
        Events::BadOfTotal { bad, total } => {
            vec![counter(bad, &errors_of), counter(total, &total_of)]
        }
        Events::GoodOfTotal { good, total } => {
            vec![counter(good, &good_of), counter(total, &total_of)]
        }
        Events::GoodAndBad { good, bad } => {
            vec![counter(good, &good_of), counter(bad, &errors_of)]
        }
    }
}

/// When a scenario of a pair of `tier` may be evaluated: as early as its
/// burst fits (a window reaching back before the series' first sample
/// reads what there is, and promtool's cost grows with the square of the
/// time span), then later, so a burst weighs less in other tiers' windows,
/// up to the longest window of all.
fn evals(tier: &[Window], alerting: &Alerting) -> Vec<u64> {
    let Some(widest_short) = tier.iter().filter_map(|w| minutes(w.short)).max() else {
        return Vec::new();
    };
    let longest = alerting
        .windows
        .values()
        .flatten()
        .filter_map(|w| minutes(w.long))
        .max()
        .unwrap_or(widest_short);
    let mut out = Vec::new();
    let mut at = 2 * (widest_short + GAP) + 1;
    while at < longest {
        out.push(at);
        at += at / 2;
    }
    out.push(longest + GAP + 1);
    out
}

/// The burst of `shape` for the pair `w` evaluated at `eval`, at a burst
/// ratio of `burst`; `None` when the windows leave no room for it. The
/// long window need not be full: it reads from the first sample.
fn layout(shape: Shape, w: &Window, tier: &[Window], burst: Decimal, eval: u64) -> Option<Errors> {
    let (long, short) = (minutes(w.long)?, minutes(w.short)?);
    let widest_short = tier.iter().filter_map(|w| minutes(w.short)).max()?;
    let errors = match shape {
        // Over before the tier's short windows, inside this long window.
        Shape::OnlyLong => Errors {
            from: eval.saturating_sub(long) + GAP,
            to: eval.checked_sub(widest_short + GAP)?,
            burst,
        },
        Shape::OnlyShort => Errors {
            from: eval.checked_sub(short)? + 1,
            to: eval,
            burst,
        },
        Shape::Both => Errors {
            from: 1,
            to: eval,
            burst,
        },
    };
    (errors.from <= errors.to).then_some(errors)
}

/// The burst ratios tried for a pair, as multiples of its threshold, then
/// every error: the first that makes every tier's outcome clear is kept.
fn bursts(threshold: Decimal) -> Vec<Decimal> {
    let mut out: Vec<Decimal> = ["2", "1.5", "1.6", "3", "5", "10"]
        .iter()
        .filter_map(|k| Decimal::parse(k))
        .map(|k| threshold.times(k))
        .filter(|r| r.cmp_value(Decimal::from_int(1)).is_lt())
        .collect();
    out.push(Decimal::from_int(1));
    out
}

/// Events a minute: 100, or enough that the guard is clearly met over the
/// shortest long window.
fn per_minute(slo: &Slo, alerting: &Alerting) -> Decimal {
    let shortest = alerting
        .windows
        .values()
        .flatten()
        .filter_map(|w| minutes(w.long))
        .min()
        .unwrap_or(1);
    let needed = (slo.min_events as f64 * MARGIN * 2.0 / shortest as f64).ceil() as i64;
    Decimal::from_int(needed.max(100))
}

/// One scenario, with what it shows about its own pair and what every tier
/// does.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub tier: String,
    pub shape: Shape,
    /// Tiers that fire at the evaluation time.
    pub firing: Vec<String>,
    pub test: UnitTest,
}

/// Every pair's three scenarios that can be laid out with clear outcomes.
pub fn scenarios(slo: &Slo, alerts: &[Alert], alerting: &Alerting) -> Vec<Scenario> {
    let rate = per_minute(slo, alerting);
    let name = alerts.first().map(|a| a.alert.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for (tier, windows) in &alerting.windows {
        for w in windows {
            let threshold = w.burn.times(slo.budget());
            for shape in [Shape::OnlyLong, Shape::OnlyShort, Shape::Both] {
                let tries = evals(windows, alerting).into_iter().flat_map(|eval| {
                    bursts(threshold)
                        .into_iter()
                        .map(move |burst| (eval, burst))
                });
                let chosen = tries.into_iter().find_map(|(eval, burst)| {
                    let errors = layout(shape, w, windows, burst, eval)?;
                    let mut firing = Vec::new();
                    for t in alerting.windows.keys() {
                        if tier_fires(slo, alerting, t, &errors, rate.to_f64(), eval)? {
                            firing.push(t.clone());
                        }
                    }
                    // The scenario must show what its name says: which of
                    // its own windows is over, and whether its tier fires.
                    let (long, short) = (minutes(w.long)?, minutes(w.short)?);
                    let level = threshold.to_f64();
                    let long = side(errors.ratio(eval, long), level);
                    let short = side(errors.ratio(eval, short), level);
                    let fires = firing.contains(tier);
                    let shows = match shape {
                        Shape::OnlyLong => long == Side::Over && short == Side::Under && !fires,
                        Shape::OnlyShort => long == Side::Under && short == Side::Over && !fires,
                        Shape::Both => long == Side::Over && short == Side::Over && fires,
                    };
                    shows.then_some((errors, eval, firing))
                });
                let Some((errors, eval, firing)) = chosen else {
                    continue;
                };
                let exp_alerts: Vec<Expected> = alerts
                    .iter()
                    .filter(|a| a.labels.get("tier").is_some_and(|t| firing.contains(t)))
                    .map(|a| Expected::of(a, &[]))
                    .collect();
                let test = UnitTest {
                    name: format!(
                        "{name}: {tier} pair {} / {} at {}x: {}; errors {} of events in minutes {}-{} of {eval}",
                        prom_duration(w.long),
                        prom_duration(w.short),
                        w.burn,
                        shape.words(),
                        errors.burst,
                        errors.from,
                        errors.to
                    ),
                    interval: "1m".into(),
                    input_series: series(slo, &errors, rate, eval + 1),
                    alert_rule_test: vec![AlertCase {
                        eval_time: format!("{eval}m"),
                        alertname: name.clone(),
                        exp_alerts,
                    }],
                };
                out.push(Scenario {
                    tier: tier.clone(),
                    shape,
                    firing,
                    test,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::alerts::slo;
    use std::time::Duration;

    fn slo_999() -> Slo {
        Slo {
            name: "api".into(),
            objective: Decimal::parse("99.9").unwrap(),
            period: Duration::from_secs(30 * 86_400),
            events: Events::BadOfTotal {
                bad: Selector::parse("http_requests_total{code=\"500\"}").unwrap(),
                total: Selector::parse("http_requests_total").unwrap(),
            },
            min_events: 100,
            description: None,
            runbook_url: None,
        }
    }

    #[test]
    fn every_pair_of_page_and_ticket_gets_its_three_scenarios() {
        let alerting = Alerting::default();
        let slo = slo_999();
        let alerts = slo::alerts(&slo, &alerting);
        let all = scenarios(&slo, &alerts, &alerting);
        for (tier, windows) in &alerting.windows {
            for shape in [Shape::OnlyLong, Shape::OnlyShort, Shape::Both] {
                let of: Vec<&Scenario> = all
                    .iter()
                    .filter(|s| &s.tier == tier && s.shape == shape)
                    .collect();
                assert_eq!(of.len(), windows.len(), "{tier} {shape:?}: {of:#?}");
                for s in of {
                    assert_eq!(
                        s.firing.contains(tier),
                        shape == Shape::Both,
                        "{}",
                        s.test.name
                    );
                }
            }
        }
    }

    #[test]
    fn only_the_long_window_over_keeps_the_page_quiet() {
        let alerting = Alerting::default();
        let slo = slo_999();
        // 1h / 5m at 14.4x: threshold 0.0144.
        let w = &alerting.windows["page"][0];
        let eval = 63;
        let errors = layout(
            Shape::OnlyLong,
            w,
            &alerting.windows["page"],
            Decimal::from_int(1),
            eval,
        )
        .unwrap();
        // The burst ends before the widest short window (30m) begins.
        assert_eq!((errors.from, errors.to), (5, 31));
        assert!(errors.ratio(eval, 60) > 0.0144 * MARGIN);
        assert_eq!(errors.ratio(eval, 5), 0.0);
        assert_eq!(errors.ratio(eval, 30), 0.0);
        assert_eq!(pair_at(&slo, w, &errors, 100.0, eval), Some(Side::Under));
        assert_eq!(
            tier_fires(&slo, &alerting, "page", &errors, 100.0, eval),
            Some(false)
        );
    }

    #[test]
    fn only_the_short_window_over_keeps_the_page_quiet_and_both_fire_it() {
        let alerting = Alerting::default();
        let slo = slo_999();
        let w = &alerting.windows["page"][0];
        let two = Decimal::parse("0.0288").unwrap();
        let eval = 63;
        let short = layout(Shape::OnlyShort, w, &alerting.windows["page"], two, eval).unwrap();
        // 2x the threshold over the last 5 minutes: 1/12 of it over the hour.
        assert!((short.ratio(eval, 5) - 0.0288).abs() < 1e-12);
        assert!((short.ratio(eval, 60) - 0.0024).abs() < 1e-12);
        assert_eq!(
            tier_fires(&slo, &alerting, "page", &short, 100.0, eval),
            Some(false)
        );
        let both = layout(Shape::Both, w, &alerting.windows["page"], two, eval).unwrap();
        assert_eq!(
            tier_fires(&slo, &alerting, "page", &both, 100.0, eval),
            Some(true)
        );
        // Too few events for the guard: quiet whatever the ratio.
        assert_eq!(
            tier_fires(&slo, &alerting, "page", &both, 1.0, eval),
            Some(false)
        );
    }

    #[test]
    fn the_series_count_up_by_the_minute_through_the_burst() {
        let slo = slo_999();
        let errors = Errors {
            from: 3,
            to: 4,
            burst: Decimal::parse("0.5").unwrap(),
        };
        let s = series(&slo, &errors, Decimal::from_int(10), 6);
        // Minutes 0..=6: errors 0 0 0 5 10 10 10; events 0 10 .. 60.
        assert_eq!(s[0].values, "0 0+0x1 5+5x1 10+0x1");
        assert_eq!(s[1].values, "0 10+10x1 30+10x1 50+10x1");
    }
}
