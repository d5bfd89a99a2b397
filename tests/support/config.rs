//! Writes a `tuner.yaml` for tests, pointing at test servers.

use std::path::{Path, PathBuf};

/// Metric queries that work against `Monitoring` (1 s scrapes).
pub const TEST_METRICS: &str = r#"metrics:
  wal_rate:
    query: sum(rate(pg_wal_lsn_bytes[10s]))
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

/// `profile_objectives` is the YAML body under `profiles.test:` (4-space indented lines).
pub fn write(
    dir: &Path,
    prometheus_url: &str,
    dsn: &str,
    metrics: &str,
    profile_objectives: &str,
) -> PathBuf {
    let text = format!(
        "prometheus:\n  url: {prometheus_url}\n  timeout: 3s\npostgres:\n  dsn: {dsn}\nprofile: test\npaths:\n  baseline: baseline.yaml\n{metrics}profiles:\n  test:\n{profile_objectives}\n"
    );
    let path = dir.join("tuner.yaml");
    std::fs::write(&path, text).expect("write tuner.yaml");
    path
}
