//! Notifications through a real Alertmanager (the Debian package's binary,
//! on a free loopback port, clustering off) whose webhook receiver is an
//! HTTP listener in this test: a real `tuner deploy` (in place, on a
//! busybox container) must arrive firing and then resolved, with its
//! numbers; an Alertmanager that is down is a warning and the deploy still
//! succeeds; a real `tuner tune` (its lever moves a series a real
//! node_exporter serves to a real Prometheus) announces each change as it
//! lands, rolled back then kept; a real `tuner watch` adjustment arrives
//! with its usage, limits and reason.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::docker::{docker, ensure_images, facts, wait_healthy, Scope, WEB_HC, WEB_NOHC};

const ALERTMANAGER: &str = "prometheus-alertmanager";

/// Every JSON body POSTed to it, on a channel.
fn webhook() -> (u16, mpsc::Receiver<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice(&body) {
                    let _ = tx.send(v);
                }
            }
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, rx)
}

/// Alertmanager, killed on drop.
struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start(hook_port: u16) -> Alertmanager {
        let dir = tempfile::Builder::new()
            .prefix("talert-am-")
            .tempdir()
            .expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/hook\n        send_resolved: true\n"
            ),
        )
        .expect("write alertmanager.yml");
        let port = support::free_port();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager (Debian package; scripts/setup.sh installs it)");
        let am = Alertmanager {
            child,
            port,
            _dir: dir,
        };
        let ready = support::wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(ready, "alertmanager never listened on {port}");
        am
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, am_url: &str) -> std::path::PathBuf {
    let text = format!(
        "prometheus:\n  url: http://127.0.0.1:9\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\nprofile: development\npaths:\n  state_dir: state\nmetrics:\n  io_wait:\n    query: up\n    unit: percent\n    window: 1m\nprofiles:\n  development:\n    io_wait: \"< 25%\"\nnotify:\n  alertmanager:\n    url: {am_url}\n    timeout: 3s\n  resolve_after: 2s\n  labels:\n    team: db\n"
    );
    let path = dir.join("tuner.yaml");
    std::fs::write(&path, text).expect("write tuner.yaml");
    path
}

/// One prefix per test: a scope removes everything under its prefix when
/// dropped, so two tests of this file running at once must not share one.
fn scope() -> Scope {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    ensure_images();
    Scope {
        prefix: format!(
            "talert-notify-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ),
        compose_dirs: Vec::new(),
    }
}

fn deploy(config: &Path, service: &str) -> Output {
    Command::new(support::tuner_bin())
        .arg("--config")
        .arg(config)
        .args(["deploy", service, "0.5", "96M", "--strategy", "in-place"])
        .output()
        .expect("run tuner")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The first webhook payload whose status is `status`, within `timeout`.
fn payload(
    rx: &mpsc::Receiver<serde_json::Value>,
    status: &str,
    timeout: Duration,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if v["status"] == status => return v,
            Ok(_) => continue,
            Err(_) => panic!("no {status} notification within {timeout:?}"),
        }
    }
}

#[test]
fn a_deploy_reaches_the_webhook_firing_then_resolved() {
    let (hook_port, rx) = webhook();
    let am = Alertmanager::start(hook_port);
    let scope = scope();
    let net = scope.network();
    let service = scope.name("web");
    let id = scope.run(&service, &service, WEB_HC, &net, &[]);
    assert!(
        wait_healthy(&id, Duration::from_secs(30)),
        "web never healthy"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &format!("http://127.0.0.1:{}", am.port));

    let out = deploy(&config, &service);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        show(&out)
    );

    let firing = payload(&rx, "firing", Duration::from_secs(30));
    let alert = &firing["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "TunerDeploy", "{firing}");
    assert_eq!(alert["labels"]["event"], "deploy");
    assert_eq!(alert["labels"]["service"], service.as_str());
    assert_eq!(alert["labels"]["verdict"], "succeeded");
    assert_eq!(alert["labels"]["source"], "tuner");
    assert_eq!(alert["labels"]["team"], "db", "notify.labels are added");
    let annotations = &alert["annotations"];
    assert!(
        annotations["after"]
            .as_str()
            .is_some_and(|a| a.contains("0.5") && a.contains("96")),
        "{annotations}"
    );
    assert!(
        annotations["before"]
            .as_str()
            .is_some_and(|b| b.contains('1')),
        "{annotations}"
    );
    assert!(annotations["summary"]
        .as_str()
        .is_some_and(|s| s.contains("deployed")));

    // resolve_after is 2s: Alertmanager sends the resolution on its own.
    let resolved = payload(&rx, "resolved", Duration::from_secs(30));
    assert_eq!(resolved["alerts"][0]["labels"]["service"], service.as_str());
}

