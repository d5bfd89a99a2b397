//! Throughput as a guard, and metrics judged per transaction: closed-loop
//! loads (fixed clients: a slower commit path lowers throughput), open-loop
//! loads (the clients set the rate: latency shows it), and a real cut in
//! WAL per transaction.

use super::*;
use crate::judge::throughput::Counts;

/// Transactions counted with a window's samples, every `interval` seconds,
/// the first `offset + interval` after the counter started (a window opened
/// by a CHECKPOINT waits out the query's lookback first), at `tps[i]` over
/// the seconds up to sample `i`.
fn counted(tps: &[f64], interval: f64, offset: f64) -> Counts {
    let mut c = Counts::default();
    let (mut t, mut n) = (0.0, 0.0);
    for (i, rate) in tps.iter().enumerate() {
        let dt = if i == 0 { offset + interval } else { interval };
        t += dt;
        n += rate * dt;
        c.seconds.push(t);
        c.transactions.push(n.round());
    }
    c
}

/// WAL bytes/s as Prometheus' `rate(...[span])` would read it: the
/// throughput over `span` times the WAL each transaction wrote, a function
/// of the transactions since the counter started.
fn wal_rate(c: &Counts, span: Duration, per_txn: impl Fn(f64) -> f64) -> Vec<Sample> {
    let values: Vec<f64> = (0..c.len())
        .map(|i| c.rate(i, span).unwrap() * per_txn(c.transactions[i]))
        .collect();
    samples("wal", &values)
}

/// A full-page-image burst per transaction after a CHECKPOINT, spent as the
/// transactions first touch their pages (a big table: slowly), down to a
/// floor of 400 bytes.
fn burst(peak: f64) -> impl Fn(f64) -> f64 {
    move |x| 400.0 + peak * (-x / 200_000.0).exp()
}

/// Throughput a closed-loop load reaches: `tps` each interval, ±1%.
fn steady(tps: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| tps * (1.0 + [0.0, 0.01, -0.01][i % 3]))
        .collect()
}

const LOOKBACK: Duration = Duration::from_secs(30);

fn wal_spec(per_transaction: Option<Duration>) -> MetricSpec {
    MetricSpec {
        name: "wal".into(),
        direction: Direction::LowerIsBetter,
        limit: Some((Comparison::Le, 1000.0)),
        per_transaction,
        lookback: LOOKBACK,
    }
}

/// A WAL goal over CHECKPOINT-aligned windows, 18 samples every 5 s after
/// the 30 s lookback, with both windows counted.
fn aligned<'a>(
    specs: &'a [MetricSpec],
    before: &'a [Sample],
    after: &'a [Sample],
    counts: (&'a Counts, &'a Counts),
) -> JudgeInput<'a> {
    JudgeInput {
        aligned: true,
        counts: Counted {
            before: Some(counts.0),
            after: Some(counts.1),
            span: LOOKBACK,
            drift: None,
        },
        ..input(specs, before, after)
    }
}

#[test]
fn closed_loop_a_slower_commit_path_is_regressed_by_throughput_not_kept_for_less_wal() {
    // pgbench's 8 clients: commits that wait cut throughput 900 → 700 tx/s.
    // WAL per transaction is what it was at each count since the CHECKPOINT,
    // so WAL bytes/s falls by a fifth from less work alone.
    let (cb, ca) = (
        counted(&steady(900.0, 18), 5.0, 30.0),
        counted(&steady(700.0, 18), 5.0, 30.0),
    );
    let before = wal_rate(&cb, LOOKBACK, burst(4600.0));
    let after = wal_rate(&ca, LOOKBACK, burst(4600.0));

    // The old judge, per second and blind to throughput, kept it.
    let per_second = [wal_spec(None)];
    let blind = judge(&JudgeInput {
        counts: Counted::default(),
        ..aligned(&per_second, &before, &after, (&cb, &ca))
    });
    assert_eq!(blind.verdict, Verdict::Improved, "{}", blind.reason);

    // Throughput guards it whether or not any metric is per transaction.
    for per in [None, Some(LOOKBACK)] {
        let specs = [wal_spec(per)];
        let j = judge(&aligned(&specs, &before, &after, (&cb, &ca)));
        assert_eq!(j.verdict, Verdict::Regressed, "{}", j.reason);
        assert!(
            j.reason
                .starts_with("throughput fell beyond its noise band: median 9")
                && j.reason.contains("→ 7")
                && j.reason.contains("tx/s")
                && j.reason.contains("less work was done, whatever wal did"),
            "{}",
            j.reason
        );
        let t = j.throughput.unwrap();
        assert_eq!(t.movement, Movement::Worse);
        assert!(t.after < t.before * 0.8, "{t:?}");
    }

    // Per transaction, paired by transactions since the CHECKPOINT, the
    // goal did not move.
    let specs = [wal_spec(Some(LOOKBACK))];
    let j = judge(&aligned(&specs, &before, &after, (&cb, &ca)));
    let goal = j.goal.unwrap();
    assert!(goal.per_transaction);
    assert_eq!(goal.statistic, Statistic::AlignedMeanByWork);
    assert_eq!(goal.movement, Movement::WithinNoise, "{goal:?}");
    assert!(describe(&goal).starts_with("per transaction, mean from a CHECKPOINT"));
}

