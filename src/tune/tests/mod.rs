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
    /// Every event the run reported.
    pub(crate) events: crate::journal::Recorded,
    /// Every change the run said had landed.
    pub(crate) heard: Heard,
}

/// Each landed change as `(lever, kept, backend writes so far)`: the count
/// shows when it was heard, before or after the next change began.
pub(crate) struct Heard {
    backend: Arc<FakeBackend>,
    log: std::sync::Mutex<Vec<(String, bool, usize)>>,
}

impl Heard {
    pub(crate) fn log(&self) -> Vec<(String, bool, usize)> {
        self.log.lock().unwrap().clone()
    }
}

impl super::Landed for Heard {
    fn landed(&self, change: &super::CycleReport) {
        let writes = self.backend.writes().len();
        self.log
            .lock()
            .unwrap()
            .push((change.lever.clone(), change.kept, writes));
    }
}

impl World {
    pub(crate) fn new(backend: FakeBackend) -> World {
        World::with_levers(backend, LEVERS)
    }

    fn with_levers(backend: FakeBackend, levers: &str) -> World {
        World::with_config(backend, CONFIG, levers)
    }

    fn with_config(backend: FakeBackend, config: &str, levers: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::load::from_str(&dir.path().join("tuner.yaml"), config).unwrap();
        let catalog = Catalog::parse(Path::new("levers.yaml"), levers).unwrap();
        let backend = Arc::new(backend);
        World {
            dir,
            config,
            catalog,
            heard: Heard {
                backend: backend.clone(),
                log: Default::default(),
            },
            backend,
            events: Default::default(),
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
        self.tune_with(observer, max_cycles, dry_run, true, shutdown)
            .await
    }

    /// `tune` with restart levers allowed or not.
    pub(crate) async fn tune_with(
        &self,
        observer: &FakeObserver,
        max_cycles: u32,
        dry_run: bool,
        allow_restart: bool,
        shutdown: &mut Shutdown,
    ) -> Result<RunReport, TuneError> {
        let cx = Context {
            config: &self.config,
            baseline: None,
            catalog: &self.catalog,
            backend: self.backend.as_ref(),
            observer,
            progress: &self.events,
            landed: &self.heard,
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
            allow_restart,
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

mod consent;
mod cycle;
mod progress;
mod recovery;
pub(crate) mod throughput;
mod unmeasured;
mod wal;