#[test]
fn a_down_alertmanager_is_a_warning_and_the_deploy_still_succeeds() {
    let scope = scope();
    let net = scope.network();
    let service = scope.name("down");
    let id = scope.run(&service, &service, WEB_HC, &net, &[]);
    assert!(
        wait_healthy(&id, Duration::from_secs(30)),
        "web never healthy"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let closed = support::free_port();
    let config = write_config(dir.path(), &format!("http://127.0.0.1:{closed}"));

    let out = deploy(&config, &service);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: cannot post 1 notice(s) to Alertmanager")
            && err.contains(&format!("127.0.0.1:{closed}")),
        "{err}"
    );
    let limits = support::docker::facts(&id);
    assert_eq!((limits.nano_cpus, limits.memory), (500_000_000, 96 << 20));
}

/// Kills a spawned server when the test ends, even on failure.
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

/// Alerts named `name` from firing payloads, in arrival order, until
/// `count` distinct ones (by `change_id`) arrived or `timeout` passed.
fn alerts_named(
    rx: &mpsc::Receiver<serde_json::Value>,
    name: &str,
    count: usize,
    timeout: Duration,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + timeout;
    let mut seen: Vec<serde_json::Value> = Vec::new();
    while seen.len() < count {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(payload) = rx.recv_timeout(left) else {
            break;
        };
        if payload["status"] != "firing" {
            continue;
        }
        for alert in payload["alerts"].as_array().into_iter().flatten() {
            let id = &alert["labels"]["change_id"];
            if alert["labels"]["alertname"] == name
                && !seen.iter().any(|a| &a["labels"]["change_id"] == id)
            {
                seen.push(alert.clone());
            }
        }
    }
    seen
}

fn rfc3339(v: &serde_json::Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not a time ({e}): {v}"))
}

