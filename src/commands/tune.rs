//! `tuner tune`: wiring only. Turns flags and config into the cycle's
//! options, takes the run lock, and renders the report. The caller passes
//! the real lever backend (postgres + docker adapters) and metrics client.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::textfile;
use crate::cli::{OutputFormat, TuneArgs};
use crate::config::units::{format_duration, parse_duration_within, Limit};
use crate::config::Config;
use crate::exit::UsageError;
use crate::journal::{Journal, Locks, Target};
use crate::judge::Rule;
use crate::levers::backends::{CommandLevers, EnvLevers, Router};
use crate::levers::{Catalog, LeverBackend};
use crate::metrics::{Baseline, Metrics};
use crate::output::tune as render;
use crate::tune::ledger::Ledger;
use crate::tune::prometheus::MetricsObserver;
use crate::tune::{Context, Options, Shutdown, TuneError, Tuner, Windows};

/// The lever backend for both `tune` and `rollback`: the real postgres and
/// container adapters (or `None` to skip those levers) plus the env-file and
/// command backends, which need only config.
pub fn levers(
    config: &Config,
    postgres: Option<Arc<dyn LeverBackend>>,
    container: Option<Arc<dyn LeverBackend>>,
) -> Router {
    let tune = config.tune.clone().unwrap_or_default();
    let project_dir = config.compose.as_ref().map(|c| c.project_dir.clone());
    let env = EnvLevers {
        default_file: config.compose.as_ref().and_then(|c| c.env_file.clone()),
        project_dir: project_dir.clone(),
        recreate: tune.recreate.clone().unwrap_or_else(|| {
            crate::runtime::compose_cmd::get().with_args(&["up", "-d", "--no-deps", "{service}"])
        }),
        timeout: tune.command_timeout,
    };
    let command = CommandLevers {
        kept: Arc::new(Ledger::new(Journal::new(journal_path(config)))),
        dir: project_dir,
        timeout: tune.command_timeout,
        compose: crate::runtime::compose_cmd::get().argv().to_vec(),
    };
    Router {
        postgres,
        container,
        env: Some(Arc::new(env)),
        command: Some(Arc::new(command)),
    }
}

/// Where the one journal lives.
pub fn journal_path(config: &Config) -> std::path::PathBuf {
    config.paths.state_dir.join(crate::journal::FILE)
}

/// The locks by target of this state directory, held in the name of `command`.
pub fn locks(config: &Config, command: &str) -> Locks {
    Locks::new(&config.paths.state_dir, command)
}

/// A usage error (exit 2) for the user's mistakes, a runtime failure otherwise.
pub fn to_anyhow(error: TuneError) -> anyhow::Error {
    if error.is_usage() {
        anyhow::Error::new(UsageError(error.to_string()))
    } else {
        anyhow::Error::new(error)
    }
}

/// Flags override `tune:` in tuner.yaml, which overrides the defaults.
pub fn windows(config: &Config, args: &TuneArgs) -> Result<Windows, UsageError> {
    let base = config.tune.clone().unwrap_or_default();
    let parse = |flag: &str, v: &Option<String>, default: Duration| match v {
        Some(s) => parse_duration_within(s, Limit::Window)
            .map_err(|e| UsageError(format!("--{flag}: {e}"))),
        None => Ok(default),
    };
    let observe = parse("observe", &args.observe, base.observe)?;
    let settle = parse("settle", &args.settle, base.settle)?;
    // The judge needs more than 8 samples per window; fewer would roll back
    // every change as no_data, so refuse up front.
    let min = Rule::default().min_samples as u32;
    let shortest = base.sample_interval.saturating_mul(min);
    if base.sample_interval.is_zero() || observe < shortest {
        return Err(UsageError(format!(
            "--observe {} holds fewer than {min} samples at tune.sample_interval {}; observe for at least {}",
            format_duration(observe),
            format_duration(base.sample_interval),
            format_duration(shortest)
        )));
    }
    if args.max_cycles == 0 {
        return Err(UsageError("--max-cycles must be at least 1".into()));
    }
    Ok(Windows {
        settle,
        observe,
        interval: base.sample_interval,
        lookback: crate::tune::cycle::wal_lookback(config),
    })
}

pub fn load_catalog(config: &Config) -> anyhow::Result<Catalog> {
    Catalog::load(&config.paths.levers).map_err(|problems| to_anyhow(TuneError::Catalog(problems)))
}

