//! Fixtures for the closed-loop `tuner tune` tests: a monitoring chain whose
//! PostgreSQL gets extra postgresql.conf lines (the shared `Monitoring`
//! starts a stock one), a paced write load that dirties many distinct pages,
//! a tuner.yaml with short windows, and helpers to run the binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::postgres::PgServer;

/// PostgreSQL (with extra postgresql.conf lines) + postgres-exporter +
/// Prometheus scraping every second: the shared monitoring chain.
pub type Stack = super::prometheus::Monitoring;

/// The table the load updates: `rows` rows of compressible payload, so an
/// 8 kB full-page image shrinks a lot under `wal_compression`.
pub fn create_churn_table(pg: &PgServer, rows: u32) {
    pg.psql("DROP TABLE IF EXISTS churn");
    pg.psql(
        "CREATE TABLE churn(id int PRIMARY KEY, n int NOT NULL DEFAULT 0, payload text NOT NULL)",
    );
    pg.psql(&format!(
        "INSERT INTO churn(id, payload) SELECT g, repeat('x', 150) FROM generate_series(1, {rows}) g"
    ));
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub dsn: String,
    /// Ids are drawn from 1..=rows.
    pub rows: u32,
    pub workers: usize,
    /// Transactions per second per worker (paced, never bursting to catch
    /// up), so the WAL rate depends on the settings, not on spare CPU.
    pub tps_per_worker: u32,
    pub rows_per_txn: usize,
    /// Hard bound on the load's life, even if the test forgets to stop it.
    pub max_duration: Duration,
}

/// A paced random-update load on `churn` through tokio-postgres, on its own
/// thread and runtime. Stops when dropped, at `max_duration`, or after
/// `max_duration × rate` transactions, whichever comes first. A lost
/// connection (a restart) is retried every 200 ms within the same bounds.
pub struct WriteLoad {
    stop: Arc<AtomicBool>,
    pub committed: Arc<AtomicU64>,
    pub errors: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriteLoad {
    pub fn start(spec: LoadSpec) -> WriteLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let (s, c, e) = (stop.clone(), committed.clone(), errors.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("load runtime");
            rt.block_on(async move {
                let deadline = tokio::time::Instant::now() + spec.max_duration;
                let max_txns =
                    spec.max_duration.as_secs().max(1) * spec.tps_per_worker.max(1) as u64;
                let mut tasks = Vec::new();
                for w in 0..spec.workers {
                    let (spec, s, c, e) = (spec.clone(), s.clone(), c.clone(), e.clone());
                    tasks.push(tokio::spawn(async move {
                        worker(w as u64, spec, deadline, max_txns, s, c, e).await
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        });
        WriteLoad {
            stop,
            committed,
            errors,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WriteLoad {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn worker(
    seed: u64,
    spec: LoadSpec,
    deadline: tokio::time::Instant,
    max_txns: u64,
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
) {
    // xorshift64*: deterministic, dependency-free, good enough to spread ids.
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (seed + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let period = Duration::from_secs_f64(1.0 / spec.tps_per_worker.max(1) as f64);
    let mut done = 0u64;
    while !stop.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline && done < max_txns
    {
        let client = match tokio_postgres::connect(&spec.dsn, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                client
            }
            Err(_) => {
                errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Ok(update) = client
            .prepare("UPDATE churn SET n = n + 1 WHERE id = ANY($1)")
            .await
        else {
            errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::SeqCst)
            && tokio::time::Instant::now() < deadline
            && done < max_txns
        {
            ticker.tick().await;
            let ids: Vec<i32> = (0..spec.rows_per_txn)
                .map(|_| (next() % spec.rows as u64) as i32 + 1)
                .collect();
            done += 1;
            match client.execute(&update, &[&ids]).await {
                Ok(_) => {
                    committed.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break; // reconnect
                }
            }
        }
    }
}

/// Metric definitions for the tune tests. `rate()` over 5 s of 1 s scrapes
/// follows a change within the settle time.
pub const METRICS: &str = r#"metrics:
  wal_rate:
    query: sum(rate(pg_wal_lsn_bytes[5s]))
    unit: bytes_per_second
    window: 30s
    symptom: high_wal_rate
  xact_rate:
    query: sum(rate(pg_stat_database_xact_commit{datname="postgres"}[5s]))
    unit: ratio
    window: 30s
    direction: higher_is_better
"#;

/// A metric that is always violated and needs no load: for tests about
/// the mechanics (crash, lock, bad input), not about judging.
pub const CONSTANT_METRICS: &str = r#"metrics:
  wal_rate:
    query: vector(5000)
    unit: bytes_per_second
    window: 30s
    symptom: high_wal_rate
"#;

pub struct TuneConfig<'a> {
    pub prometheus_url: &'a str,
    pub dsn: &'a str,
    pub metrics: &'a str,
    /// Lines under `profiles.test:`, 4-space indented.
    pub objectives: &'a str,
    /// The whole levers.yaml.
    pub levers: &'a str,
    pub observe: &'a str,
    pub settle: &'a str,
    /// Extra lines appended under `tune:` (2-space indented).
    pub tune_extra: &'a str,
}

/// Writes tuner.yaml and levers.yaml into `dir`; returns tuner.yaml's path.
pub fn write_config(dir: &Path, c: &TuneConfig) -> PathBuf {
    std::fs::write(dir.join("levers.yaml"), c.levers).expect("write levers.yaml");
    let text = format!(
        "prometheus:\n  url: {}\n  timeout: 3s\npostgres:\n  dsn: {}\nprofile: test\npaths:\n  baseline: baseline.yaml\n  levers: levers.yaml\n{}profiles:\n  test:\n{}\ntune:\n  observe: {}\n  settle: {}\n  sample_interval: 1s\n  command_timeout: 30s\n  recreate: [\"true\"]\n{}",
        c.prometheus_url, c.dsn, c.metrics, c.objectives, c.observe, c.settle, c.tune_extra
    );
    let path = dir.join("tuner.yaml");
    std::fs::write(&path, text).expect("write tuner.yaml");
    path
}

fn command(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(super::tuner_bin());
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TUNER_PG_DSN")
        .env_remove("TUNER_TUNE_CRASH_AT")
        .env_remove("DOCKER_HOST")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the binary to completion, killing it after `limit` (a hung run is a
/// test failure, not a hung CI job).
pub fn tuner(config: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let child = command(config, args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tuner");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for tuner"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("tuner {args:?} did not finish within {limit:?}");
        }
    }
}

/// Starts the binary in the background, output to files in `dir`.
pub fn spawn_tuner(dir: &Path, config: &Path, args: &[&str], tag: &str) -> Child {
    command(config, args, &[])
        .stdout(std::fs::File::create(dir.join(format!("{tag}.out"))).expect("out"))
        .stderr(std::fs::File::create(dir.join(format!("{tag}.err"))).expect("err"))
        .spawn()
        .expect("spawn tuner")
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `tuner rollback` with nothing left to undo: exit 0 and says so.
pub fn assert_nothing_to_roll_back(config: &Path, limit: Duration) {
    let out = tuner(config, &["rollback"], &[], limit);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to roll back"),
        "{}",
        text(&out)
    );
}

/// tuning.log's JSON lines.
pub fn tuning_log(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("tuning.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until `check` holds or `timeout` passes.
pub fn wait_for(timeout: Duration, check: impl FnMut() -> bool) -> bool {
    super::wait_until(timeout, check)
}

pub fn elapsed(start: Instant) -> String {
    format!("{:.1}s", start.elapsed().as_secs_f64())
}
