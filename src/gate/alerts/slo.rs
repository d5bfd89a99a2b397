//! SLO burn-rate alerts, in the multi-window, multi-burn-rate form of the
//! SRE workbook: an alert per tier (`page`, `ticket`) that fires when the
//! error ratio over a long and a short window both exceed `burn` times the
//! error budget, and enough events happened in the long window for the
//! ratio to mean something. Recording rules compute each window's error
//! ratio and event rate once, for every alert and dashboard.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::decimal::Decimal;
use super::model::{camel, prom_duration, Alert, AlertCase, Expected, Record, Series, UnitTest};
use super::sla::runbook;
use super::spec::{Alerting, Events, Selector, Slo, Window};

fn ratio_name(w: Duration) -> String {
    format!("slo:sli_error:ratio_rate{}", prom_duration(w))
}

fn events_name(w: Duration) -> String {
    format!("slo:sli_events:rate{}", prom_duration(w))
}

fn rate(s: &Selector, w: Duration) -> String {
    format!("sum(rate({s}[{}]))", prom_duration(w))
}

/// The error ratio and the event rate of every window an alert reads.
pub fn records(slo: &Slo, alerting: &Alerting) -> Vec<Record> {
    let labels = BTreeMap::from([("slo".to_string(), slo.name.clone())]);
    let all: Vec<&Window> = alerting.windows.values().flatten().collect();
    let windows: BTreeSet<Duration> = all.iter().flat_map(|w| [w.long, w.short]).collect();
    let longs: BTreeSet<Duration> = all.iter().map(|w| w.long).collect();
    let mut out = Vec::new();
    for w in &windows {
        let expr = match &slo.events {
            Events::BadOfTotal { bad, total } => {
                format!("{}\n/\n{}", rate(bad, *w), rate(total, *w))
            }
            Events::GoodOfTotal { good, total } => {
                format!("1 - (\n  {}\n  /\n  {}\n)", rate(good, *w), rate(total, *w))
            }
            Events::GoodAndBad { good, bad } => format!(
                "{}\n/\n({} + {})",
                rate(bad, *w),
                rate(good, *w),
                rate(bad, *w)
            ),
        };
        out.push(Record {
            record: ratio_name(*w),
            expr,
            labels: labels.clone(),
        });
    }
    if slo.min_events > 0 {
        for w in &longs {
            let expr = match &slo.events {
                Events::BadOfTotal { total, .. } | Events::GoodOfTotal { total, .. } => {
                    rate(total, *w)
                }
                Events::GoodAndBad { good, bad } => {
                    format!("{} + {}", rate(good, *w), rate(bad, *w))
                }
            };
            out.push(Record {
                record: events_name(*w),
                expr,
                labels: labels.clone(),
            });
        }
    }
    out
}

/// One alert per tier; the tier's windows joined by `or`.
pub fn alerts(slo: &Slo, alerting: &Alerting) -> Vec<Alert> {
    let budget = slo.budget();
    let name = format!("{}ErrorBudgetBurn", camel(&slo.name));
    let sel = format!("{{slo=\"{}\"}}", slo.name);
    let mut out = Vec::new();
    for (tier, windows) in &alerting.windows {
        let branches: Vec<String> = windows
            .iter()
            .map(|w| {
                let threshold = w.burn.times(budget);
                let mut lines = vec![
                    format!("  {}{sel} > {threshold}", ratio_name(w.long)),
                    format!("  and {}{sel} > {threshold}", ratio_name(w.short)),
                ];
                if slo.min_events > 0 {
                    lines.push(format!(
                        "  and {}{sel} * {} >= {}",
                        events_name(w.long),
                        w.long.as_secs(),
                        slo.min_events
                    ));
                }
                format!("(\n{}\n)", lines.join("\n"))
            })
            .collect();
        let burns: Vec<String> = windows
            .iter()
            .map(|w| {
                format!(
                    "{}x over {} and {}",
                    w.burn,
                    prom_duration(w.long),
                    prom_duration(w.short)
                )
            })
            .collect();
        let for_ = alerting.for_[tier.as_str()];
        let what = slo.description.clone().unwrap_or_else(|| slo.name.clone());
        let runbook_url = slo
            .runbook_url
            .clone()
            .unwrap_or_else(|| runbook(alerting, &name, &slo.name));
        out.push(Alert {
            alert: name.clone(),
            expr: branches.join("\nor\n"),
            for_: prom_duration(for_),
            labels: BTreeMap::from([
                ("severity".to_string(), alerting.severities[tier.as_str()].clone()),
                ("tier".to_string(), tier.clone()),
                ("slo".to_string(), slo.name.clone()),
            ]),
            annotations: BTreeMap::from([
                (
                    "summary".to_string(),
                    format!(
                        "{}: the {} error budget of {}% is burning too fast ({})",
                        slo.name,
                        prom_duration(slo.period),
                        Decimal::from_int(100).minus(slo.objective),
                        burns.join(", or ")
                    ),
                ),
                (
                    "description".to_string(),
                    format!(
                        "{what}. Objective {}% over {}; at this rate the budget is gone well before the period ends. Quiet below {} events per long window.",
                        slo.objective,
                        prom_duration(slo.period),
                        slo.min_events
                    ),
                ),
                ("runbook_url".to_string(), runbook_url),
            ]),
        });
    }
    out
}

