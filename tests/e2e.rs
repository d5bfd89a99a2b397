//! `tuner baseline` and `tuner status` end to end against the containerised
//! demo stack: Postgres in Docker under a write load, its exporter, node
//! exporter and Prometheus, with the shipped config/tuner.yaml unchanged.

mod support;

use std::process::Command;
use std::time::Duration;

use support::compose::{repo_root, ComposeStack};

fn run(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(support::tuner_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TUNER_PG_DSN")
        .env_remove("TUNER_PROFILE")
        .env_remove("PG_PORT")
        .env_remove("PROM_PORT")
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("COMPOSE_PROJECT_NAME")
        .output()
        .expect("run tuner");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn baseline_and_status_on_the_compose_stack_with_the_shipped_config() {
    let stack = ComposeStack::start();
    // The shipped config, as a user has it: it reads ports and password from
    // the stack's demo/.env, and writes baseline.yaml beside config/.
    let config_dir = stack.config_dir();
    for file in ["tuner.yaml", "levers.yaml"] {
        std::fs::copy(repo_root().join("config").join(file), config_dir.join(file)).unwrap();
    }
    let config = config_dir.join("tuner.yaml");

    // Wait until every rate() the shipped metrics use has two scrapes inside
    // its range; node-exporter's first scrapes can land later than the
    // others on a busy 2-core machine.
    let io_wait = r#"avg(rate(node_cpu_seconds_total{mode="iowait"}[1m]))"#;
    let ready = support::wait_until(Duration::from_secs(120), || {
        stack.prom_query("sum(rate(pg_wal_lsn_bytes[30s]))").is_some_and(|v| v > 0.0)
            // `status` reads WAL as a mean over Prometheus' history at the
            // shipped 5 s step, whose last point is at a whole step: wait
            // until the rate exists at two of them.
            && stack
                .prom_query("count_over_time(sum(rate(pg_wal_lsn_bytes[30s]))[15s:5s])")
                .is_some_and(|n| n >= 2.0)
            && stack
                .prom_query("histogram_quantile(0.95, sum(rate(loadgen_write_latency_ms_bucket[1m])) by (le))")
                .is_some_and(|v| v > 0.0)
            && stack.prom_query(io_wait).is_some_and(f64::is_finite)
    });
    assert!(
        ready,
        "the stack never reported WAL rate, latency and IO-wait; node-exporter: up={:?} scrape_duration={:?} samples_1m={:?}",
        stack.prom_query(r#"up{job="node-exporter"}"#),
        stack.prom_query(r#"scrape_duration_seconds{job="node-exporter"}"#),
        stack.prom_query(r#"count_over_time(node_cpu_seconds_total{mode="iowait",cpu="0"}[1m])"#),
    );

    let (code, stdout, stderr) = run(&config, &["status", "--health"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for component in [
        "prometheus",
        "target postgres-exporter",
        "target node-exporter",
        "target app",
        "postgres",
        "docker",
    ] {
        assert!(
            stdout.contains(&format!("✓ {component}")),
            "{component} not healthy:\n{stdout}"
        );
    }

    let (code, stdout, stderr) = run(&config, &["baseline"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let baseline = std::fs::read_to_string(stack.root_dir().join("baseline.yaml")).unwrap();
    assert!(
        baseline.contains("wal_rate:") && baseline.contains("profile: development"),
        "{baseline}"
    );

    let (code, stdout, stderr) = run(&config, &["status", "--output", "json"]);
    assert!(code == Some(0) || code == Some(3), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("status json");
    let metric = |name: &str| {
        report["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()
            .clone()
    };
    for name in ["wal_rate", "p95_write_latency"] {
        let m = metric(name);
        assert!(m["value"].as_f64().is_some_and(|v| v > 0.0), "{name}: {m}");
        assert_ne!(m["state"], "no_data", "{name}: {m}");
    }
    // IO-wait is measured (a number, possibly tiny on an idle disk), never invented.
    assert!(
        metric("io_wait")["value"].as_f64().is_some(),
        "{}",
        metric("io_wait")
    );
    // No sensors on these VMs: honestly no data, not 0.
    let temp = metric("cpu_temp");
    assert!(
        temp["value"].is_null() || temp["value"].as_f64().is_some_and(|v| v > 0.0),
        "{temp}"
    );

    let (_, stdout, _) = run(&config, &["status"]);
    assert!(
        stdout.contains("wal_rate") && stdout.contains("baseline captured"),
        "{stdout}"
    );

    // Every service is still healthy after all of it.
    stack
        .wait_healthy(
            &[
                "postgres",
                "postgres-exporter",
                "node-exporter",
                "prometheus",
                "app",
                "grafana",
            ],
            Duration::from_secs(30),
        )
        .unwrap();
}
