//! A restart-only PostgreSQL setting through the Docker restarter, with the
//! run killed (the crash hook aborts like `kill -9`) just before the
//! container is restarted and just after it came back on the new value:
//! `tuner rollback` must leave `postgresql.auto.conf` byte-identical inside
//! the container and the server running on the old value.

use std::time::{Duration, Instant};

use crate::support;
use crate::support::docker::docker;
use crate::support::tune::{
    assert_nothing_to_roll_back, text, tuner, write_config, Stack, TuneConfig, CONSTANT_METRICS,
};

const RUN_LIMIT: Duration = Duration::from_secs(180);
const AUTO_CONF: &str = "/var/lib/postgresql/data/postgresql.auto.conf";
const PASSWORD: &str = "tuner-restart-crash";

/// A PostgreSQL container of the demo's image, removed even when the test
/// fails.
struct PgContainer {
    name: String,
    port: u16,
}

impl PgContainer {
    fn start() -> PgContainer {
        support::compose::ensure_images();
        let port = support::free_publish_port();
        let name = format!("tuner-test-pg-crash-{}-{port}", std::process::id());
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-e",
            &format!("POSTGRES_PASSWORD={PASSWORD}"),
            "-p",
            &format!("127.0.0.1:{port}:5432"),
            "local/postgres:15",
        ]);
        let pg = PgContainer { name, port };
        let up = support::wait_until(Duration::from_secs(90), || pg.show("wal_buffers").is_some());
        assert!(up, "PostgreSQL in {} did not start", pg.name);
        pg
    }

    fn dsn(&self) -> String {
        format!(
            "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// `SHOW name` over the published port; None while it is down.
    fn show(&self, setting: &str) -> Option<String> {
        let out = std::process::Command::new("psql")
            .args([&self.dsn(), "-Atc"])
            .arg(format!("SHOW {setting}"))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn auto_conf(&self) -> Vec<u8> {
        let out = std::process::Command::new("docker")
            .args(["exec", &self.name, "cat", AUTO_CONF])
            .output()
            .expect("docker exec cat");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for PgContainer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

#[test]
fn a_crash_around_a_docker_restart_is_undone_by_rollback_byte_for_byte() {
    let stack = Stack::start_with(&[]);
    let pg = PgContainer::start();
    let auto_before = pg.auto_conf();
    let wal_buffers_before = pg.show("wal_buffers").expect("wal_buffers");
    assert_ne!(wal_buffers_before, "2MB", "the lever must change something");

    let levers = "levers:\n  wal_buffers:\n    kind: postgres\n    parameter: wal_buffers\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"2MB\"]\n";
    let restarter = format!(
        "  restarter:\n    container: {}\n    timeout: 90s\n  allow_restart: true\n",
        pg.name
    );
    // (crash point, what must be visibly changed right after the crash)
    type Changed = fn(&PgContainer) -> bool;
    let scenarios: [(&str, Changed); 2] = [
        // ALTER SYSTEM wrote the file; the server still runs the old value.
        ("restart", |pg| {
            String::from_utf8_lossy(&pg.auto_conf()).contains("wal_buffers")
        }),
        // The container came back on the new value.
        ("restarted", |pg| {
            pg.show("wal_buffers").as_deref() == Some("2MB")
        }),
    ];
    for (point, changed) in scenarios {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            &TuneConfig {
                prometheus_url: &stack.prometheus_url,
                dsn: &pg.dsn(),
                metrics: CONSTANT_METRICS,
                objectives: "    wal_rate: \"<= 1000\"",
                levers,
                observe: "10s",
                settle: "1s",
                tune_extra: &restarter,
            },
        );
        let out = tuner(
            &config,
            &["tune", "--max-cycles", "1"],
            &[("TUNER_TUNE_CRASH_AT", point)],
            RUN_LIMIT,
        );
        assert!(
            out.status.code().is_none()
                && String::from_utf8_lossy(&out.stderr).contains("aborting as asked"),
            "{point}: {}",
            text(&out)
        );
        assert!(
            support::wait_until(Duration::from_secs(60), || changed(&pg)),
            "{point}: the crash left nothing changed, so the test proves nothing: {}",
            text(&out)
        );

        let rollback = tuner(&config, &["rollback"], &[], RUN_LIMIT);
        assert_eq!(
            rollback.status.code(),
            Some(0),
            "{point}: {}",
            text(&rollback)
        );
        assert!(
            String::from_utf8_lossy(&rollback.stdout).contains("rolled back 1 change(s)"),
            "{point}: {}",
            text(&rollback)
        );
        assert_nothing_to_roll_back(&config, RUN_LIMIT);
        assert_eq!(
            pg.show("wal_buffers").as_deref(),
            Some(wal_buffers_before.as_str()),
            "{point}: the server runs the old value again"
        );
        assert_eq!(
            String::from_utf8_lossy(&pg.auto_conf()),
            String::from_utf8_lossy(&auto_before),
            "{point}: postgresql.auto.conf byte for byte"
        );
        eprintln!(
            "{point}: crash and rollback in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
}
