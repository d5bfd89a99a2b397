//! The demo stack end to end: every service healthy, every Prometheus target
//! up, the alert rules loaded, the limits applied, and the metrics `tuner`
//! relies on (WAL rate, p95 write latency) flowing.

mod support;

use std::process::Command;
use std::time::Duration;

use support::compose::{ComposeStack, JOBS};
use support::wait_until;

fn inspect(id: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", format, id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn demo_stack_serves_the_metrics_tuner_needs() {
    let stack = ComposeStack::start();

    let all_up = wait_until(Duration::from_secs(60), || {
        let health = stack.target_health();
        JOBS.iter()
            .all(|job| health.iter().any(|(j, h)| j == job && h == "up"))
    });
    assert!(
        all_up,
        "not all Prometheus targets are up: {:?}",
        stack.target_health()
    );

    let rules = stack.prom_get("/api/v1/rules").expect("rules API answers");
    let names: Vec<(String, String, String)> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["labels"]["tuning_trigger"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r["health"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for alert in [
        "HighIOWait",
        "WalSpikes",
        "P95WriteLatencyHigh",
        "CpuTemperatureHigh",
    ] {
        assert!(
            names
                .iter()
                .any(|(n, trigger, health)| n == alert && trigger == "true" && health != "err"),
            "alert {alert} missing, not a tuning trigger, or failing: {names:?}"
        );
    }

    // The limits the tuner reads and changes.
    let pg = stack.container_id("postgres").unwrap();
    assert_eq!(
        inspect(
            &pg,
            "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"
        ),
        "1000000000 1073741824 1073741824"
    );
    assert_eq!(
        inspect(
            &pg,
            "{{.Config.StopSignal}} {{.Config.StopTimeout}} {{.HostConfig.ShmSize}}"
        ),
        "SIGINT 120 268435456"
    );
    let web = stack.container_id("grafana").unwrap();
    assert_eq!(
        inspect(
            &web,
            "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.Init}}"
        ),
        "500000000 268435456 true"
    );

    // Two scrapes 5 s apart are needed before rate() has a value.
    let mut wal = None;
    let mut p95 = None;
    let flowing = wait_until(Duration::from_secs(60), || {
        wal = stack.prom_query("rate(pg_wal_lsn_bytes[30s])");
        p95 = stack.prom_query(
            "histogram_quantile(0.95, sum(rate(loadgen_write_latency_ms_bucket[30s])) by (le))",
        );
        matches!((wal, p95), (Some(w), Some(p)) if w > 0.0 && p > 0.0 && p.is_finite())
    });
    assert!(
        flowing,
        "WAL rate {wal:?} B/s and p95 {p95:?} ms should both be > 0"
    );

    let committed = stack
        .prom_query("loadgen_transactions_committed_total")
        .unwrap_or(0.0);
    assert!(committed > 0.0, "the writer app committed nothing");

    // The published port and the generated password work from the host.
    let rows = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (client, conn) = tokio_postgres::connect(&stack.pg_dsn(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let row = client
            .query_one("SELECT count(*) FROM loadgen_events", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    });
    assert!(rows > 0, "loadgen_events is empty");
    // No -c on the command line: ALTER SYSTEM must be able to move WAL settings.
    assert_eq!(
        stack.psql("SELECT source FROM pg_settings WHERE name = 'max_wal_size'"),
        "configuration file"
    );
    assert_eq!(stack.psql("SHOW jit"), "off");

    let body = Command::new("curl")
        .args(["-sf", &format!("{}/metrics", stack.grafana_url())])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&body.stdout).contains("web_up 1"));
}
