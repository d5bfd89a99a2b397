//! Throughput guards every change: a lever that makes commits wait under a
//! closed-loop load (fixed clients) is rolled back as regressed, whatever
//! WAL per second did; under an open-loop load (the clients set the rate)
//! latency catches it; a real cut in WAL per transaction is still kept.

use super::*;

/// The tests' CONFIG, with `wal_rate` judged per transaction when `per`.
fn config(per: bool) -> String {
    let per = if per { ", per: transaction" } else { "" };
    CONFIG.replace(
        "window: 5m, symptom: high_wal_rate}",
        &format!("window: 5m, symptom: high_wal_rate{per}}}"),
    )
}

/// The cheap lever makes every commit wait; the dearer one compresses
/// full-page images.
const LEVERS: &str = r#"
levers:
  commit_delay:
    kind: postgres
    parameter: commit_delay
    cost: low
    symptoms: [high_wal_rate]
    values: ["10000"]
  wal_compression:
    kind: postgres
    parameter: wal_compression
    cost: medium
    symptoms: [high_wal_rate]
    values: ["lz4"]
"#;

fn backend(throughput: impl Fn(&Levels) -> f64 + Send + Sync + 'static) -> FakeBackend {
    let mut b = FakeBackend::with(&[("commit_delay", "0"), ("wal_compression", "off")]);
    b.can_checkpoint = true;
    b.throughput = Some(Box::new(throughput));
    b
}

/// Closed loop: 8 clients as fast as commits allow, 900 tx/s, 700 when
/// every commit waits.
fn closed_loop(l: &Levels) -> f64 {
    if is(l, "commit_delay", "10000") {
        700.0
    } else {
        900.0
    }
}

/// WAL per transaction: 500 B, 150 B with compressed full-page images.
fn wal_per_txn(l: &Levels) -> f64 {
    if is(l, "wal_compression", "lz4") {
        150.0
    } else {
        500.0
    }
}

/// WAL bytes/s (against `<= 100`: always violated) is work times WAL
/// per transaction; latency is 100 ms, 180 ms when commits wait under an
/// open loop.
fn world(
    tps: fn(&Levels) -> f64,
    open_loop: bool,
) -> impl Fn(&Levels) -> BTreeMap<String, Option<f64>> {
    move |l| {
        let lat = if open_loop && is(l, "commit_delay", "10000") {
            180.0
        } else {
            100.0
        };
        metrics(tps(l) * wal_per_txn(l), lat)
    }
}

fn verdicts(report: &RunReport) -> Vec<(&str, Option<Verdict>)> {
    report
        .cycles
        .iter()
        .map(|c| (c.lever.as_str(), c.verdict))
        .collect()
}

/// Two cycles under a closed loop: commit_delay (fewer transactions), then
/// wal_compression (less WAL per transaction); `wal_rate` judged per
/// transaction when `per`. Also rendered by `output::tune`'s tests.
pub(crate) async fn closed_loop_run(per: bool) -> (World, RunReport) {
    let w = World::with_config(backend(closed_loop), &config(per), LEVERS);
    let obs = w.observer(world(closed_loop, false));
    let report = w.run(&obs, 2).await;
    (w, report)
}

#[tokio::test(start_paused = true)]
async fn closed_loop_a_lever_that_makes_commits_wait_is_regressed_and_compression_kept() {
    for per in [true, false] {
        let (w, report) = closed_loop_run(per).await;
        // commit_delay cuts WAL bytes/s by 22% (less work), never WAL per
        // transaction: rolled back on throughput, per second or not.
        assert_eq!(
            verdicts(&report),
            [
                ("commit_delay", Some(Verdict::Regressed)),
                ("wal_compression", Some(Verdict::Improved))
            ],
            "per: {per}: {}",
            report.message
        );
        let first = &report.cycles[0];
        assert!(
            first.reason.starts_with(
                "throughput fell beyond its noise band: median 900 → 700 tx/s (-22.2%)"
            ),
            "{}",
            first.reason
        );
        assert_eq!(w.backend.value("commit_delay").as_deref(), Some("0"));
        assert_eq!(w.backend.value("wal_compression").as_deref(), Some("lz4"));
        assert_eq!(first.goal_per_transaction, per);
        if per {
            // Per transaction the goal did not move: 500 B both sides.
            assert!(first
                .evidence
                .as_deref()
                .unwrap()
                .starts_with("per transaction, mean from a CHECKPOINT"));
        }

        // The changelog shows throughput with its band (the verdict lines
        // too: `output::tune`'s tests).
        let log = w.changelog();
        assert!(
            log.contains("* Throughput: median 900 → 700 tx/s (-22.2%), noise band ±45 tx/s (drift between two windows before the change ±0 tx/s), Welch t over 15 independent readings a window p<0.0001 (fell)"),
            "{log}"
        );
        assert!(
            log.contains("* Throughput: median 900 → 900 tx/s (+0.0%), noise band ±45 tx/s (drift between two windows before the change ±0 tx/s)"),
            "{log}"
        );
        if per {
            assert!(
                log.contains("* Goal metric: wal_rate per transaction from 500B/txn → 150B/txn"),
                "{log}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn open_loop_throughput_holds_and_latency_rolls_the_slower_commit_back() {
    // The clients send 900 tx/s whatever the server does.
    let steady = |_: &Levels| 900.0;
    let w = World::with_config(backend(steady), &config(true), LEVERS);
    let obs = w.observer(world(|_| 900.0, true));
    let report = w.run(&obs, 2).await;
    assert_eq!(
        verdicts(&report),
        [
            ("commit_delay", Some(Verdict::Regressed)),
            ("wal_compression", Some(Verdict::Improved))
        ],
        "{}",
        report.message
    );
    let first = &report.cycles[0];
    assert!(
        first
            .reason
            .starts_with("p95_write_latency got worse beyond its noise"),
        "{}",
        first.reason
    );
    let throughput = first.throughput.as_ref().unwrap();
    assert_eq!(throughput.movement, crate::judge::Movement::WithinNoise);
    assert_eq!(w.backend.value("commit_delay").as_deref(), Some("0"));
}

#[tokio::test(start_paused = true)]
async fn a_plain_window_is_observed_live_when_the_database_counts_transactions() {
    // A latency goal: without a counter its before-window is Prometheus'
    // history, which has no transactions; with one, it is observed now.
    let mut b = World::default_backend();
    b.transactions_per_second = Some(300.0);
    let w = World::new(b);
    let obs = w.observer(|l| {
        let lat = if is(l, "shared_buffers", "1GB") {
            100.0
        } else {
            250.0
        };
        metrics(50.0, lat)
    });
    let report = w.run(&obs, 1).await;
    let cycle = &report.cycles[0];
    assert_eq!(cycle.verdict, Some(Verdict::Improved), "{}", cycle.reason);
    assert_eq!(cycle.throughput.as_ref().unwrap().before, 300.0);
    let lines = std::fs::read_to_string(w.path("tuning.log")).unwrap();
    let counted = |phase: &str| {
        lines
            .lines()
            .filter(|l| l.contains(&format!("\"phase\":\"{phase}\"")))
            .filter(|l| l.contains("\"transactions_since_window_start\":"))
            .count()
    };
    assert_eq!((counted("before"), counted("observe")), (60, 60));
}
