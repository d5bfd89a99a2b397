//! `tuner status` and the tune loop's first measurement read the SLA through
//! one measurement. Against a real PostgreSQL 15, postgres-exporter and
//! Prometheus, `tuner status --output json` and `tuner tune --dry-run
//! --output json` (whose report carries the SLA it measured) report the same
//! value, reading and state for every objective (a WAL rate read as a window
//! mean, a metric read as an instant, one with no data) and exit with the
//! same code, whether the SLA is met or violated.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::prometheus::Monitoring;
use support::tune::{text, tuner};

const LIMIT: Duration = Duration::from_secs(60);
/// `tune.sample_interval`: the step of the history WAL is averaged over.
const STEP_SECS: u64 = 10;

/// A WAL rate (read as the mean of the last 2m, a point every 10 s; its
/// 15 s range leaves no gap between points for a burst to hide in), a
/// metric read as an instant, and a temperature no sensor reports.
const METRICS: &str = r#"metrics:
  wal_rate:
    query: sum(rate(pg_wal_lsn_bytes[15s]))
    unit: bytes_per_second
    window: 30s
    symptom: high_wal_rate
  pg_up:
    query: max(pg_up)
    unit: ratio
    window: 30s
    direction: higher_is_better
  cpu_temp:
    query: max(node_hwmon_temp_celsius)
    unit: celsius
    window: 30s
"#;

const LEVERS: &str = "levers:\n  max_wal_size:\n    kind: postgres\n    parameter: max_wal_size\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"4GB\"]\n";

fn write_config(dir: &Path, mon: &Monitoring, wal_objective: &str) -> PathBuf {
    std::fs::write(dir.join("levers.yaml"), LEVERS).expect("write levers.yaml");
    let text = format!(
        "prometheus:\n  url: {}\n  timeout: 5s\npostgres:\n  dsn: {}\nprofile: test\npaths:\n  baseline: baseline.yaml\n  levers: levers.yaml\n{METRICS}profiles:\n  test:\n    wal_rate: \"{wal_objective}\"\n    pg_up: \">= 0.5\"\n    cpu_temp: \"<= 85\"\ntune:\n  observe: 2m\n  settle: 1s\n  sample_interval: {STEP_SECS}s\n",
        mon.prometheus_url,
        mon.pg.dsn()
    );
    let path = dir.join("tuner.yaml");
    std::fs::write(&path, text).expect("write tuner.yaml");
    path
}

/// Waits until the clock is well inside a step of the history grid, so two
/// commands started now read the same grid and none reads a point whose
/// scrape may still be in flight.
fn mid_step() {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970");
        let into = now.as_millis() as u64 % (STEP_SECS * 1000);
        if (1500..STEP_SECS * 1000 - 4000).contains(&into) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `tuner status` and `tuner tune --dry-run` started together.
fn both(config: &Path, format: &str) -> (Output, Output) {
    mid_step();
    let (a, b) = (config.to_path_buf(), config.to_path_buf());
    let format_a = format.to_string();
    let status =
        std::thread::spawn(move || tuner(&a, &["--output", &format_a, "status"], &[], LIMIT));
    let tune = tuner(&b, &["--output", format, "tune", "--dry-run"], &[], LIMIT);
    (status.join().expect("status thread"), tune)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn metric<'a>(sla: &'a Value, name: &str) -> &'a Value {
    sla["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {sla}"))
}

/// Both commands' SLA readings; asserts they agree metric by metric and
/// returns status's.
fn agree(config: &Path, expected_code: i32) -> Value {
    let (status_out, tune_out) = both(config, "json");
    let (status, tune) = (json(&status_out), json(&tune_out));
    let sla = &tune["sla"];
    let context = format!("status:\n{status:#}\ntune:\n{tune:#}");
    assert_eq!(status_out.status.code(), Some(expected_code), "{context}");
    assert_eq!(tune_out.status.code(), Some(expected_code), "{context}");
    assert_eq!(status["verdict"], sla["verdict"], "{context}");
    for name in ["wal_rate", "pg_up", "cpu_temp"] {
        let (s, t) = (metric(&status, name), metric(sla, name));
        for field in ["value", "state", "reading", "limit"] {
            assert_eq!(s[field], t[field], "{name}.{field} differs:\n{context}");
        }
    }
    status
}

