//! The `tuner` binary as a user runs it: baseline and status against a real
//! Prometheus chain, and every user error with its message and exit code.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::prometheus::Monitoring;

fn tuner(config: &Path, args: &[&str]) -> Output {
    Command::new(support::tuner_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TUNER_PG_DSN")
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run tuner")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn baseline_and_status_against_a_real_prometheus() {
    let mon = Monitoring::start();
    mon.write_load(5_000);
    let has_rate = support::wait_until(Duration::from_secs(30), || {
        mon.query_raw("sum(rate(pg_wal_lsn_bytes[10s]))")
            .map(|b| b.contains("\"value\""))
            .unwrap_or(false)
    });
    assert!(has_rate, "no WAL rate yet:\n{}", mon.logs());
    let dir = tempfile::tempdir().unwrap();
    let objectives =
        "    pg_up: \">= 0.5\"\n    wal_rate: \"<= 100x baseline\"\n    cpu_temp: \"<= 85\"";
    let config = support::config::write(
        dir.path(),
        &mon.prometheus_url,
        &mon.pg.dsn(),
        support::config::TEST_METRICS,
        objectives,
    );
    let baseline = dir.path().join("baseline.yaml");

    // Dry run prints the baseline and writes nothing.
    let out = tuner(&config, &["baseline", "--dry-run"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("pg_up:") && stdout.contains("query: max(pg_up)"),
        "{stdout}"
    );
    assert!(!baseline.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "dry run wrote a file"
    );

    // A real baseline in the seed's shape; a second one keeps the first as a backup.
    let out = tuner(&config, &["baseline"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let written = std::fs::read_to_string(&baseline).unwrap();
    assert!(
        written.contains("profile: test") && written.contains("captured_at:"),
        "{written}"
    );
    assert!(written.contains("unit: bytes_per_second"), "{written}");
    let out = tuner(&config, &["baseline"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let backups: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("baseline.yaml.")
        })
        .collect();
    assert_eq!(backups.len(), 1, "expected one timestamped backup");

    // Status: real values, the baseline column, honest no data for cpu_temp.
    let out = tuner(&config, &["status"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for expected in ["pg_up", "wal_rate", "cpu_temp", "no data", ">= 0.5", "ok"] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }

    // JSON for machines.
    let out = tuner(&config, &["status", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    let pg_up = report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "pg_up")
        .unwrap()
        .clone();
    assert_eq!(pg_up["value"], 1.0);
    assert_eq!(pg_up["state"], "ok");
    let temp = report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "cpu_temp")
        .unwrap()
        .clone();
    assert_eq!(temp["state"], "no_data");
    assert!(temp["value"].is_null());

    // A violated objective: exit 3, named.
    let config = support::config::write(
        dir.path(),
        &mon.prometheus_url,
        &mon.pg.dsn(),
        support::config::TEST_METRICS,
        "    pg_up: \"< 0.5\"",
    );
    let out = tuner(&config, &["status"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("VIOLATED") && stdout.contains("SLA violated: pg_up"),
        "{stdout}"
    );

    // A PromQL syntax error: exit 2, Prometheus' words and the metric's name.
    let broken = support::config::TEST_METRICS.replace("max(pg_up)", "max(pg_up");
    let config = support::config::write(
        dir.path(),
        &mon.prometheus_url,
        &mon.pg.dsn(),
        &broken,
        "    pg_up: \">= 1\"",
    );
    let out = tuner(&config, &["status"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("metric pg_up")
            && stderr.contains("bad_data")
            && stderr.contains("max(pg_up"),
        "{stderr}"
    );

    // Health: Prometheus, its target and Postgres answer; a dead Docker socket is named.
    let config = support::config::write(
        dir.path(),
        &mon.prometheus_url,
        &mon.pg.dsn(),
        support::config::TEST_METRICS,
        "    pg_up: \">= 1\"",
    );
    let out = Command::new(support::tuner_bin())
        .args(["--config"])
        .arg(&config)
        .args(["status", "--health"])
        .env("DOCKER_HOST", "unix:///tmp/tuner-no-such-docker.sock")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("✓ prometheus"), "{stdout}");
    assert!(stdout.contains("✓ target postgres-exporter"), "{stdout}");
    assert!(
        stdout.contains("✓ postgres") && stdout.contains("PostgreSQL 15"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ docker") && stdout.contains("unix:///tmp/tuner-no-such-docker.sock"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(support::postgres::PASSWORD),
        "password leaked:\n{stdout}"
    );
}

#[test]
fn prometheus_down_exits_1_within_the_timeout_naming_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", support::free_port());
    let config = support::config::write(
        dir.path(),
        &url,
        "host=127.0.0.1",
        support::config::TEST_METRICS,
        "    pg_up: \">= 1\"",
    );
    let started = Instant::now();
    let out = tuner(&config, &["status"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("unreachable"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn config_errors_exit_2_with_file_line_and_column_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", support::free_port());
    let config = support::config::write(
        dir.path(),
        &url,
        "host=127.0.0.1",
        support::config::TEST_METRICS,
        "    pg_up: \">= 1\"",
    );
    let good = std::fs::read_to_string(&config).unwrap();

    // Malformed YAML.
    std::fs::write(&config, good.replace("  timeout: 3s", "  timeout: [3s")).unwrap();
    let out = tuner(&config, &["baseline"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let location = format!("{}:", config.display());
    assert!(stderr.contains(&location), "{stderr}");
    let after = &stderr[stderr.find(&location).unwrap() + location.len()..];
    let mut parts = after.split(':');
    assert!(
        parts.next().unwrap().parse::<u32>().is_ok()
            && parts.next().unwrap().parse::<u32>().is_ok(),
        "{stderr}"
    );

    // Unknown key, named.
    std::fs::write(
        &config,
        good.replace("  timeout: 3s", "  timeout: 3s\n  retries: 3"),
    )
    .unwrap();
    let out = tuner(&config, &["status"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown field `retries`"), "{stderr}");

    // Missing file.
    let out = tuner(&dir.path().join("nope.yaml"), &["status"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nope.yaml not found"), "{stderr}");

    // Nothing was written by any of it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("tuner.yaml")]);
}

#[test]
fn unknown_profile_flag_is_a_usage_error_listing_the_defined_ones() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", support::free_port());
    let config = support::config::write(
        dir.path(),
        &url,
        "host=127.0.0.1",
        support::config::TEST_METRICS,
        "    pg_up: \">= 1\"",
    );
    let out = tuner(&config, &["--profile", "prod", "status"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--profile \"prod\" is not defined") && stderr.contains("(defined: test)"),
        "{stderr}"
    );
}

#[test]
fn overlong_durations_are_usage_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", support::free_port());
    let config = support::config::write(
        dir.path(),
        &url,
        "host=127.0.0.1",
        support::config::TEST_METRICS,
        "    pg_up: \">= 1\"",
    );
    for flag in ["--observe", "--settle"] {
        let out = tuner(&config, &["tune", "--dry-run", flag, "100y"]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!("{flag}: invalid duration \"100y\""))
                && stderr.contains("maximum of 30d"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}tune:\n  observe: 100y\n")).unwrap();
    let out = tuner(&config, &["tune", "--dry-run"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tune.observe: 36525d is longer than the maximum of 30d"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `tuner ... | head -1`: the reader is gone before tuner writes. The work
/// is done, so the run exits 0 and says nothing on stderr (no panic, no
/// "broken pipe" error).
#[test]
fn a_closed_stdout_exits_0_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", support::free_port());
    let config = support::config::write(
        dir.path(),
        &url,
        "host=127.0.0.1",
        support::config::TEST_METRICS,
        "    pg_up: \">= 1\"",
    );
    // `rollback --dry-run` with an empty journal prints without any server.
    for format in ["table", "json"] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(support::tuner_bin())
            .arg("--config")
            .arg(&config)
            .args(["--output", format, "rollback", "--dry-run"])
            .env_remove("TUNER_PG_DSN")
            .env("DOCKER_HOST", "unix:///tmp/tuner-no-such-docker.sock")
            .stdout(writer)
            .output()
            .expect("run tuner");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        assert_eq!(stderr, "", "{format}");
    }
}

/// `tuner deploy SERVICE --cpus C --memory M` (Docker's flag names) is the
/// positional form spelled differently: same checks, same outcome. Mixing
/// the forms is a usage error naming both, with nothing changed.
#[test]
fn deploy_takes_docker_flag_names_beside_the_positional_form() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", support::free_port());
    let config = support::config::write(
        dir.path(),
        &url,
        "host=127.0.0.1",
        support::config::TEST_METRICS,
        "    pg_up: \">= 1\"",
    );
    let run = |args: &[&str]| {
        let mut all = vec!["deploy"];
        all.extend_from_slice(args);
        let out = tuner(&config, &all);
        let (stdout, stderr) = text(&out);
        (out.status.code(), stdout, stderr)
    };

    // A value out of range is judged the same way in both forms.
    let flags = run(&["tsetup-none", "--cpus", "99", "--memory", "768M"]);
    let positional = run(&["tsetup-none", "99", "768M"]);
    assert_eq!(flags.0, Some(2), "{}", flags.2);
    assert!(
        flags.2.contains("CPU limit 99 is out of range"),
        "{}",
        flags.2
    );
    assert_eq!(flags, positional);

    // Valid limits pass the same checks and reach the same next step
    // (finding the service), in either form and either flag order.
    let flags = run(&[
        "tsetup-none",
        "--memory",
        "768M",
        "--cpus",
        "1.5",
        "--dry-run",
    ]);
    let positional = run(&["tsetup-none", "1.5", "768M", "--dry-run"]);
    assert_eq!(flags, positional);
    assert!(!flags.2.contains("usage"), "{}", flags.2);

    // Both forms, or a flag alone: usage errors naming the arguments.
    let both = run(&[
        "tsetup-none",
        "1.5",
        "768M",
        "--cpus",
        "1.5",
        "--memory",
        "768M",
    ]);
    assert_eq!(both.0, Some(2), "{}", both.2);
    assert!(
        both.2.contains("--cpus") && both.2.contains("CPUS"),
        "{}",
        both.2
    );
    let alone = run(&["tsetup-none", "--cpus", "1.5"]);
    assert_eq!(alone.0, Some(2), "{}", alone.2);
    assert!(alone.2.contains("--memory"), "{}", alone.2);

    // Nothing was written by any of it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("tuner.yaml")]);
}

/// `status --health` reports PostgreSQL as the exporter sees it (`pg_up`):
/// a second exporter whose password is wrong is scraped fine (its target is
/// up) but cannot log in, and the check fails naming it, while the first
/// exporter and tuner's own connection are fine: such a stack is not
/// called healthy.
#[test]
fn health_fails_when_an_exporter_cannot_log_in() {
    let mon = Monitoring::start();
    let dir = tempfile::tempdir().unwrap();
    let config = support::config::write(
        dir.path(),
        &mon.prometheus_url,
        &mon.pg.dsn(),
        support::config::TEST_METRICS,
        "    pg_up: \">= 1\"",
    );
    let (stdout, stderr) = text(&tuner(&config, &["status", "--health"]));
    assert!(
        stdout.contains("✓ postgres via exporter") && stdout.contains("pg_up 1"),
        "{stdout}\n{stderr}"
    );

    let wrong = mon
        .pg
        .dsn()
        .replace(support::postgres::PASSWORD, "not-the-password");
    let port = support::free_port();
    let mut exporter = Command::new("prometheus-postgres-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .env("DATA_SOURCE_NAME", format!("{wrong}?sslmode=disable"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn a second exporter");
    let prometheus_yml = mon.dir.path().join("prometheus.yml");
    let mut scrape = std::fs::read_to_string(&prometheus_yml).unwrap();
    scrape.push_str(&format!(
        // A failing login makes its scrape take about a second.
        "  - job_name: exporter-wrong-password\n    scrape_interval: 3s\n    scrape_timeout: 3s\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    ));
    std::fs::write(&prometheus_yml, scrape).unwrap();
    mon.set_rules("groups: []\n");
    let seen = support::wait_until(Duration::from_secs(30), || {
        mon.instant(r#"up{job="exporter-wrong-password"}"#) == Some(1.0)
    });
    let out = tuner(&config, &["status", "--health"]);
    let _ = exporter.kill();
    let _ = exporter.wait();
    assert!(seen, "Prometheus never scraped the second exporter");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let bad = format!("127.0.0.1:{port}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("✗ postgres via exporter")
                && l.contains(&bad)
                && l.contains("cannot connect or log in")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("✓ postgres via exporter")
                && l.contains(&format!("127.0.0.1:{}", mon.exporter_port))),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ target exporter-wrong-password"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("not-the-password"),
        "password leaked:\n{stdout}"
    );
}
