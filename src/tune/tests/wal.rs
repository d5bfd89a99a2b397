//! WAL goals: windows opened by a CHECKPOINT, paired by transactions, and
//! the SLA read over a window rather than an instant.

use super::*;

/// Samples since the fake database's last CHECKPOINT.
fn since_checkpoint(l: &Levels) -> i32 {
    l.get("since_checkpoint")
        .cloned()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Each cycle's lever and whether it was kept.
fn kept(report: &RunReport) -> Vec<(&str, bool)> {
    report
        .cycles
        .iter()
        .map(|c| (c.lever.as_str(), c.kept))
        .collect()
}

/// The backend's CHECKPOINTs, applies and reverts, in order.
fn checkpoints_and_writes(backend: &FakeBackend) -> Vec<String> {
    backend
        .calls()
        .into_iter()
        .filter(|c| c == "checkpoint" || c.starts_with("apply") || c.starts_with("revert"))
        .collect()
}

/// Full-page-image bursts: WAL is a floor of 50 plus a burst that decays
/// after each checkpoint. At the defaults max_wal_size forces a checkpoint
/// every other sample; at 4GB only the tuner's CHECKPOINT starts one, so an
/// instant reading late in a window sits on the floor.
fn fpi_world(l: &Levels) -> BTreeMap<String, Option<f64>> {
    let since = since_checkpoint(l);
    let since = if !is(l, "max_wal_size", "1GB") {
        since
    } else {
        since % 2
    };
    let peak = if is(l, "checkpoint_timeout", "15min") {
        // Stands in for wal_compression here: a smaller burst.
        80.0
    } else {
        400.0
    };
    metrics(50.0 + peak * 0.9f64.powi(since), 100.0)
}

#[tokio::test(start_paused = true)]
async fn wal_windows_start_at_a_checkpoint_and_the_sla_is_read_over_the_window() {
    let w = World::new(World::checkpointing_backend());
    let obs = w.observer(fpi_world);
    let report = w.run(&obs, 5).await;

    // max_wal_size=4GB: window mean 350 → ~117, kept. The instant reading
    // after it is ~50 (the floor) and would have called the SLA met; the
    // window mean is still above 100, so 8GB (no better: rolled back) and
    // then the smaller burst are tried too.
    let kept = kept(&report);
    assert_eq!(
        kept,
        [
            ("max_wal_size", true),
            ("max_wal_size", false),
            ("checkpoint_timeout", true)
        ],
        "{}",
        report.message
    );
    assert_eq!(report.outcome, Outcome::SlaMet, "{}", report.message);
    assert!(report.message.contains("CHECKPOINT"), "{}", report.message);

    // A CHECKPOINT opens the two before-windows of the first cycle (their
    // drift), each after-window, the fresh before-window after a kept
    // change, and the re-measurement after a rollback.
    assert_eq!(
        checkpoints_and_writes(&w.backend),
        [
            "checkpoint",
            "checkpoint",
            "apply max_wal_size 1GB->4GB",
            "checkpoint",
            "checkpoint",
            "apply max_wal_size 4GB->8GB",
            "checkpoint",
            "revert max_wal_size 8GB->4GB",
            "checkpoint",
            "apply checkpoint_timeout 5min->15min",
            "checkpoint"
        ]
    );
    let first = report.cycles[0].evidence.clone().unwrap();
    assert!(first.contains("mean from a CHECKPOINT"), "{first}");
    let log = w.changelog();
    assert!(log.contains("paired by time since it"), "{log}");
    let lines = std::fs::read_to_string(w.path("tuning.log")).unwrap();
    assert_eq!(
        lines
            .lines()
            .filter(|l| l.contains("\"phase\":\"before\""))
            .count(),
        2 * 60,
        "the first change's before-window, and 8GB's fresh one"
    );
    // 4GB's after-window and the fresh one are two windows of one setting:
    // 8GB is judged with their drift in its band.
    let second = report.cycles[1].evidence.clone().unwrap();
    assert!(
        second.contains("drift between two windows before the change"),
        "{second}"
    );
}

/// The first window after a change reads 15% above later windows of the
/// same setting (the drift the bench saw). Judged against that window, 8GB,
/// which does nothing, would look like a 15% cut and be kept. Judged against
/// a fresh window of 4GB, it is no effect, and the drift between the two
/// 4GB windows is in its band.
#[tokio::test(start_paused = true)]
async fn a_change_is_judged_against_a_fresh_window_not_the_first_after_the_last_change() {
    let w = World::new(World::checkpointing_backend());
    let backend = w.backend.clone();
    let obs = w.observer(move |l| {
        let checkpoints = backend
            .checkpoints
            .load(std::sync::atomic::Ordering::SeqCst);
        let wal = if is(l, "max_wal_size", "1GB") {
            300.0
        } else if checkpoints == 3 {
            // 4GB's after-window: the third CHECKPOINT opened it (the first
            // two, the first cycle's two before-windows).
            138.0
        } else {
            120.0
        };
        metrics(wal, 100.0)
    });
    let report = w.run(&obs, 2).await;
    assert_eq!(
        kept(&report),
        [("max_wal_size", true), ("max_wal_size", false)],
        "{}",
        report.message
    );
    let second = &report.cycles[1];
    assert_eq!(second.verdict, Some(Verdict::NoEffect), "{}", second.reason);
    let evidence = second.evidence.clone().unwrap();
    assert!(
        evidence.starts_with("mean from a CHECKPOINT 120 → 120")
            && evidence
                .contains("noise band ±18 (the drift between two windows before the change)"),
        "{evidence}"
    );
}

/// With the database's transaction counter, the same run pairs the windows
/// by transactions since each CHECKPOINT and logs the count with every
/// sample of those windows.
#[tokio::test(start_paused = true)]
async fn wal_windows_are_paired_by_transactions_when_the_database_counts_them() {
    let mut backend = World::checkpointing_backend();
    backend.transactions_per_second = Some(200.0);
    let w = World::new(backend);
    let obs = w.observer(fpi_world);
    let report = w.run(&obs, 5).await;
    assert_eq!(
        kept(&report),
        [
            ("max_wal_size", true),
            ("max_wal_size", false),
            ("checkpoint_timeout", true)
        ],
        "{}",
        report.message
    );
    let log = w.changelog();
    assert!(log.contains("paired by transactions since it"), "{log}");
    assert!(!log.contains("paired by time since it"), "{log}");
    let lines = std::fs::read_to_string(w.path("tuning.log")).unwrap();
    let counted = lines
        .lines()
        .filter(|l| l.contains("\"phase\":\"observe\""))
        .filter(|l| l.contains("\"transactions_since_checkpoint\":"))
        .count();
    assert_eq!(counted, 3 * 60, "every observed sample carries its count");
}

#[tokio::test(start_paused = true)]
async fn without_a_database_to_checkpoint_the_wal_window_comes_from_history() {
    // Same world, but the backend cannot CHECKPOINT: the old path, and the
    // instant reading on the floor stops the run after one change.
    let w = World::new(World::default_backend());
    let obs = w.observer(fpi_world);
    let report = w.run(&obs, 5).await;
    assert!(!w.backend.calls().contains(&"checkpoint".to_string()));
    assert_eq!(report.cycles.len(), 1, "{}", report.message);
    assert_eq!(report.outcome, Outcome::SlaMet);
    assert_eq!(report.message, "SLA met");
}

#[tokio::test(start_paused = true)]
async fn a_window_opened_by_a_checkpoint_is_only_compared_with_another() {
    // WAL first (kept, its window opened by a CHECKPOINT), then latency:
    // that WAL window is latency's before-window, so latency's after-window
    // opens with a CHECKPOINT too, or the burst would flatter the change.
    let w = World::new(World::checkpointing_backend());
    let obs = w.observer(|l| {
        let wal = if is(l, "max_wal_size", "4GB") {
            60.0
        } else {
            150.0
        };
        let lat = if is(l, "shared_buffers", "1GB") {
            100.0
        } else {
            250.0
        };
        metrics(wal, lat)
    });
    let report = w.run(&obs, 5).await;
    assert_eq!(report.outcome, Outcome::SlaMet, "{}", report.message);
    assert_eq!(
        checkpoints_and_writes(&w.backend),
        [
            "checkpoint",
            "checkpoint",
            "apply max_wal_size 1GB->4GB",
            "checkpoint",
            "apply shared_buffers 128MB->1GB",
            "checkpoint"
        ]
    );
    // Latency is still judged by its median.
    let latency = report.cycles[1].evidence.clone().unwrap();
    assert!(latency.starts_with("median"), "{latency}");
}

#[tokio::test(start_paused = true)]
async fn a_rollback_in_the_last_cycle_leaves_the_sla_read_over_the_window_before_it() {
    // 4GB kept, 8GB rolled back in the last cycle: the state is the 4GB one,
    // whose window from a CHECKPOINT still averages above the limit. An
    // instant reading now would sit on the floor and call the SLA met.
    let w = World::new(World::checkpointing_backend());
    let obs = w.observer(fpi_world);
    let report = w.run(&obs, 2).await;
    assert_eq!(report.cycles.len(), 2);
    assert!(!report.cycles[1].kept);
    assert_eq!(report.outcome, Outcome::StillViolated, "{}", report.message);
    assert_eq!(crate::exit::for_tune(&report), 3);
}

/// zstd first, lz4 as its fallback: two levers on one setting.
const COMPRESSION: &str = r#"
levers:
  wal_compression:
    kind: postgres
    parameter: wal_compression
    cost: low
    symptoms: [high_wal_rate]
    values: ["zstd"]
  wal_compression_lz4:
    kind: postgres
    parameter: wal_compression
    cost: low
    symptoms: [high_wal_rate]
    values: ["lz4"]
  checkpoint_timeout:
    kind: postgres
    parameter: checkpoint_timeout
    cost: low
    symptoms: [high_wal_rate]
    values: ["15min"]
"#;

#[tokio::test(start_paused = true)]
async fn a_kept_setting_retires_its_fallback_and_a_rolled_back_one_calls_it() {
    // zstd helps: kept, and the lz4 fallback is never tried (it would undo
    // a measured win); the run moves on to the next setting.
    let w = World::with_levers(
        FakeBackend::with(&[("wal_compression", "off"), ("checkpoint_timeout", "5min")]),
        COMPRESSION,
    );
    let obs = w.observer(|l| {
        let wal = if is(l, "wal_compression", "zstd") {
            120.0
        } else {
            150.0
        };
        metrics(
            if is(l, "checkpoint_timeout", "15min") {
                wal * 0.5
            } else {
                wal
            },
            100.0,
        )
    });
    let report = w.run(&obs, 5).await;
    let tried = kept(&report);
    assert_eq!(
        tried,
        [("wal_compression", true), ("checkpoint_timeout", true)]
    );

    // zstd hurts latency: rolled back, and lz4 is tried next.
    let w = World::with_levers(
        FakeBackend::with(&[("wal_compression", "off"), ("checkpoint_timeout", "5min")]),
        COMPRESSION,
    );
    let obs = w.observer(|l| {
        if is(l, "wal_compression", "zstd") {
            metrics(60.0, 190.0)
        } else if is(l, "wal_compression", "lz4") {
            metrics(80.0, 100.0)
        } else {
            metrics(150.0, 100.0)
        }
    });
    let report = w.run(&obs, 5).await;
    let tried = kept(&report);
    assert_eq!(
        tried,
        [("wal_compression", false), ("wal_compression_lz4", true)]
    );
    assert_eq!(report.outcome, Outcome::SlaMet);
}

#[tokio::test(start_paused = true)]
async fn the_sla_reads_wal_over_a_window_not_an_instant_between_bursts() {
    use crate::tune::ports::Observer;
    // A burst every 20 samples, the floor in between; no database to
    // CHECKPOINT. The instant reading falls between bursts (51 <= 100), the
    // window's mean does not (~150): tuning is needed, not "SLA met".
    let w = World::new(World::default_backend());
    let obs = w.observer(|l| {
        let since = since_checkpoint(l);
        metrics(50.0 + 1000.0 * 0.5f64.powi(since % 20), 100.0)
    });
    for _ in 0..10 {
        obs.sample().await.unwrap();
    }
    let (_keep, mut shutdown) = Shutdown::new();
    let report = w.tune(&obs, 5, true, &mut shutdown).await.unwrap();
    assert_eq!(report.outcome, Outcome::DryRun, "{}", report.message);
    let wal = report
        .sla
        .as_ref()
        .unwrap()
        .metrics
        .iter()
        .find(|m| m.name == "wal_rate")
        .and_then(|m| m.value)
        .unwrap();
    assert!(wal > 100.0, "{wal}");
}

/// One observation with no alerts and no log, for timing tests.
async fn watch(
    obs: &FakeObserver,
    windows: &Windows,
    opening: Opening<'_>,
    shutdown: &mut Shutdown,
) -> crate::tune::observe::Observation {
    crate::tune::observe::observe(
        obs,
        windows,
        opening,
        crate::tune::observe::Tripwires {
            firing_before: &Default::default(),
            required: &[],
        },
        shutdown,
        &Silent,
        |_, _| Ok(()),
    )
    .await
    .unwrap()
}

/// `rate(x[1m])` sampled right after a CHECKPOINT still averages the minute
/// before it: the window waits out the WAL query's lookback (CONFIG's
/// `[1m]`) between the CHECKPOINT and its first sample.
#[tokio::test(start_paused = true)]
async fn a_window_from_a_checkpoint_waits_out_the_query_lookback() {
    let mut backend = World::checkpointing_backend();
    backend.transactions_per_second = Some(100.0);
    let w = World::new(backend);
    let lookback = crate::tune::cycle::wal_lookback(&w.config);
    assert_eq!(lookback, Duration::from_secs(60));
    let obs = w.observer(|_| metrics(50.0, 100.0));
    let windows = Windows {
        settle: Duration::from_secs(20),
        observe: Duration::from_secs(150),
        interval: Duration::from_secs(15),
        lookback,
    };
    let (_t, mut shutdown) = Shutdown::new();
    let started = tokio::time::Instant::now();
    let observation = watch(
        &obs,
        &windows,
        Opening::Checkpoint(w.backend.as_ref()),
        &mut shutdown,
    )
    .await;
    assert_eq!(observation.samples.len(), 10);
    // Counted from the CHECKPOINT: the lookback's 60 s, then 15 s a sample.
    let counts = observation.counts.expect("transactions counted");
    assert_eq!(counts.transactions.first(), Some(&7500.0));
    assert_eq!(counts.transactions.last(), Some(&21000.0));
    assert_eq!(counts.seconds.first(), Some(&75.0));
    assert_eq!(
        w.backend
            .checkpoints
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // settle, then the lookback after the CHECKPOINT, then 10 intervals.
    assert_eq!(started.elapsed(), Duration::from_secs(20 + 60 + 150));

    // Without a CHECKPOINT there is no boundary to wait out; transactions
    // are still counted (throughput guards every change), from the start of
    // the sampling.
    let started = tokio::time::Instant::now();
    let observation = watch(
        &obs,
        &windows,
        Opening::Plain(w.backend.as_ref()),
        &mut shutdown,
    )
    .await;
    assert_eq!(started.elapsed(), Duration::from_secs(20 + 150));
    let counts = observation.counts.expect("counted in a plain window too");
    assert_eq!(counts.transactions.first(), Some(&1500.0));
    assert_eq!(counts.seconds.first(), Some(&15.0));
}

/// Settle and the lookback after the CHECKPOINT can each last minutes: both
/// are announced with their length in seconds, advance as time passes and
/// end, before the observation's own count of samples.
#[tokio::test(start_paused = true)]
async fn settle_and_the_checkpoint_lookback_report_progress_in_seconds() {
    use crate::journal::{Event, Recorded};
    let w = World::new(World::checkpointing_backend());
    let obs = w.observer(|_| metrics(50.0, 100.0));
    let windows = Windows {
        settle: Duration::from_secs(20),
        observe: Duration::from_secs(30),
        interval: Duration::from_secs(15),
        lookback: Duration::from_secs(60),
    };
    let (_t, mut shutdown) = Shutdown::new();
    let events = Recorded::default();
    crate::tune::observe::observe(
        &obs,
        &windows,
        Opening::Checkpoint(w.backend.as_ref()),
        crate::tune::observe::Tripwires {
            firing_before: &Default::default(),
            required: &[],
        },
        &mut shutdown,
        &events,
        |_, _| Ok(()),
    )
    .await
    .unwrap();
    let waits: Vec<Event> = events
        .events()
        .into_iter()
        .filter(|e| !matches!(e, Event::Step { .. }))
        .collect();
    let timed = |what: &str, total| Event::Waiting {
        what: what.into(),
        total: Some(total),
        unit: Some("s".into()),
    };
    let at = |done| Event::Advanced { done };
    assert_eq!(
        waits,
        vec![
            timed("settling after the change", 20),
            at(15),
            at(20),
            Event::Finished,
            timed("waiting out the queries' lookback after the CHECKPOINT", 60),
            at(15),
            at(30),
            at(45),
            at(60),
            Event::Finished,
            Event::Waiting {
                what: "observing".into(),
                total: Some(2),
                unit: None
            },
            at(1),
            at(2),
            Event::Finished,
        ]
    );
}
