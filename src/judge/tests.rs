//! The judge's rule, verdict by verdict (`judge.rs`).
use super::*;
use chrono::Utc;
use std::collections::BTreeMap;

fn samples(metric: &str, values: &[f64]) -> Vec<Sample> {
    values
        .iter()
        .map(|v| Sample {
            at: Utc::now(),
            values: BTreeMap::from([(metric.to_string(), Some(*v))]),
        })
        .collect()
}

fn merge(a: Vec<Sample>, b: Vec<Sample>) -> Vec<Sample> {
    a.into_iter()
        .zip(b)
        .map(|(mut x, y)| {
            x.values.extend(y.values);
            x
        })
        .collect()
}

/// 12 noisy values around `center` (spread ±2).
fn around(center: f64) -> Vec<f64> {
    [
        0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 1.5, -1.5, 0.0, 1.0, -1.0,
    ]
    .iter()
    .map(|d| center + d)
    .collect()
}

fn specs() -> Vec<MetricSpec> {
    vec![
        MetricSpec {
            name: "wal".into(),
            direction: Direction::LowerIsBetter,
            limit: Some((Comparison::Le, 90.0)),
            per_transaction: None,
            lookback: Duration::ZERO,
        },
        MetricSpec {
            name: "lat".into(),
            direction: Direction::LowerIsBetter,
            limit: Some((Comparison::Le, 200.0)),
            per_transaction: None,
            lookback: Duration::ZERO,
        },
    ]
}

/// The judge's input for a WAL goal over a 15-minute window against a
/// 5-minute checkpoint cycle, every other field at its plain value.
fn input<'a>(
    metrics: &'a [MetricSpec],
    before: &'a [Sample],
    after: &'a [Sample],
) -> JudgeInput<'a> {
    JudgeInput {
        goal: "wal",
        metrics,
        before,
        after,
        ended: &Ended::Complete,
        observed: Duration::from_secs(900),
        wal_goal: true,
        aligned: false,
        counts: Counted::default(),
        drift: None,
        checkpoint_timeout: Some(Duration::from_secs(300)),
        interval: Duration::from_secs(5),
        rule: Rule::default(),
    }
}

fn run(before: &[Sample], after: &[Sample], ended: &Ended) -> Judgement {
    let specs = specs();
    judge(&JudgeInput {
        ended,
        ..input(&specs, before, after)
    })
}

#[test]
fn clear_drop_beyond_noise_is_improved() {
    let before = merge(
        samples("wal", &around(100.0)),
        samples("lat", &around(150.0)),
    );
    let after = merge(
        samples("wal", &around(80.0)),
        samples("lat", &around(150.0)),
    );
    let j = run(&before, &after, &Ended::Complete);
    assert_eq!(j.verdict, Verdict::Improved, "{}", j.reason);
    let g = j.goal.unwrap();
    assert_eq!((g.before, g.after), (100.0, 80.0));
    // MAD of around(): deviations 0,1,1,2,2,.5,.5,1.5,1.5,0,1,1 -> median 1,
    // so 1.4826 x MAD = 1.48; the 5% floor of the median (5.0) is wider.
    assert!((g.noise - 5.0).abs() < 1e-9);
    assert!(j.provisional.is_none());
}

#[test]
fn drift_between_windows_of_one_setting_widens_the_goal_band() {
    let specs = specs();
    let before = samples("wal", &around(100.0));
    let after = samples("wal", &around(85.0));
    let with_drift = |drift| {
        judge(&JudgeInput {
            drift,
            ..input(&specs, &before, &after)
        })
    };
    // -15%: a win against the 5% floor alone...
    assert_eq!(with_drift(None).verdict, Verdict::Improved);
    // ...but two windows of the old setting already differed by 17.
    let j = with_drift(Some(17.0));
    assert_eq!(j.verdict, Verdict::NoEffect, "{}", j.reason);
    let evidence = describe(j.goal.as_ref().unwrap());
    assert!(
        evidence.contains("noise band ±17 (the drift between two windows before the change)"),
        "{evidence}"
    );
    // A drift inside the band changes nothing but is still shown.
    let j = with_drift(Some(2.0));
    assert_eq!(j.verdict, Verdict::Improved);
    assert!(describe(j.goal.as_ref().unwrap()).contains("±2)"));
}

#[test]
fn shift_inside_noise_band_is_no_effect() {
    // Median moves by 1, band is ±1.48: no effect even though consistent.
    let before = samples("wal", &around(100.0));
    let after = samples("wal", &around(99.0));
    let j = run(&before, &after, &Ended::Complete);
    assert_eq!(j.verdict, Verdict::NoEffect, "{}", j.reason);
}

#[test]
fn a_consistent_shift_below_the_minimum_effect_is_no_effect() {
    // 4% down, beyond 1.48 x MAD and significant, but under the 5% floor.
    let before = samples("wal", &around(100.0));
    let after = samples("wal", &around(96.0));
    let j = run(&before, &after, &Ended::Complete);
    assert_eq!(j.verdict, Verdict::NoEffect, "{}", j.reason);
}