/// The series an error ratio `bad` out of `per_minute` events makes, per
/// minute for `n` minutes.
fn inputs(slo: &Slo, per_minute: Decimal, bad: Decimal, n: u64) -> Vec<Series> {
    let errors = per_minute.times(bad);
    let good = per_minute.minus(errors);
    let counter = |s: &Selector, inc: Decimal| Series {
        series: s.to_string(),
        values: format!("0+{inc}x{n}"),
    };
    match &slo.events {
        Events::BadOfTotal { bad, total } => vec![counter(bad, errors), counter(total, per_minute)],
        Events::GoodOfTotal { good: g, total } => {
            vec![counter(g, good), counter(total, per_minute)]
        }
        Events::GoodAndBad { good: g, bad } => vec![counter(g, good), counter(bad, errors)],
    }
}

fn thresholds(slo: &Slo, windows: &[Window]) -> Vec<Decimal> {
    windows.iter().map(|w| w.burn.times(slo.budget())).collect()
}

/// Scenarios for each SLO: a fast burn, a slow burn, a healthy ratio and a
/// fast burn on too little traffic. Which tiers fire is worked out here
/// from the thresholds, in exact decimals; promtool checks the rules agree.
pub fn unit_tests(slo: &Slo, alerts: &[Alert], alerting: &Alerting) -> Vec<UnitTest> {
    let all: Vec<Decimal> = alerting
        .windows
        .values()
        .flat_map(|w| thresholds(slo, w))
        .collect();
    let half = Decimal::parse("0.5").unwrap_or(Decimal::ZERO);
    let one = Decimal::from_int(1);
    let max = all
        .iter()
        .copied()
        .max_by(|a, b| a.cmp_value(*b))
        .unwrap_or(Decimal::ZERO);
    let min = all
        .iter()
        .copied()
        .min_by(|a, b| a.cmp_value(*b))
        .unwrap_or(Decimal::ZERO);
    let fast = {
        let double = max.times(Decimal::from_int(2));
        let middle = max.plus(one).times(half);
        if double.cmp_value(one).is_lt() {
            double
        } else {
            middle
        }
    };
    let mut scenarios = vec![
        ("fast burn", fast, Decimal::from_int(100)),
        ("healthy", min.times(half), Decimal::from_int(100)),
    ];
    // Just above and just below every threshold: each tier's boundaries.
    let (above, below) = (
        Decimal::parse("1.25").unwrap_or(one),
        Decimal::parse("0.8").unwrap_or(one),
    );
    for t in &all {
        for (what, r) in [
            ("just above", t.times(above)),
            ("just below", t.times(below)),
        ] {
            if r.cmp_value(one).is_lt() {
                scenarios.push((what, r, Decimal::from_int(100)));
            }
        }
    }
    if slo.min_events > 0 {
        // 30% of the guard over the first half hour: too few to page on.
        let per_minute = Decimal::from_f64_significant(slo.min_events as f64 / 100.0, 6)
            .unwrap_or(Decimal::ZERO);
        scenarios.push(("fast burn on little traffic", fast, per_minute));
    }
    let longest_for = alerting
        .for_
        .values()
        .map(|d| d.as_secs().div_ceil(60))
        .max()
        .unwrap_or(0);
    let eval = (longest_for + 5).max(30);
    let mut tests = Vec::new();
    for (what, ratio, per_minute) in scenarios {
        let little = per_minute.cmp_value(Decimal::from_int(100)).is_lt();
        let firing: Vec<Expected> = alerts
            .iter()
            .filter(|a| {
                let tier = a.labels.get("tier").map(String::as_str).unwrap_or("");
                let crosses = alerting.windows.get(tier).is_some_and(|w| {
                    thresholds(slo, w)
                        .iter()
                        .any(|t| ratio.cmp_value(*t).is_gt())
                });
                crosses && !little
            })
            .map(|a| Expected::of(a, &[]))
            .collect();
        let name = alerts.first().map(|a| a.alert.clone()).unwrap_or_default();
        tests.push(UnitTest {
            name: format!("{name}: {what}, error ratio {ratio}, {per_minute} events/min"),
            interval: "1m".into(),
            input_series: inputs(slo, per_minute, ratio, eval + 5),
            alert_rule_test: vec![AlertCase {
                eval_time: format!("{eval}m"),
                alertname: name,
                exp_alerts: firing,
            }],
        });
    }
    tests
}
