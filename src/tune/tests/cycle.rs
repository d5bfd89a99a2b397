//! A cycle's verdicts, its exits and interrupts, on the simulated world.
//! Just over 500 lines: one test per verdict and exit, each short, read as
//! the catalogue of what a cycle can end in.

use super::*;

#[tokio::test(start_paused = true)]
async fn sla_met_stops_at_once_with_exit_0_and_no_change() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|_| metrics(50.0, 100.0));
    let report = w.run(&obs, 5).await;
    assert_eq!(report.outcome, Outcome::SlaMet);
    assert_eq!(crate::exit::for_tune(&report), 0);
    assert!(report.cycles.is_empty());
    assert!(w.backend.writes().is_empty(), "{:?}", w.backend.calls());
    assert!(!w.path("backups").exists());
}

#[tokio::test(start_paused = true)]
async fn cheapest_lever_first_and_a_restart_counts_as_medium() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|l| {
        if is(l, "max_wal_size", "4GB") {
            metrics(60.0, 100.0)
        } else {
            metrics(150.0, 100.0)
        }
    });
    let report = w.run(&obs, 5).await;

    assert_eq!(report.outcome, Outcome::SlaMet, "{}", report.message);
    assert_eq!(report.cycles.len(), 1);
    let c = &report.cycles[0];
    // wal_buffers is listed first as "low" but the server says restart.
    assert_eq!(c.lever, "max_wal_size");
    assert_eq!(c.verdict, Some(Verdict::Improved));
    assert!(c.kept);
    assert_eq!(w.backend.writes(), ["apply max_wal_size 1GB->4GB"]);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("4GB"));

    // Evidence: changelog in the runbook format, one tuning.log line per sample, a backup.
    let log = w.changelog();
    assert!(log.contains("* Lever: max_wal_size=4GB\n"), "{log}");
    assert!(
        log.contains("* Goal metric: wal_rate from 150B/s → 60B/s\n"),
        "{log}"
    );
    assert!(log.contains("* Result: ✅ improved\n"), "{log}");
    assert!(log.contains("60 samples before, 60 after"), "{log}");
    // 15m of observation covers the live 5min checkpoint cycle: not provisional.
    assert!(!log.contains("provisional"), "{log}");
    assert!(w
        .backend
        .calls()
        .contains(&"current checkpoint_timeout".to_string()));
    let lines = std::fs::read_to_string(w.path("tuning.log")).unwrap();
    let phase = |p: &str| {
        lines
            .lines()
            .filter(|l| l.contains(&format!("\"phase\":\"{p}\"")))
            .count()
    };
    assert_eq!(phase("observe"), 60);
    assert_eq!(
        phase("measure"),
        2,
        "the cycle's measurement and the final one"
    );
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert!(
        first["timestamp"].is_string()
            && first["wal_rate"].is_number()
            && first["p95_write_latency"].is_number()
    );
    let backup = report.backup.clone().unwrap();
    assert!(
        std::fs::read_to_string(backup.join("postgres_settings.txt"))
            .unwrap()
            .contains("max_wal_size = 1GB")
    );
    // Journal: the change is kept and nothing is open.
    let changes = w.ledger().changes().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].status(), Status::Kept);
}

#[tokio::test(start_paused = true)]
async fn a_lever_that_does_nothing_is_rolled_back_and_not_retried() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|l| {
        if is(l, "checkpoint_timeout", "15min") {
            metrics(70.0, 100.0)
        } else {
            metrics(150.0, 100.0)
        }
    });
    let report = w.run(&obs, 5).await;

    assert_eq!(report.outcome, Outcome::SlaMet);
    let verdicts: Vec<_> = report
        .cycles
        .iter()
        .map(|c| (c.lever.as_str(), c.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("max_wal_size", Some(Verdict::NoEffect)),
            ("checkpoint_timeout", Some(Verdict::Improved))
        ]
    );
    assert_eq!(
        w.backend.writes(),
        [
            "apply max_wal_size 1GB->4GB",
            "revert max_wal_size 4GB->1GB",
            "apply checkpoint_timeout 5min->15min"
        ]
    );
    // Each change is heard as it lands: the rolled-back one once reverted
    // (2 writes), before the next was applied, not at the end of the run.
    assert_eq!(
        w.heard.log(),
        [
            ("max_wal_size".to_string(), false, 2),
            ("checkpoint_timeout".to_string(), true, 3)
        ]
    );
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
    assert!(
        report.cycles[1]
            .skipped
            .iter()
            .any(|s| s.lever == "max_wal_size"),
        "{:?}",
        report.cycles[1].skipped
    );
    let log = w.changelog();
    assert!(
        log.contains("* Result: ↩️ rolled back (no_effect): wal_rate within its noise band; throughput not guarded: no transactions counted before the change (no PostgreSQL)\n"),
        "{log}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lever_that_raises_the_goal_is_rolled_back() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|l| {
        if is(l, "max_wal_size", "4GB") {
            metrics(200.0, 100.0)
        } else {
            metrics(150.0, 100.0)
        }
    });
    let report = w.run(&obs, 1).await;
    assert_eq!(report.cycles[0].verdict, Some(Verdict::Regressed));
    assert!(!report.cycles[0].kept);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
    assert_eq!(report.outcome, Outcome::StillViolated);
    assert_eq!(crate::exit::for_tune(&report), 3);
}