#[test]
fn goal_up_is_regressed() {
    let j = run(
        &samples("wal", &around(80.0)),
        &samples("wal", &around(100.0)),
        &Ended::Complete,
    );
    assert_eq!(j.verdict, Verdict::Regressed, "{}", j.reason);
}

#[test]
fn other_metric_worse_beyond_noise_is_regressed_even_if_goal_improves() {
    let before = merge(
        samples("wal", &around(100.0)),
        samples("lat", &around(100.0)),
    );
    let after = merge(
        samples("wal", &around(50.0)),
        samples("lat", &around(120.0)),
    );
    let j = run(&before, &after, &Ended::Complete);
    assert_eq!(j.verdict, Verdict::Regressed);
    assert!(j.reason.contains("lat got worse"), "{}", j.reason);
}

/// The goal `wal` drops by half; `guard` moves from `before` to `after`
/// (each ±1% of itself) under `limit`.
fn with_guard(limit: Option<(Comparison, f64)>, before: f64, after: f64) -> Judgement {
    let specs = vec![
        specs().remove(0),
        MetricSpec {
            name: "guard".into(),
            direction: Direction::LowerIsBetter,
            limit,
            per_transaction: None,
            lookback: Duration::ZERO,
        },
    ];
    let spread =
        |center: f64| -> Vec<f64> { around(100.0).iter().map(|v| center * v / 100.0).collect() };
    let b = merge(
        samples("wal", &around(100.0)),
        samples("guard", &spread(before)),
    );
    let a = merge(
        samples("wal", &around(50.0)),
        samples("guard", &spread(after)),
    );
    judge(&input(&specs, &b, &a))
}

#[test]
fn a_guard_worse_by_a_sliver_of_its_headroom_does_not_veto_the_goal() {
    // The demo's io_wait: +9%, beyond its tiny noise band, but 0.2% of
    // the way to its < 25% objective.
    let j = with_guard(Some((Comparison::Lt, 25.0)), 0.54, 0.59);
    assert_eq!(j.verdict, Verdict::Improved, "{}", j.reason);
    assert!(
        j.reason.contains("guard moved 0.54 → 0.59") && j.reason.contains("headroom"),
        "{}",
        j.reason
    );
    let guard = j.others.iter().find(|s| s.metric == "guard").unwrap();
    assert_eq!(guard.movement, Movement::Worse, "still reported as moved");
}

#[test]
fn a_guard_that_spends_its_headroom_or_has_none_still_vetoes() {
    // 12 of 20 points of headroom.
    let j = with_guard(Some((Comparison::Le, 30.0)), 10.0, 22.0);
    assert_eq!(j.verdict, Verdict::Regressed, "{}", j.reason);
    // Already violated before the change: no headroom to spend.
    let j = with_guard(Some((Comparison::Le, 5.0)), 10.0, 12.0);
    assert_eq!(j.verdict, Verdict::Regressed, "{}", j.reason);
    // No objective: any move beyond the noise counts.
    let j = with_guard(None, 0.54, 0.59);
    assert_eq!(j.verdict, Verdict::Regressed, "{}", j.reason);
}

#[test]
fn losing_a_tenth_of_throughput_vetoes_even_under_a_bare_liveness_objective() {
    let specs = vec![
        specs().remove(0),
        MetricSpec {
            name: "tps".into(),
            direction: Direction::HigherIsBetter,
            limit: Some((Comparison::Ge, 1.0)),
            per_transaction: None,
            lookback: Duration::ZERO,
        },
    ];
    let b = merge(
        samples("wal", &around(100.0)),
        samples("tps", &around(200.0)),
    );
    let a = merge(
        samples("wal", &around(50.0)),
        samples("tps", &around(175.0)),
    );
    let j = judge(&input(&specs, &b, &a));
    assert_eq!(j.verdict, Verdict::Regressed, "{}", j.reason);
    assert!(j.reason.contains("tps got worse"), "{}", j.reason);
}

#[test]
fn other_metric_crossing_its_limit_is_regressed() {
    // lat moves 199 -> 201: a small move, but it crosses the 200 limit.
    let before = merge(samples("wal", &around(100.0)), samples("lat", &[199.0; 12]));
    let after = merge(samples("wal", &around(50.0)), samples("lat", &[201.0; 12]));
    let j = run(&before, &after, &Ended::Complete);
    assert_eq!(j.verdict, Verdict::Regressed);
    assert!(j.reason.contains("lat became violated"), "{}", j.reason);
}

#[test]
fn eight_samples_are_not_enough() {
    let before = samples("wal", &around(100.0)[..8]);
    let after = samples("wal", &around(10.0));
    let j = run(&before, &after, &Ended::Complete);
    assert_eq!(j.verdict, Verdict::NoData);
    assert!(j.reason.contains("8 samples before"), "{}", j.reason);
}