/// A lever that moves nothing (rolled back as no_effect), then one that
/// rewrites the `knob_value` series node_exporter serves from its textfile
/// folder (kept as improved). Each notice must reach the webhook with its
/// verdict, numbers and reason, the first one stamped before the second
/// change was even journaled: posted as it landed, not at the end.
#[test]
fn a_tune_run_announces_each_change_as_it_lands() {
    let (hook_port, rx) = webhook();
    let am = Alertmanager::start(hook_port);
    // The run backs up PostgreSQL's settings before its first change.
    let pg = support::postgres::PgServer::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let textfile = d.join("textfile");
    std::fs::create_dir_all(&textfile).expect("textfile dir");
    let knob = textfile.join("knob.prom");
    std::fs::write(&knob, "knob_value 150\n").expect("knob");
    let exporter_port = support::free_port();
    let _exporter = spawn(
        d,
        "node-exporter.log",
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                textfile.display()
            )),
    );
    let prom_port = support::free_port();
    std::fs::write(
        d.join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"),
    )
    .expect("prometheus.yml");
    let _prometheus = spawn(
        d,
        "prometheus.log",
        Command::new("prometheus")
            .arg(format!("--config.file={}/prometheus.yml", d.display()))
            .arg(format!("--storage.tsdb.path={}/data", d.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
    );
    let url = format!("http://127.0.0.1:{prom_port}");
    // The first change is judged against Prometheus' history: wait until
    // it holds more than a whole window of the series.
    assert!(
        support::wait_until(Duration::from_secs(90), || {
            query(&url, "count_over_time(knob_value[30s])").is_some_and(|n| n >= 20.0)
        }),
        "Prometheus never gathered knob_value:\n{}",
        std::fs::read_to_string(d.join("prometheus.log")).unwrap_or_default()
    );

    // The rollback argv gets the value to restore, empty when there was
    // none before: 150, as the file started.
    let set = format!(
        "printf 'knob_value %s\\n' \"${{1:-150}}\" > {0}.tmp && mv {0}.tmp {0}",
        knob.display()
    );
    let levers = format!(
        "levers:\n  noop:\n    kind: command\n    apply: [\"true\"]\n    rollback: [\"true\"]\n    cost: low\n    symptoms: [cpu_pressure]\n    values: [\"1\"]\n  knob:\n    kind: command\n    apply: [sh, -c, {set:?}, sh, \"{{value}}\"]\n    rollback: [sh, -c, {set:?}, sh, \"{{value}}\"]\n    cost: medium\n    symptoms: [cpu_pressure]\n    values: [\"5\"]\n"
    );
    std::fs::write(d.join("levers.yaml"), levers).expect("levers.yaml");
    let config = d.join("tuner.yaml");
    std::fs::write(
        &config,
        format!(
            "prometheus:\n  url: {url}\n  timeout: 3s\npostgres:\n  dsn: {}\ndocker:\n  host: unix:///tmp/tuner-no-such-docker.sock\nprofile: t\npaths:\n  state_dir: state\n  levers: levers.yaml\nmetrics:\n  knob:\n    query: max(knob_value)\n    unit: ratio\n    window: 30s\n    symptom: cpu_pressure\nprofiles:\n  t:\n    knob: \"<= 10\"\ntune:\n  observe: 12s\n  settle: 3s\n  sample_interval: 1s\n  command_timeout: 30s\nnotify:\n  alertmanager:\n    url: http://127.0.0.1:{}\n    timeout: 3s\n  resolve_after: 1m\n",
            pg.dsn(),
            am.port
        ),
    )
    .expect("tuner.yaml");

    let out = Command::new(support::tuner_bin())
        .arg("--config")
        .arg(&config)
        .args(["-o", "json", "tune", "--max-cycles", "2"])
        .current_dir(d)
        .stdin(Stdio::null())
        .env_remove("TUNER_PG_DSN")
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run tuner");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    let verdicts: Vec<(&str, &str)> = report["cycles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["lever"].as_str().unwrap_or(""),
                c["verdict"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [("noop", "no_effect"), ("knob", "improved")],
        "{}",
        show(&out)
    );
    assert_eq!(out.status.code(), Some(0), "SLA met: {}", show(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        show(&out)
    );

    let alerts = alerts_named(&rx, "TunerChange", 2, Duration::from_secs(30));
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let by_lever = |lever: &str| {
        alerts
            .iter()
            .find(|a| a["labels"]["lever"] == lever)
            .unwrap_or_else(|| panic!("no notice of {lever}: {alerts:?}"))
    };
    let noop = by_lever("noop");
    assert_eq!(noop["labels"]["verdict"], "no_effect", "{noop}");
    assert_eq!(noop["labels"]["outcome"], "rolled_back");
    assert_eq!(noop["labels"]["event"], "tune_change");
    assert_eq!(noop["annotations"]["before"], "150", "{noop}");
    assert_eq!(noop["annotations"]["after"], "150", "{noop}");
    assert!(
        noop["annotations"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("knob")),
        "{noop}"
    );
    let kept = by_lever("knob");
    assert_eq!(kept["labels"]["verdict"], "improved", "{kept}");
    assert_eq!(kept["labels"]["outcome"], "kept");
    assert_eq!(kept["annotations"]["before"], "150", "{kept}");
    assert_eq!(kept["annotations"]["after"], "5", "{kept}");
    assert_eq!(kept["annotations"]["change"], "knob=5", "{kept}");
    assert!(
        kept["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("kept knob=5 (improved)")),
        "{kept}"
    );

    // Posted as it landed: the rolled-back change's notice was made before
    // the second change's intent was journaled.
    let journal = std::fs::read_to_string(d.join("state/journal.jsonl")).expect("journal");
    let second = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "intent" && e["action"] == "apply" && e["lever"]["name"] == "knob")
        .unwrap_or_else(|| panic!("no intent for knob in {journal}"));
    assert!(
        rfc3339(&noop["startsAt"]) < rfc3339(&second["at"]),
        "notice {} not before the next change at {}",
        noop["startsAt"],
        second["at"]
    );
}

/// An idle container lowered by one `tuner watch --once` check: the
/// adjustment arrives with the usage read, the old and new limits and why.
#[test]
fn a_watch_adjustment_arrives_with_usage_limits_and_reason() {
    let (hook_port, rx) = webhook();
    let am = Alertmanager::start(hook_port);
    let scope = scope();
    let project = format!("{}-p", scope.prefix);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!("version: \"2.4\"\nservices:\n  idle:\n    image: {WEB_NOHC}\n"),
    )
    .expect("compose file");
    std::fs::write(
        dir.path().join("tuner.yaml"),
        format!(
            "prometheus:\n  url: http://127.0.0.1:1\npostgres:\n  dsn: postgres://nobody@127.0.0.1:1/none\nprofile: test\nmetrics:\n  up:\n    query: up\n    unit: ratio\n    window: 30s\nprofiles:\n  test: {{}}\ncompose:\n  project_dir: .\n  project: {project}\nwatch:\n  services: [idle]\n  cooldown: 0s\n  checks: 1\nnotify:\n  alertmanager:\n    url: http://127.0.0.1:{}\n    timeout: 3s\n  resolve_after: 1m\n",
            am.port
        ),
    )
    .expect("tuner.yaml");
    let id = docker(&[
        "run",
        "-d",
        "--init",
        "--name",
        &scope.name("idle"),
        "--label",
        "com.docker.compose.service=idle",
        "--label",
        &format!("com.docker.compose.project={project}"),
        "--cpus",
        "1",
        "--memory",
        "256m",
        "--entrypoint",
        "/bin/sh",
        WEB_NOHC,
        "-c",
        "exec sleep 3600",
    ]);
    let out = Command::new(support::tuner_bin())
        .current_dir(dir.path())
        .args(["--config", "tuner.yaml", "watch", "--once", "-o", "json"])
        .stdin(Stdio::null())
        .env_remove("TUNER_OUTPUT")
        .output()
        .expect("run tuner");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // `-o json` is a stream of events; the check itself is the last line.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let check: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    assert_eq!(check["event"], "check", "{check}");
    let row = &check["rows"][0];
    assert_eq!(row["applied"]["result"], "done", "{check}");
    let new = facts(&id);
    assert!(new.memory < 256 << 20, "lowered: {check}");

    let alerts = alerts_named(&rx, "TunerWatch", 1, Duration::from_secs(30));
    let alert = alerts
        .first()
        .unwrap_or_else(|| panic!("no watch notice; {}", show(&out)));
    assert_eq!(alert["labels"]["event"], "watch_adjustment", "{alert}");
    assert_eq!(alert["labels"]["service"], "idle");
    assert_eq!(alert["labels"]["verdict"], "adjusted");
    assert_eq!(alert["labels"]["direction"], "down");
    assert_eq!(
        alert["labels"]["change_id"], row["applied"]["id"],
        "{alert}"
    );
    let a = &alert["annotations"];
    assert_eq!(a["reason"], row["decision"]["reason"], "{alert}");
    assert!(
        a["before"]
            .as_str()
            .is_some_and(|b| b.contains("memory 256")),
        "{alert}"
    );
    let after = a["after"].as_str().unwrap_or_default();
    assert!(
        after.contains("memory") && !after.contains("256"),
        "{alert}"
    );
    assert!(
        a["memory_used"]
            .as_str()
            .is_some_and(|m| m.contains("% of the limit")),
        "{alert}"
    );
}