#[tokio::test(start_paused = true)]
async fn a_lever_that_worsens_another_metric_is_rolled_back() {
    let w = World::new(World::default_backend());
    // WAL halves, but latency rises 100 -> 150ms: within its 200ms objective, yet worse beyond noise.
    let obs = w.observer(|l| {
        if is(l, "max_wal_size", "4GB") {
            metrics(60.0, 150.0)
        } else {
            metrics(150.0, 100.0)
        }
    });
    let report = w.run(&obs, 1).await;
    let c = &report.cycles[0];
    assert_eq!(c.verdict, Some(Verdict::Regressed), "{}", c.reason);
    assert!(
        c.reason.contains("p95_write_latency got worse"),
        "{}",
        c.reason
    );
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
}

#[tokio::test(start_paused = true)]
async fn an_alert_during_observation_rolls_back_at_once() {
    let w = World::new(World::default_backend());
    let mut obs = w.observer(|_| metrics(150.0, 100.0));
    // PreExisting fires all along and must not count; WalSpikes starts with the change.
    obs.alerts = Box::new(|l| {
        let mut a = vec!["PreExisting".to_string()];
        if is(l, "max_wal_size", "4GB") {
            a.push("WalSpikes".into());
        }
        a
    });
    let report = w.run(&obs, 1).await;
    let c = &report.cycles[0];
    assert_eq!(c.verdict, Some(Verdict::AlertFired));
    assert!(c.reason.contains("WalSpikes"), "{}", c.reason);
    // Caught while settling: no observation sample was taken.
    assert_eq!(c.samples_after, 0);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
}

#[tokio::test(start_paused = true)]
async fn unreachable_prometheus_during_observation_rolls_back() {
    let w = World::new(World::default_backend());
    let mut obs = w.observer(|_| metrics(150.0, 100.0));
    obs.reachable = Box::new(|l| !is(l, "max_wal_size", "4GB"));
    let report = w.run(&obs, 1).await;
    let c = &report.cycles[0];
    assert_eq!(c.verdict, Some(Verdict::NoData));
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
    assert!(w.changelog().contains("rolled back (no_data)"));
}

#[tokio::test(start_paused = true)]
async fn missing_goal_samples_roll_back() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|l| {
        let mut m = metrics(60.0, 100.0);
        if is(l, "max_wal_size", "4GB") {
            m.insert("wal_rate".into(), None);
        } else {
            m.insert("wal_rate".into(), Some(150.0));
        }
        m
    });
    let report = w.run(&obs, 1).await;
    assert_eq!(report.cycles[0].verdict, Some(Verdict::NoData));
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
}

#[tokio::test(start_paused = true)]
async fn a_guard_that_goes_silent_mid_window_rolls_back_at_once_naming_it() {
    let w = World::new(World::default_backend());
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = taken.clone();
    let obs = w.observer(move |l| {
        let n = seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut m = metrics(
            if is(l, "max_wal_size", "4GB") {
                60.0
            } else {
                150.0
            },
            100.0,
        );
        // The latency exporter stops a few samples into the after-window.
        if is(l, "max_wal_size", "4GB") && n > 5 {
            m.insert("p95_write_latency".into(), None);
        }
        m
    });
    let report = w.run(&obs, 1).await;
    let c = &report.cycles[0];
    assert_eq!(c.verdict, Some(Verdict::NoData), "{c:?}");
    assert!(
        c.reason.contains("p95_write_latency has no data at sample"),
        "{}",
        c.reason
    );
    assert!(c.samples_after < 10, "stopped at once: {}", c.samples_after);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
}

