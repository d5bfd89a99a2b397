//! The cycle and rollback end to end against the fakes, on paused tokio time
//! (a 15-minute observation takes no wall time).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::cycle::{Context, Options, Tuner};
use super::fakes::{FakeBackend, FakeObserver, Levels};
use super::ledger::{Action, Ledger, Status};
use super::observe::{Opening, Windows};
use super::report::{Outcome, RunReport};
use super::rollback::{rollback, Scope};
use super::TuneError;
use crate::config::Config;
use crate::journal::Journal;
use crate::journal::Silent;
use crate::journal::{Locks, Shutdown};
use crate::judge::{Rule, Verdict};
use crate::levers::catalog::Catalog;
use crate::levers::port::Move;

const CONFIG: &str = r#"
prometheus: {url: "http://127.0.0.1:9090"}
postgres: {dsn: "host=x"}
profile: development
metrics:
  wal_rate: {query: "rate(pg_wal_lsn_bytes[1m])", unit: bytes_per_second, window: 5m, symptom: high_wal_rate}
  p95_write_latency: {query: "lat", unit: milliseconds, window: 5m, symptom: high_write_latency}
profiles:
  development:
    wal_rate: "<= 100"
    p95_write_latency: "<= 200ms"
"#;

/// wal_buffers comes first and is labelled low, as in the runbook; the
/// backend will say it needs a restart.
const LEVERS: &str = r#"
levers:
  wal_buffers:
    kind: postgres
    parameter: wal_buffers
    cost: low
    symptoms: [high_wal_rate]
    values: ["16MB"]
  max_wal_size:
    kind: postgres
    parameter: max_wal_size
    cost: low
    symptoms: [high_wal_rate]
    values: ["4GB", "8GB"]
  checkpoint_timeout:
    kind: postgres
    parameter: checkpoint_timeout
    cost: low
    symptoms: [high_wal_rate]
    values: ["15min"]
  shared_buffers:
    kind: postgres
    parameter: shared_buffers
    cost: medium
    symptoms: [high_wal_rate, high_write_latency]
    values: ["1GB"]
"#;

pub(crate) fn is(levels: &Levels, lever: &str, value: &str) -> bool {
    levels.get(lever).cloned().flatten().as_deref() == Some(value)
}

pub(crate) fn metrics(wal: f64, lat: f64) -> BTreeMap<String, Option<f64>> {
    BTreeMap::from([
        ("wal_rate".to_string(), Some(wal)),
        ("p95_write_latency".to_string(), Some(lat)),
    ])
}

pub(crate) struct World {
    dir: tempfile::TempDir,
    pub(crate) config: Config,
    catalog: Catalog,
    pub(crate) backend: Arc<FakeBackend>,
}

impl World {
    pub(crate) fn new(backend: FakeBackend) -> World {
        World::with_levers(backend, LEVERS)
    }

    fn with_levers(backend: FakeBackend, levers: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::load::from_str(&dir.path().join("tuner.yaml"), CONFIG).unwrap();
        let catalog = Catalog::parse(Path::new("levers.yaml"), levers).unwrap();
        World {
            dir,
            config,
            catalog,
            backend: Arc::new(backend),
        }
    }

    pub(crate) fn default_backend() -> FakeBackend {
        let mut b = FakeBackend::with(&[
            ("wal_buffers", "4MB"),
            ("max_wal_size", "1GB"),
            ("checkpoint_timeout", "5min"),
            ("shared_buffers", "128MB"),
        ]);
        b.restart = vec!["wal_buffers".into(), "shared_buffers".into()];
        b.files = vec![PathBuf::from("/nonexistent/.env")];
        b
    }

    /// The default backend, with a database that answers CHECKPOINT.
    fn checkpointing_backend() -> FakeBackend {
        let mut b = World::default_backend();
        b.can_checkpoint = true;
        b
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn locks(&self) -> Locks {
        Locks::new(&self.path(".tuner"), "test")
    }

    pub(crate) fn ledger(&self) -> Ledger {
        Ledger::new(Journal::new(self.path(".tuner/journal.jsonl")))
    }

    pub(crate) fn observer(
        &self,
        model: impl Fn(&Levels) -> BTreeMap<String, Option<f64>> + Send + Sync + 'static,
    ) -> FakeObserver {
        FakeObserver::new(self.backend.clone(), model)
    }

    pub(crate) async fn tune(
        &self,
        observer: &FakeObserver,
        max_cycles: u32,
        dry_run: bool,
        shutdown: &mut Shutdown,
    ) -> Result<RunReport, TuneError> {
        let cx = Context {
            config: &self.config,
            baseline: None,
            catalog: &self.catalog,
            backend: self.backend.as_ref(),
            observer,
            progress: &Silent,
            ledger: self.ledger(),
            locks: self.locks(),
            changelog: self.path("CHANGELOG_TUNING.md"),
            tuning_log: self.path("tuning.log"),
            backups_dir: self.path("backups"),
        };
        let opts = Options {
            max_cycles,
            windows: Windows {
                settle: Duration::from_secs(60),
                observe: Duration::from_secs(15 * 60),
                interval: Duration::from_secs(15),
                lookback: super::cycle::wal_lookback(&self.config),
            },
            dry_run,
            rule: Rule::default(),
        };
        Tuner::new(cx, opts).run(shutdown).await
    }

    pub(crate) async fn run(&self, observer: &FakeObserver, max_cycles: u32) -> RunReport {
        let (_keep, mut shutdown) = Shutdown::new();
        self.tune(observer, max_cycles, false, &mut shutdown)
            .await
            .unwrap()
    }

    fn changelog(&self) -> String {
        std::fs::read_to_string(self.path("CHANGELOG_TUNING.md")).unwrap_or_default()
    }
}

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
        log.contains("* Result: ↩️ rolled back (no_effect): wal_rate within its noise band\n"),
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
    assert_eq!(
        w.ledger().changes().unwrap()[0].status(),
        Status::RolledBack
    );
}