#[test]
fn gaps_in_the_goal_fail_closed() {
    let before = samples("wal", &around(100.0));
    let mut after = samples("wal", &around(10.0));
    for s in after.iter_mut().take(3) {
        s.values.insert("wal".into(), None);
    }
    let j = run(&before, &after, &Ended::Complete);
    assert_eq!(j.verdict, Verdict::NoData, "{}", j.reason);
}

#[test]
fn other_metric_going_silent_is_no_data() {
    let before = merge(
        samples("wal", &around(100.0)),
        samples("lat", &around(100.0)),
    );
    let after = samples("wal", &around(50.0));
    let j = run(&before, &after, &Ended::Complete);
    assert_eq!(j.verdict, Verdict::NoData);
    assert!(j.reason.contains("lat"), "{}", j.reason);
}

#[test]
fn alert_and_no_data_endings_win() {
    let before = samples("wal", &around(100.0));
    let after = samples("wal", &around(50.0));
    assert_eq!(
        run(&before, &after, &Ended::AlertFired("WalSpikes".into())).verdict,
        Verdict::AlertFired
    );
    assert_eq!(
        run(&before, &after, &Ended::NoData("down".into())).verdict,
        Verdict::NoData
    );
    assert!(!Verdict::NoEffect.keeps() && Verdict::Improved.keeps());
}

#[test]
fn a_flat_metric_is_comparable_and_within_noise() {
    // io_wait pinned at 0 before and after: ties everywhere, MAD 0.
    let s = compare(
        "io",
        &[0.0; 12],
        &[0.0; 12],
        Direction::LowerIsBetter,
        &Rule::default(),
        1,
    )
    .unwrap();
    assert_eq!(s.movement, Movement::WithinNoise);
    let s = compare(
        "io",
        &[0.0; 12],
        &[1.0; 12],
        Direction::LowerIsBetter,
        &Rule::default(),
        1,
    )
    .unwrap();
    assert_eq!(s.movement, Movement::Worse);
}

#[test]
fn higher_is_better_metric_is_judged_the_other_way() {
    let s = compare(
        "tps",
        &around(100.0),
        &around(120.0),
        Direction::HigherIsBetter,
        &Rule::default(),
        1,
    )
    .unwrap();
    assert_eq!(s.movement, Movement::Better);
    let s = compare(
        "tps",
        &around(100.0),
        &around(120.0),
        Direction::LowerIsBetter,
        &Rule::default(),
        1,
    )
    .unwrap();
    assert_eq!(s.movement, Movement::Worse);
}

#[test]
fn wal_window_shorter_than_checkpoint_cycle_is_provisional() {
    let specs = specs();
    let before = samples("wal", &around(100.0));
    let after = samples("wal", &around(80.0));
    let j = judge(&JudgeInput {
        observed: Duration::from_secs(600),
        checkpoint_timeout: Some(Duration::from_secs(1800)),
        interval: Duration::from_secs(5),
        ..input(&specs, &before, &after)
    });
    assert_eq!(j.verdict, Verdict::Improved);
    let p = j.provisional.unwrap();
    assert!(p.contains("10m") && p.contains("30m"), "{p}");
}

/// `wal` halves; `guard` has `known` samples before the change (the rest
/// have no value) and a full window after.
fn with_thin_guard(known: usize) -> Judgement {
    let specs = vec![
        specs().remove(0),
        MetricSpec {
            name: "guard".into(),
            direction: Direction::LowerIsBetter,
            limit: Some((Comparison::Le, 30.0)),
            per_transaction: None,
            lookback: Duration::ZERO,
        },
    ];
    let mut b = merge(
        samples("wal", &around(100.0)),
        samples("guard", &around(10.0)),
    );
    for s in b.iter_mut().skip(known) {
        s.values.insert("guard".into(), None);
    }
    let a = merge(
        samples("wal", &around(50.0)),
        samples("guard", &around(10.0)),
    );
    judge(&input(&specs, &b, &a))
}

#[test]
fn a_guard_with_too_few_samples_before_is_inconclusive_never_skipped() {
    let j = with_thin_guard(4);
    assert_eq!(j.verdict, Verdict::Inconclusive, "{}", j.reason);
    assert!(!j.verdict.keeps());
    assert!(
        j.reason.contains("guard: only 4 samples before the change"),
        "{}",
        j.reason
    );
    // Enough of them: judged as usual.
    assert_eq!(with_thin_guard(12).verdict, Verdict::Improved);
}

#[test]
fn a_guard_never_measured_is_named_as_not_guarded() {
    let j = with_thin_guard(0);
    assert_eq!(j.verdict, Verdict::Improved, "{}", j.reason);
    assert!(
        j.reason
            .contains("not guarded (no data before the change): guard"),
        "{}",
        j.reason
    );
}

mod calibration;
mod throughput;