/// The mean Prometheus itself gives over the window a reading reports.
fn prometheus_mean(mon: &Monitoring, query: &str, reading: &Value) -> f64 {
    let unix = |field: &str| {
        let at = reading[field].as_str().expect("timestamp");
        chrono::DateTime::parse_from_rfc3339(at)
            .expect("RFC 3339")
            .timestamp_millis() as f64
            / 1000.0
    };
    let step = reading["step_seconds"].as_f64().expect("step");
    let points = mon.range(query, unix("from"), unix("to"), step);
    assert_eq!(points.len() as u64, reading["points"].as_u64().unwrap());
    points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64
}

#[test]
fn status_and_tune_read_the_same_sla_and_exit_alike() {
    let mon = Monitoring::start();
    mon.write_load(20_000);
    let has_rate = support::wait_until(Duration::from_secs(30), || {
        mon.instant("sum(rate(pg_wal_lsn_bytes[15s])) > 0")
            .is_some()
    });
    assert!(has_rate, "no WAL rate yet:\n{}", mon.logs());
    // The history ends at the last multiple of the step: let one pass, so
    // the burst lies inside a point's 15 s range that the window holds.
    std::thread::sleep(Duration::from_secs(STEP_SECS));
    let dir = tempfile::tempdir().unwrap();

    // Met: WAL and pg_up hold; cpu_temp has no data, is reported as such,
    // and fails neither command.
    let config = write_config(dir.path(), &mon, "<= 1000000000");
    let status = agree(&config, 0);
    assert_eq!(status["verdict"], "met");
    let wal = metric(&status, "wal_rate");
    assert_eq!(wal["state"], "ok");
    assert_eq!(wal["reading"]["kind"], "history_mean");
    let mean = wal["value"].as_f64().expect("a WAL mean");
    assert!(mean > 0.0, "the write burst is in the window: {wal}");
    let expected = prometheus_mean(&mon, "sum(rate(pg_wal_lsn_bytes[15s]))", &wal["reading"]);
    assert!(
        (mean - expected).abs() <= 1e-9 * expected.max(1.0),
        "WAL is the window's mean ({expected}), not an instant: {wal}"
    );
    let pg_up = metric(&status, "pg_up");
    assert_eq!(
        (pg_up["value"].as_f64(), &pg_up["state"]),
        (Some(1.0), &"ok".into())
    );
    assert_eq!(pg_up["reading"]["kind"], "instant");
    let temp = metric(&status, "cpu_temp");
    assert!(temp["value"].is_null(), "{temp}");
    assert_eq!(temp["state"], "no_data");

    // The same reading in the one table both print, and the same words for
    // what could not be measured.
    let (status_out, tune_out) = both(&config, "table");
    for out in [&status_out, &tune_out] {
        let all = text(out);
        assert_eq!(out.status.code(), Some(0), "{all}");
        for needle in [
            "(mean of 2m)",
            "no data",
            "SLA met by every measured objective; not measured: cpu_temp (no data)",
        ] {
            assert!(all.contains(needle), "{needle:?} missing:\n{all}");
        }
    }

    // Violated: a WAL objective the burst breaks. Status exits 3, and so
    // does the dry run that plans a change from the same reading.
    let config = write_config(dir.path(), &mon, "<= 1");
    let status = agree(&config, 3);
    assert_eq!(status["verdict"], "violated");
    assert_eq!(metric(&status, "wal_rate")["state"], "violated");
    assert_eq!(metric(&status, "cpu_temp")["state"], "no_data");
}