/// Runs `tuner tune` against the given backends; returns the exit code.
pub async fn run(
    config: &Config,
    output: OutputFormat,
    args: &TuneArgs,
    levers: &dyn LeverBackend,
    metrics: &dyn Metrics,
    mut shutdown: Shutdown,
) -> anyhow::Result<u8> {
    let windows = windows(config, args)?;
    let catalog = load_catalog(config)?;
    let baseline = Baseline::load(&config.paths.baseline).map_err(UsageError)?;
    let allow_restart = super::consent::restart(config, args, &catalog, levers).await;
    // A dry run changes nothing, so it need not exclude a running tune.
    let locks = locks(config, "tuner tune");
    let _lock = if args.dry_run {
        None
    } else {
        Some(
            locks
                .acquire(&Target::Tuning, "a tuning run")
                .context("cannot start tuning")?,
        )
    };
    let observer = MetricsObserver::new(metrics, config);
    let events = crate::output::progress::for_format(output);
    // tuner's own metrics: written at the start, after each judged change
    // and at the end, when a textfile folder is configured. A dry run
    // writes nothing.
    let metrics_out = if !args.dry_run && config.textfile_dir().is_some() {
        let values = textfile::read_settings(&catalog, levers).await;
        textfile::tune(config, &catalog, &values);
        Some(textfile::AfterEachCycle::new(
            events.as_ref(),
            config,
            &catalog,
            values,
        ))
    } else {
        None
    };
    let progress: &dyn crate::journal::Events = match &metrics_out {
        Some(m) => m,
        None => events.as_ref(),
    };
    // Each change is announced as it lands; a dry run changes nothing.
    let queue = if args.dry_run {
        crate::notify::Queue::none()
    } else {
        crate::notify::Queue::start(config)
    };
    let landed = super::announce::TuneNotices {
        config,
        queue: &queue,
    };
    let cx = Context {
        config,
        baseline: baseline.as_ref(),
        catalog: &catalog,
        backend: levers,
        observer: &observer,
        progress,
        landed: &landed,
        ledger: Ledger::new(Journal::new(journal_path(config))),
        locks,
        changelog: config.paths.changelog.clone(),
        tuning_log: config.paths.tuning_log.clone(),
        backups_dir: config.paths.backups_dir.clone(),
    };
    let opts = Options {
        max_cycles: args.max_cycles,
        windows,
        dry_run: args.dry_run,
        rule: Rule {
            guard_margin: config.tune.clone().unwrap_or_default().guard_margin,
            ..Rule::default()
        },
        allow_restart,
    };
    let result = Tuner::new(cx, opts).run(&mut shutdown).await;
    // Posted even when the run failed later: those changes did land.
    queue.finish().await;
    let report = result.map_err(to_anyhow)?;
    if metrics_out.is_some() {
        let values = textfile::read_settings(&catalog, levers).await;
        textfile::tune(config, &catalog, &values);
        if let Some(sla) = &report.sla {
            textfile::sla(config, sla);
        }
    }
    match output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Table => crate::output::emit_raw(&render::run_human(config, &report))?,
    }
    Ok(crate::exit::for_tune(&report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Alert, MetricsError, Point};
    use crate::tune::fakes::FakeBackend;
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    /// WAL stuck at 150 B/s against a 100 B/s objective, whatever is done.
    struct StuckMetrics;

    #[async_trait]
    impl Metrics for StuckMetrics {
        async fn instant(&self, _: &str, _: &str) -> Result<Option<f64>, MetricsError> {
            Ok(Some(150.0))
        }
        async fn range(
            &self,
            _: &str,
            _: &str,
            start: DateTime<Utc>,
            end: DateTime<Utc>,
            step: Duration,
        ) -> Result<Vec<Point>, MetricsError> {
            let step = chrono::Duration::from_std(step).unwrap_or(chrono::Duration::seconds(15));
            let mut at = start;
            let mut out = Vec::new();
            let mut i = 0;
            while at <= end {
                out.push(Point {
                    at,
                    value: 150.0 + (i % 5) as f64,
                });
                at += step;
                i += 1;
            }
            Ok(out)
        }
        async fn alerts(&self) -> Result<Vec<Alert>, MetricsError> {
            Ok(Vec::new())
        }
    }

    fn setup() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "prometheus: {url: \"http://127.0.0.1:9090\"}\npostgres: {dsn: \"host=x\"}\nprofile: d\nmetrics:\n  wal_rate: {query: q, unit: bytes_per_second, window: 1m, symptom: high_wal_rate}\nprofiles:\n  d: {wal_rate: \"<= 100\"}\ntune: {observe: 3m, settle: 15s, sample_interval: 15s}\n";
        let levers = "levers:\n  max_wal_size:\n    kind: postgres\n    parameter: max_wal_size\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"4GB\"]\n";
        std::fs::write(dir.path().join("tuner.yaml"), yaml).unwrap();
        std::fs::write(dir.path().join("levers.yaml"), levers).unwrap();
        let config = crate::config::load(Some(&dir.path().join("tuner.yaml"))).unwrap();
        (dir, config)
    }

    fn args(dry_run: bool) -> TuneArgs {
        TuneArgs {
            max_cycles: 1,
            observe: None,
            settle: None,
            dry_run,
            yes: true,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn dry_run_changes_nothing_and_exits_as_status_would() {
        let (dir, config) = setup();
        let backend = FakeBackend::with(&[("max_wal_size", "1GB")]);
        let (_t, shutdown) = Shutdown::new();
        let code = run(
            &config,
            OutputFormat::Json,
            &args(true),
            &backend,
            &StuckMetrics,
            shutdown,
        )
        .await
        .unwrap();
        // WAL at 150 against <= 100: the reading is violated, so exit 3.
        assert_eq!(code, crate::exit::SLA_VIOLATED);
        assert!(backend.writes().is_empty());
        assert!(!dir.path().join(".tuner").exists());
    }

    #[tokio::test(start_paused = true)]
    async fn real_run_exits_3_when_still_violated_and_is_locked_against_a_second() {
        let (dir, config) = setup();
        let backend = FakeBackend::with(&[("max_wal_size", "1GB")]);
        {
            let _held = locks(&config, "test")
                .acquire(&Target::Tuning, "holding")
                .unwrap();
            let (_t, shutdown) = Shutdown::new();
            let err = run(
                &config,
                OutputFormat::Table,
                &args(false),
                &backend,
                &StuckMetrics,
                shutdown,
            )
            .await
            .unwrap_err();
            assert!(format!("{err:#}").contains("locked by PID"), "{err:#}");
        }
        let (_t, shutdown) = Shutdown::new();
        let code = run(
            &config,
            OutputFormat::Table,
            &args(false),
            &backend,
            &StuckMetrics,
            shutdown,
        )
        .await
        .unwrap();
        assert_eq!(code, crate::exit::SLA_VIOLATED);
        assert_eq!(
            backend.writes(),
            [
                "apply max_wal_size 1GB->4GB",
                "revert max_wal_size 4GB->1GB"
            ]
        );
        assert!(dir.path().join("CHANGELOG_TUNING.md").exists());
        let log = std::fs::read_to_string(dir.path().join("tuning.log")).unwrap();
        let observed = log
            .lines()
            .filter(|l| l.contains("\"phase\":\"observe\""))
            .count();
        assert_eq!(observed, 12);
    }

    #[tokio::test(start_paused = true)]
    async fn a_real_run_writes_its_metrics_for_the_textfile_collector() {
        let (dir, mut config) = setup();
        config.metrics_textfile_dir = Some(dir.path().join("textfile"));
        let backend = FakeBackend::with(&[("max_wal_size", "1GB")]);
        let (_t, shutdown) = Shutdown::new();
        run(
            &config,
            OutputFormat::Json,
            &args(false),
            &backend,
            &StuckMetrics,
            shutdown,
        )
        .await
        .unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.path().join("textfile").join(f)).unwrap();
        let tune = read("tuner_tune.prom");
        assert!(
            tune.contains(
                "tuner_tune_changes_total{lever=\"max_wal_size\",verdict=\"no_effect\"} 1"
            ),
            "{tune}"
        );
        // Rolled back: the setting is back at its old value.
        assert!(
            tune.contains(
                "tuner_setting_value{lever=\"max_wal_size\",setting=\"max_wal_size\"} 1073741824"
            ),
            "{tune}"
        );
        let sla = read("tuner_sla.prom");
        assert!(
            sla.contains(
                "tuner_objective_state{profile=\"d\",metric=\"wal_rate\",state=\"violated\"} 1"
            ),
            "{sla}"
        );
        assert!(read("tuner_info.prom").contains("tuner_info{version="));
    }

    #[tokio::test]
    async fn router_serves_env_and_command_levers_and_rejects_unwired_kinds() {
        let (dir, mut config) = setup();
        config.compose = Some(crate::config::ComposeConfig {
            project_dir: dir.path().to_path_buf(),
            project: "demo".into(),
            env_file: Some(dir.path().join(".env")),
            command: None,
        });
        std::fs::write(dir.path().join(".env"), "BATCH_SIZE=100\n").unwrap();
        let router = levers(&config, None, None);
        let catalog = Catalog::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/levers.yaml"),
        )
        .unwrap();
        let batch = catalog.get("app_batch_size").unwrap();
        assert_eq!(router.current(batch).await.unwrap().as_deref(), Some("100"));
        let pg = catalog.get("max_wal_size").unwrap();
        assert!(matches!(
            router.current(pg).await,
            Err(crate::levers::BackendError::Rejected { .. })
        ));
    }

    #[test]
    fn flags_override_config_and_bad_values_are_usage_errors() {
        let (_dir, config) = setup();
        let w = windows(
            &config,
            &TuneArgs {
                max_cycles: 5,
                observe: Some("15m".into()),
                settle: None,
                dry_run: false,
                yes: false,
            },
        )
        .unwrap();
        assert_eq!(w.observe, Duration::from_secs(900));
        assert_eq!(w.settle, Duration::from_secs(15));
        assert!(windows(
            &config,
            &TuneArgs {
                max_cycles: 5,
                observe: Some("15".into()),
                settle: None,
                dry_run: false,
                yes: false,
            }
        )
        .is_err());
        let short = windows(
            &config,
            &TuneArgs {
                max_cycles: 5,
                observe: Some("1m".into()),
                settle: None,
                dry_run: false,
                yes: false,
            },
        )
        .unwrap_err();
        assert!(short.0.contains("at least 2m15s"), "{}", short.0);
        let mut bad = config.clone();
        bad.paths.levers = bad.paths.levers.with_file_name("missing.yaml");
        let err = load_catalog(&bad).unwrap_err();
        assert_eq!(crate::commands::code_for(&err), crate::exit::USAGE);
    }
}