/// A run wrote its intent, the backend applied, then the process died.
fn crashed_after_intent(w: &World) {
    let lever = w.catalog.get("max_wal_size").unwrap().clone();
    let mv = Move {
        from: Some("1GB".into()),
        to: Some("4GB".into()),
    };
    w.ledger()
        .intent("crashed-1", Action::Apply, &lever, &mv)
        .unwrap();
    w.backend
        .values
        .lock()
        .unwrap()
        .insert("max_wal_size".into(), Some("4GB".into()));
}

#[tokio::test(start_paused = true)]
async fn a_run_after_a_crash_restores_the_open_change_before_its_first_cycle() {
    let w = World::new(World::default_backend());
    crashed_after_intent(&w);
    let obs = w.observer(|l| {
        if is(l, "max_wal_size", "4GB") {
            metrics(60.0, 100.0)
        } else {
            metrics(150.0, 100.0)
        }
    });
    let report = w.run(&obs, 5).await;
    assert_eq!(report.recovered.len(), 1, "{report:?}");
    assert_eq!(report.recovered[0].change_id, "crashed-1");
    // Restored first, then tuned afresh and judged on its own windows.
    let writes = w.backend.writes();
    assert_eq!(writes[0], "revert max_wal_size 4GB->1GB", "{writes:?}");
    assert_eq!(writes[1], "apply max_wal_size 1GB->4GB", "{writes:?}");
    assert_eq!(report.outcome, Outcome::SlaMet);
    let changes = w.ledger().changes().unwrap();
    assert_eq!(changes[0].status(), Status::RolledBack);
    assert_eq!(changes[1].status(), Status::Kept);
    assert!(std::fs::read_to_string(w.path("CHANGELOG_TUNING.md"))
        .unwrap()
        .contains("restored before tuning again"));
}

#[tokio::test(start_paused = true)]
async fn crash_after_intent_is_named_by_a_dry_run_then_rolled_back_once() {
    let w = World::new(World::default_backend());
    crashed_after_intent(&w);
    let obs = w.observer(|_| metrics(150.0, 100.0));
    let (_keep, mut shutdown) = Shutdown::new();
    let err = w.tune(&obs, 5, true, &mut shutdown).await.unwrap_err();
    assert!(matches!(err, TuneError::Unfinished(_)), "{err}");
    assert!(
        err.to_string().contains("crashed-1") && err.to_string().contains("tuner rollback"),
        "{err}"
    );
    assert!(w.backend.writes().is_empty());

    let changelog = w.path("CHANGELOG_TUNING.md");
    let dry = rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        true,
    )
    .await
    .unwrap();
    assert_eq!(dry.undone.len(), 1);
    assert!(w.backend.writes().is_empty(), "dry run changed something");

    let first = rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    assert_eq!(first.undone.len(), 1);
    assert_eq!(first.undone[0].was, Status::Unfinished);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
    let second = rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    assert!(second.undone.is_empty());
    assert_eq!(second.message, "nothing to roll back");
    assert_eq!(w.backend.writes(), ["revert max_wal_size 4GB->1GB"]);
    assert!(std::fs::read_to_string(&changelog)
        .unwrap()
        .contains("unfinished change from an interrupted run"));
}

