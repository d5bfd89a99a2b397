//! tuner's own metrics, end to end: `tuner rollback` and `tuner status`
//! write Prometheus text into a folder, a real node_exporter's textfile
//! collector serves it, a real Prometheus scrapes it, and the series are
//! there to query: tuner_info, changes by lever and verdict, the last
//! verdict's time, a managed setting, an objective's state.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, log: &str, cmd: &mut Command) -> Process {
    let log = std::fs::File::create(dir.join(log)).expect("log file");
    Process(
        cmd.stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn a server"),
    )
}

/// The first value of an instant query, through curl.
fn query(url: &str, promql: &str) -> Option<f64> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "2", "-G"])
        .arg(format!("{url}/api/v1/query"))
        .arg("--data-urlencode")
        .arg(format!("query={promql}"))
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn tuner(config: &Path, args: &[&str]) -> Output {
    Command::new(support::tuner_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("TUNER_PG_DSN")
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run tuner")
}

/// A config with a textfile folder, a one-lever catalog (a `command` lever
/// whose value is a file) and a journal holding two judged changes of it.
fn project(dir: &Path, prometheus_url: &str) -> std::path::PathBuf {
    let value = dir.join("value");
    std::fs::write(&value, "3\n").unwrap();
    let set = format!("echo {{value}} > {}", value.display());
    let levers = format!(
        "levers:\n  knob:\n    kind: command\n    apply: [sh, -c, \"{set}\"]\n    rollback: [sh, -c, \"{set}\"]\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"2\", \"3\"]\n"
    );
    std::fs::write(dir.join("levers.yaml"), levers).unwrap();
    let config = dir.join("tuner.yaml");
    std::fs::write(
        &config,
        format!("prometheus:\n  url: {prometheus_url}\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\ndocker:\n  host: unix:///tmp/tuner-no-such-docker.sock\nprofile: t\nmetrics_textfile_dir: textfile\npaths:\n  state_dir: state\n  levers: levers.yaml\nmetrics:\n  answer: {{query: vector(1), unit: ratio, window: 30s, direction: higher_is_better}}\nprofiles:\n  t: {{answer: \">= 0.5\"}}\n"),
    )
    .unwrap();
    let lever = serde_json::json!({
        "name": "knob", "cost": "low", "symptoms": ["high_wal_rate"], "values": ["2", "3"],
        "description": null,
        "target": {"kind": "command", "apply": ["sh", "-c", set], "rollback": ["sh", "-c", set]},
    });
    let mut lines = Vec::new();
    for (id, from, to, verdict, at) in [
        ("c1", "1", "2", "improved", "2026-01-01T00:00:00Z"),
        ("c2", "2", "3", "improved", "2026-01-01T01:00:00Z"),
    ] {
        lines.push(
            serde_json::json!({"module": "tune", "event": "intent", "change_id": id,
            "action": "apply", "lever": lever, "mv": {"from": from, "to": to}, "at": at}),
        );
        lines.push(
            serde_json::json!({"module": "tune", "event": "outcome", "change_id": id,
            "action": "apply", "ok": true, "error": null, "at": at}),
        );
        lines.push(
            serde_json::json!({"module": "tune", "event": "decision", "change_id": id,
            "verdict": verdict, "kept": true, "reason": "test", "at": at}),
        );
    }
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("state/journal.jsonl"), text).unwrap();
    config
}

#[test]
fn tuner_metrics_reach_prometheus_through_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("textfile")).unwrap();
    let exporter_port = support::free_port();
    let _exporter = spawn(
        d,
        "node-exporter.log",
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}/textfile",
                d.display()
            )),
    );
    let prom_port = support::free_port();
    std::fs::write(
        d.join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"),
    )
    .unwrap();
    let _prometheus = spawn(
        d,
        "prometheus.log",
        Command::new("prometheus")
            .arg(format!("--config.file={}/prometheus.yml", d.display()))
            .arg(format!("--storage.tsdb.path={}/data", d.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
    );
    let url = format!("http://127.0.0.1:{prom_port}");
    let logs = || {
        let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
        format!(
            "--- node-exporter\n{}\n--- prometheus\n{}",
            read("node-exporter.log"),
            read("prometheus.log")
        )
    };
    assert!(
        support::wait_until(Duration::from_secs(60), || query(&url, "up").is_some()),
        "Prometheus never scraped node-exporter:\n{}",
        logs()
    );

    let config = project(d, &url);
    // Undo the last change: the knob goes back to 2.
    let out = tuner(&config, &["rollback"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(std::fs::read_to_string(d.join("value")).unwrap(), "2\n");
    let out = tuner(&config, &["status"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let tune = std::fs::read_to_string(d.join("textfile/tuner_tune.prom")).unwrap();

    let expect = [
        ("tuner_info", 1.0),
        (
            "tuner_tune_changes_total{lever=\"knob\",verdict=\"improved\"}",
            2.0,
        ),
        ("tuner_tune_last_verdict_timestamp_seconds", 1767229200.0),
        ("tuner_setting_value{lever=\"knob\",setting=\"knob\"}", 2.0),
        ("tuner_objective_state{metric=\"answer\",state=\"ok\"}", 1.0),
        ("tuner_sla_verdict{verdict=\"met\"}", 1.0),
    ];
    for (series, value) in expect {
        let seen = support::wait_until(Duration::from_secs(30), || {
            query(&url, series) == Some(value)
        });
        assert!(
            seen,
            "{series} is {:?}, not {value}\n{tune}\n{}",
            query(&url, series),
            logs()
        );
    }
    assert!(query(&url, "node_textfile_scrape_error").is_some_and(|v| v == 0.0));
}