#[tokio::test(start_paused = true)]
async fn dry_run_plans_without_changing_anything() {
    // A backend that could CHECKPOINT: a dry run does not, either.
    let w = World::new(World::checkpointing_backend());
    let obs = w.observer(|_| metrics(150.0, 100.0));
    let (_keep, mut shutdown) = Shutdown::new();
    let report = w.tune(&obs, 5, true, &mut shutdown).await.unwrap();
    assert_eq!(report.outcome, Outcome::DryRun);
    // The reading it planned from is violated: exit 3, as `status` would.
    assert_eq!(crate::exit::for_tune(&report), 3);
    let plan = report.dry_run.unwrap();
    assert_eq!(plan.assignment, "max_wal_size=4GB");
    assert_eq!(
        plan.plan.steps,
        [
            "ALTER SYSTEM SET max_wal_size = '4GB'",
            "SELECT pg_reload_conf()"
        ]
    );
    assert!(plan.windows.contains("CHECKPOINT"), "{}", plan.windows);
    // Only reads: current and plan.
    let calls = w.backend.calls();
    assert!(
        calls
            .iter()
            .all(|c| c.starts_with("current ") || c.starts_with("plan ")),
        "{calls:?}"
    );
    assert!(w.backend.writes().is_empty());
    for f in [
        ".tuner/journal.jsonl",
        "CHANGELOG_TUNING.md",
        "tuning.log",
        "backups",
    ] {
        assert!(!w.path(f).exists(), "{f} was written by a dry run");
    }
}

#[tokio::test(start_paused = true)]
async fn still_violated_after_max_cycles_exits_3() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|_| metrics(150.0, 100.0));
    let report = w.run(&obs, 2).await;
    assert_eq!(report.cycles.len(), 2);
    assert!(report
        .cycles
        .iter()
        .all(|c| c.verdict == Some(Verdict::NoEffect)));
    assert_eq!(report.outcome, Outcome::StillViolated);
    assert_eq!(crate::exit::for_tune(&report), 3);
    // Everything put back.
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
    assert_eq!(
        w.backend.value("checkpoint_timeout").as_deref(),
        Some("5min")
    );
}

#[tokio::test(start_paused = true)]
async fn no_lever_left_exits_3() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|_| metrics(150.0, 100.0));
    let report = w.run(&obs, 10).await;
    // max_wal_size, checkpoint_timeout, then the two restart levers, then nothing.
    assert_eq!(report.cycles.len(), 4);
    assert_eq!(report.outcome, Outcome::NoLever);
    assert_eq!(crate::exit::for_tune(&report), 3);
    // Why each lever was passed over reaches the user.
    assert!(
        report
            .message
            .contains("skipped max_wal_size: already tried in this run"),
        "{}",
        report.message
    );
}