#[tokio::test(start_paused = true)]
async fn rollback_last_to_and_all_undo_kept_changes_newest_first() {
    let w = World::new(World::default_backend());
    // Each step helps a little, never enough: three kept changes.
    let obs = w.observer(|l| {
        let mut wal = 400.0;
        if is(l, "max_wal_size", "4GB") {
            wal = 300.0;
        }
        if is(l, "max_wal_size", "8GB") {
            wal = 250.0;
        }
        if is(l, "checkpoint_timeout", "15min") {
            wal -= 100.0;
        }
        metrics(wal, 100.0)
    });
    let report = w.run(&obs, 3).await;
    let kept: Vec<_> = report
        .cycles
        .iter()
        .filter(|c| c.kept)
        .map(|c| c.assignment.clone())
        .collect();
    assert_eq!(
        kept,
        [
            "max_wal_size=4GB",
            "max_wal_size=8GB",
            "checkpoint_timeout=15min"
        ]
    );
    let ids: Vec<String> = report.cycles.iter().map(|c| c.change_id.clone()).collect();
    let changelog = w.path("CHANGELOG_TUNING.md");
    let ledger = w.ledger();

    let last = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    assert_eq!(last.undone[0].change_id, ids[2]);
    assert_eq!(
        w.backend.value("checkpoint_timeout").as_deref(),
        Some("5min")
    );

    let to = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::To(ids[1].clone()),
        false,
    )
    .await
    .unwrap();
    assert_eq!(to.undone.len(), 1);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("4GB"));

    let all = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::All,
        false,
    )
    .await
    .unwrap();
    assert_eq!(all.undone.len(), 1);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
    let again = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::All,
        false,
    )
    .await
    .unwrap();
    assert!(again.undone.is_empty());
    let unknown = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::To("nope".into()),
        false,
    )
    .await
    .unwrap_err();
    assert!(unknown.is_usage());
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
async fn second_interrupt_aborts_the_rollback_and_leaves_it_to_tuner_rollback() {
    let w = World::new(World::default_backend());
    let (trigger, mut shutdown) = Shutdown::new();
    let mut obs = w.observer(|_| metrics(150.0, 100.0));
    obs.interrupt = Some((3, trigger, 2));
    let err = w.tune(&obs, 5, false, &mut shutdown).await.unwrap_err();
    assert!(matches!(err, TuneError::Aborted { .. }), "{err}");
    assert!(err.to_string().contains("tuner rollback"), "{err}");
    // The change is still applied and open in the journal...
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("4GB"));
    assert_eq!(
        w.ledger().changes().unwrap()[0].status(),
        Status::Unfinished
    );
    // ...and `tuner rollback` restores it.
    let changelog = w.path("CHANGELOG_TUNING.md");
    rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
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

#[tokio::test(start_paused = true)]
async fn rollback_notes_a_lever_changed_by_hand_and_restores_anyway() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|l| {
        if is(l, "max_wal_size", "4GB") {
            metrics(300.0, 100.0)
        } else {
            metrics(400.0, 100.0)
        }
    });
    let report = w.run(&obs, 1).await;
    assert!(report.cycles[0].kept);
    w.backend
        .values
        .lock()
        .unwrap()
        .insert("max_wal_size".into(), Some("6GB".into()));
    let changelog = w.path("CHANGELOG_TUNING.md");
    let out = rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    let note = out.undone[0].drift.clone().unwrap();
    assert!(
        note.contains("6GB") && note.contains("restoring 1GB"),
        "{note}"
    );
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
}

/// Load drifts up while a useless lever is observed. The next lever must be
/// judged against a window measured after the rollback, not the stale one
/// from before the first change (which would make a real improvement look
/// like a regression).
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
            ("checkpoint_timeout", Some(Verdict::Improved))
        ]
    );
    let log = std::fs::read_to_string(w.path("tuning.log")).unwrap();
    assert!(log.contains("\"phase\":\"remeasure\""), "{log}");
}

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

    // A CHECKPOINT opens the before-window, each after-window, the fresh
    // before-window after a kept change, and the re-measurement after a
    // rollback.
    assert_eq!(
        checkpoints_and_writes(&w.backend),
        [
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
        } else if checkpoints == 2 {
            // 4GB's after-window: the second CHECKPOINT opened it.
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
    use super::ports::Observer;
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
) -> super::observe::Observation {
    super::observe::observe(
        obs,
        windows,
        opening,
        &Default::default(),
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
    let lookback = super::cycle::wal_lookback(&w.config);
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
    let work = observation.work.expect("transactions counted");
    assert_eq!(work.first(), Some(&7500.0));
    assert_eq!(work.last(), Some(&21000.0));
    assert_eq!(
        w.backend
            .checkpoints
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // settle, then the lookback after the CHECKPOINT, then 10 intervals.
    assert_eq!(started.elapsed(), Duration::from_secs(20 + 60 + 150));

    // Without a CHECKPOINT there is no boundary to wait out.
    let started = tokio::time::Instant::now();
    let observation = watch(&obs, &windows, Opening::Plain, &mut shutdown).await;
    assert_eq!(started.elapsed(), Duration::from_secs(20 + 150));
    assert_eq!(observation.work, None, "no CHECKPOINT, nothing counted");
}