#[test]
fn closed_loop_a_wal_cut_that_comes_only_from_fewer_transactions_is_no_effect() {
    // Throughput read every 5 s is noisy (±15%) and falls 6%: within its
    // band. WAL bytes/s averages a minute, is smooth, and falls the same 6%:
    // beyond its 5% floor. Per transaction nothing changed.
    let minute = Duration::from_secs(60);
    let wobble = |tps: f64| -> Vec<f64> {
        (0..24)
            .map(|i| tps * if i % 2 == 0 { 0.85 } else { 1.15 })
            .collect()
    };
    let (cb, ca) = (
        counted(&wobble(900.0), 5.0, 0.0),
        counted(&wobble(846.0), 5.0, 0.0),
    );
    let per_txn = |_: f64| 500.0;
    let (before, after) = (
        wal_rate(&cb, minute, per_txn),
        wal_rate(&ca, minute, per_txn),
    );
    let plain = |specs| JudgeInput {
        counts: Counted {
            before: Some(&cb),
            after: Some(&ca),
            span: Duration::from_secs(5),
            drift: None,
        },
        ..input(specs, &before, &after)
    };

    let per_second = [wal_spec(None)];
    let j = judge(&plain(&per_second));
    assert_eq!(j.verdict, Verdict::Improved, "per second: {}", j.reason);
    assert_eq!(j.throughput.unwrap().movement, Movement::WithinNoise);

    let per_transaction = [wal_spec(Some(minute))];
    let j = judge(&plain(&per_transaction));
    assert_eq!(j.verdict, Verdict::NoEffect, "{}", j.reason);
    let goal = j.goal.unwrap();
    assert_eq!((goal.before, goal.after), (500.0, 500.0));
    assert!(
        j.reason.starts_with("wal within its noise band"),
        "{}",
        j.reason
    );
}

#[test]
fn open_loop_throughput_holds_and_latency_catches_the_slower_commit() {
    // The clients send 200 tx/s whatever the server does: throughput and
    // WAL/s do not move; each commit waits 30 ms longer.
    let specs = vec![
        wal_spec(Some(LOOKBACK)),
        MetricSpec {
            name: "lat".into(),
            direction: Direction::LowerIsBetter,
            limit: Some((Comparison::Le, 200.0)),
            per_transaction: None,
            lookback: Duration::ZERO,
        },
    ];
    let (cb, ca) = (
        counted(&steady(200.0, 18), 5.0, 30.0),
        counted(&steady(200.0, 18), 5.0, 30.0),
    );
    let before = merge(
        wal_rate(&cb, LOOKBACK, burst(4600.0)),
        samples("lat", &around(50.0)),
    );
    let after = merge(
        wal_rate(&ca, LOOKBACK, burst(4600.0)),
        samples("lat", &around(80.0)),
    );
    let j = judge(&aligned(&specs, &before, &after, (&cb, &ca)));
    assert_eq!(j.verdict, Verdict::Regressed, "{}", j.reason);
    assert!(
        j.reason.starts_with("lat got worse beyond its noise"),
        "{}",
        j.reason
    );
    assert_eq!(j.throughput.unwrap().movement, Movement::WithinNoise);
    assert_eq!(j.goal.unwrap().movement, Movement::WithinNoise);
}

#[test]
fn a_real_cut_in_wal_per_transaction_is_still_kept() {
    // wal_compression: the burst shrinks, the work does not.
    let specs = [wal_spec(Some(LOOKBACK))];
    let (cb, ca) = (
        counted(&steady(900.0, 18), 5.0, 30.0),
        counted(&steady(910.0, 18), 5.0, 30.0),
    );
    let before = wal_rate(&cb, LOOKBACK, burst(4600.0));
    let after = wal_rate(&ca, LOOKBACK, burst(800.0));
    let j = judge(&aligned(&specs, &before, &after, (&cb, &ca)));
    assert_eq!(j.verdict, Verdict::Improved, "{}", j.reason);
    assert!(
        j.reason
            .starts_with("wal improved beyond its noise band per transaction"),
        "{}",
        j.reason
    );
    let goal = j.goal.unwrap();
    assert!(goal.after < goal.before * 0.5, "{goal:?}");
    let t = j.throughput.unwrap();
    assert_eq!(t.movement, Movement::WithinNoise);
    assert!(
        describe_throughput(&t).contains("noise band ±"),
        "{}",
        describe_throughput(&t)
    );
}