#[tokio::test(start_paused = true)]
async fn first_interrupt_rolls_back_the_open_change() {
    let w = World::new(World::default_backend());
    let (trigger, mut shutdown) = Shutdown::new();
    let mut obs = w.observer(|_| metrics(150.0, 100.0));
    // Sample 0 is the SLA measurement; interrupt after 3 observation samples.
    obs.interrupt = Some((3, trigger, 1));
    let report = w.tune(&obs, 5, false, &mut shutdown).await.unwrap();
    assert_eq!(report.outcome, Outcome::Interrupted);
    assert_eq!(report.cycles[0].verdict, None);
    assert_eq!(
        w.backend.writes(),
        [
            "apply max_wal_size 1GB->4GB",
            "revert max_wal_size 4GB->1GB"
        ]
    );
    assert_eq!(w.heard.log(), [("max_wal_size".to_string(), false, 2)]);
    assert_eq!(
        w.ledger().changes().unwrap()[0].status(),
        Status::RolledBack
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_apply_restores_and_stops() {
    let mut backend = World::default_backend();
    backend.fail_apply = vec!["max_wal_size".into()];
    let w = World::new(backend);
    let obs = w.observer(|_| metrics(150.0, 100.0));
    let (_keep, mut shutdown) = Shutdown::new();
    let err = w.tune(&obs, 5, false, &mut shutdown).await.unwrap_err();
    assert!(matches!(err, TuneError::Backend(_)), "{err}");
    assert_eq!(
        w.backend.writes(),
        [
            "apply max_wal_size 1GB->4GB",
            "revert max_wal_size 4GB->1GB"
        ]
    );
    assert_eq!(
        w.ledger().changes().unwrap()[0].status(),
        Status::RolledBack
    );
}

#[tokio::test(start_paused = true)]
async fn the_journal_records_the_live_old_value_not_the_planned_one() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|_| metrics(150.0, 100.0));
    // Somebody moved max_wal_size after planning; simulate by a backend whose
    // value changes on the second read.
    struct Drift(Arc<FakeBackend>);
    #[async_trait::async_trait]
    impl crate::levers::LeverBackend for Drift {
        async fn current(
            &self,
            lever: &crate::levers::catalog::Lever,
        ) -> Result<Option<String>, crate::levers::BackendError> {
            let reads = self
                .0
                .calls()
                .iter()
                .filter(|c| *c == "current max_wal_size")
                .count();
            let v = self.0.current(lever).await?;
            Ok(if lever.name == "max_wal_size" && reads >= 1 {
                Some("2GB".into())
            } else {
                v
            })
        }
        async fn plan(
            &self,
            l: &crate::levers::catalog::Lever,
            m: &Move,
        ) -> Result<crate::levers::Plan, crate::levers::BackendError> {
            self.0.plan(l, m).await
        }
        async fn apply(
            &self,
            l: &crate::levers::catalog::Lever,
            m: &Move,
        ) -> Result<(), crate::levers::BackendError> {
            self.0.apply(l, m).await
        }
        async fn revert(
            &self,
            l: &crate::levers::catalog::Lever,
            m: &Move,
        ) -> Result<(), crate::levers::BackendError> {
            self.0.revert(l, m).await
        }
        async fn settings_snapshot(&self) -> Result<String, crate::levers::BackendError> {
            self.0.settings_snapshot().await
        }
        fn files_touched(&self, l: &crate::levers::catalog::Lever) -> Vec<PathBuf> {
            self.0.files_touched(l)
        }
    }
    let drift = Drift(w.backend.clone());
    let cx = Context {
        config: &w.config,
        baseline: None,
        catalog: &w.catalog,
        backend: &drift,
        observer: &obs,
        progress: &Silent,
        landed: &crate::tune::Unheard,
        ledger: w.ledger(),
        locks: w.locks(),
        changelog: w.path("CHANGELOG_TUNING.md"),
        tuning_log: w.path("tuning.log"),
        backups_dir: w.path("backups"),
    };
    let windows = Windows {
        settle: Duration::from_secs(60),
        observe: Duration::from_secs(900),
        interval: Duration::from_secs(15),
        lookback: Duration::ZERO,
    };
    let opts = Options {
        max_cycles: 1,
        windows,
        dry_run: false,
        rule: Rule::default(),
        allow_restart: true,
    };
    let (_keep, mut shutdown) = Shutdown::new();
    Tuner::new(cx, opts).run(&mut shutdown).await.unwrap();
    assert_eq!(
        w.ledger().changes().unwrap()[0].mv.from.as_deref(),
        Some("2GB")
    );
    assert_eq!(
        w.backend.value("max_wal_size").as_deref(),
        Some("2GB"),
        "restored to the live value"
    );
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_before_the_change_changes_nothing() {
    let w = World::new(World::default_backend());
    let (trigger, mut shutdown) = Shutdown::new();
    // Sample 0 is the SLA measurement: interrupt right there, before apply.
    let mut obs = w.observer(|_| metrics(150.0, 100.0));
    obs.interrupt = Some((0, trigger, 1));
    let err = w.tune(&obs, 5, false, &mut shutdown).await.unwrap_err();
    assert!(matches!(err, TuneError::Interrupted), "{err}");
    assert!(w.backend.writes().is_empty());
    assert!(w.ledger().changes().unwrap().is_empty());
}

/// Load drifts up while a useless lever is observed. The next lever must be
/// judged against a window measured after the rollback, not the stale one
/// from before the first change (which would make its 20% cut, 200 → 160,
/// look like a regression from 150). And the two windows of the restored
/// setting differ by the whole step (150 → 200): a cut smaller than that is
/// not told from drift, so it is no effect, never regressed.
#[tokio::test(start_paused = true)]
async fn after_a_rollback_the_next_change_is_judged_against_a_fresh_window() {
    let w = World::new(World::default_backend());
    let start = tokio::time::Instant::now();
    let obs = w.observer(move |l| {
        let drifted = start.elapsed() > Duration::from_secs(16 * 60 + 30);
        let base = if drifted { 200.0 } else { 150.0 };
        let wal = if is(l, "checkpoint_timeout", "15min") {
            base * 0.8
        } else {
            base
        };
        metrics(wal, 100.0)
    });
    let report = w.run(&obs, 2).await;
    let verdicts: Vec<_> = report
        .cycles
        .iter()
        .map(|c| (c.lever.as_str(), c.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("max_wal_size", Some(Verdict::NoEffect)),
            ("checkpoint_timeout", Some(Verdict::NoEffect))
        ]
    );
    let second = report.cycles[1].evidence.clone().unwrap();
    assert!(
        second.starts_with("median 200 → 160")
            && second.contains("noise band ±50 (the drift between two windows before the change)"),
        "{second}"
    );
    let log = std::fs::read_to_string(w.path("tuning.log")).unwrap();
    assert!(log.contains("\"phase\":\"remeasure\""), "{log}");
}