#[test]
fn more_work_does_not_make_a_per_transaction_guard_violated() {
    // A latency fix lets the clients do 30% more: WAL bytes/s rises past its
    // objective (90 → 117 against <= 100) with the same WAL per transaction.
    let specs = vec![
        MetricSpec {
            name: "lat".into(),
            direction: Direction::LowerIsBetter,
            limit: Some((Comparison::Le, 200.0)),
            per_transaction: None,
            lookback: Duration::ZERO,
        },
        MetricSpec {
            limit: Some((Comparison::Le, 100.0)),
            ..wal_spec(Some(Duration::from_secs(5)))
        },
    ];
    let (cb, ca) = (
        counted(&steady(200.0, 12), 5.0, 0.0),
        counted(&steady(260.0, 12), 5.0, 0.0),
    );
    let five = Duration::from_secs(5);
    let before = merge(
        samples("lat", &around(250.0)),
        wal_rate(&cb, five, |_| 0.45),
    );
    let after = merge(
        samples("lat", &around(150.0)),
        wal_rate(&ca, five, |_| 0.45),
    );
    let counts = Counted {
        before: Some(&cb),
        after: Some(&ca),
        span: five,
        drift: None,
    };
    let j = judge(&JudgeInput {
        goal: "lat",
        wal_goal: false,
        counts,
        ..input(&specs, &before, &after)
    });
    assert_eq!(j.verdict, Verdict::Improved, "{}", j.reason);
    assert_eq!(j.throughput.unwrap().movement, Movement::Better);
    let wal = j.others.iter().find(|s| s.metric == "wal").unwrap();
    assert!(
        wal.per_transaction && wal.movement == Movement::WithinNoise,
        "{wal:?}"
    );

    // Per second, the same numbers read as a broken objective.
    let specs = vec![
        specs[0].clone(),
        MetricSpec {
            per_transaction: None,
            ..specs[1].clone()
        },
    ];
    let j = judge(&JudgeInput {
        goal: "lat",
        wal_goal: false,
        counts,
        ..input(&specs, &before, &after)
    });
    assert_eq!(j.verdict, Verdict::Regressed, "{}", j.reason);
    assert!(j.reason.contains("wal became violated"), "{}", j.reason);
}

#[test]
fn counted_before_but_not_after_fails_closed_and_never_counted_is_named() {
    let specs = [wal_spec(Some(LOOKBACK))];
    let cb = counted(&steady(900.0, 18), 5.0, 30.0);
    let before = wal_rate(&cb, LOOKBACK, burst(4600.0));
    let after = wal_rate(&cb, LOOKBACK, burst(800.0));
    let j = judge(&JudgeInput {
        counts: Counted {
            before: Some(&cb),
            after: None,
            span: LOOKBACK,
            drift: None,
        },
        ..input(&specs, &before, &after)
    });
    assert_eq!(j.verdict, Verdict::NoData, "{}", j.reason);
    assert!(
        j.reason
            .starts_with("throughput: transactions were counted before the change"),
        "{}",
        j.reason
    );

    // No database at all: judged per second, and the reason says so.
    let j = judge(&input(&specs, &before, &after));
    assert_eq!(j.verdict, Verdict::Improved, "{}", j.reason);
    assert!(j.throughput.is_none());
    assert!(
        j.reason
            .contains("throughput not guarded: no transactions counted before the change")
            && j.reason
                .contains("judged per second, not per transaction (transactions not counted): wal"),
        "{}",
        j.reason
    );
    assert!(!j.goal.unwrap().per_transaction);
}

#[test]
fn throughput_that_drifted_between_two_windows_of_one_setting_widens_its_band() {
    // The host's other work: two windows at the old setting already read
    // 1200 and 1080 tx/s. A change read at 8% below the last is no fall.
    let specs = [wal_spec(Some(LOOKBACK))];
    let (cb, ca) = (
        counted(&steady(1200.0, 18), 5.0, 30.0),
        counted(&steady(1100.0, 18), 5.0, 30.0),
    );
    let before = wal_rate(&cb, LOOKBACK, burst(4600.0));
    let after = wal_rate(&ca, LOOKBACK, burst(800.0));
    let with_drift = |drift| {
        judge(&JudgeInput {
            counts: Counted {
                drift,
                ..aligned(&specs, &before, &after, (&cb, &ca)).counts
            },
            ..aligned(&specs, &before, &after, (&cb, &ca))
        })
    };
    let j = with_drift(None);
    assert_eq!(j.verdict, Verdict::Regressed, "{}", j.reason);
    let j = with_drift(Some(120.0));
    assert_eq!(j.verdict, Verdict::Improved, "{}", j.reason);
    let t = describe_throughput(&j.throughput.unwrap());
    assert!(
        t.contains("noise band ±120 tx/s (the drift between two windows before the change)")
            && t.ends_with("(within noise)"),
        "{t}"
    );
}
