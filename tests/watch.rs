//! `tuner watch` against real containers on the local engine: usage read
//! from the kernel's cgroup files, limits changed live through Docker, the
//! Compose override, the journal and the state file on disk. Every loop is
//! bounded; containers are removed by the scope even when a test fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::docker::{docker, ensure_images, facts, Scope, WEB_NOHC};
use support::{free_port, tuner_bin, wait_until};

const M: i64 = 1 << 20;

/// A Compose-like project of test containers with its own tuner.yaml.
struct Stack {
    scope: Scope,
    dir: tempfile::TempDir,
    project: String,
}

impl Stack {
    /// `watch` is the YAML body under `watch:` (2-space indented lines).
    fn new(services: &[&str], watch: &str) -> Stack {
        static N: AtomicUsize = AtomicUsize::new(0);
        ensure_images();
        let scope = Scope {
            prefix: format!(
                "twatch-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
            compose_dirs: Vec::new(),
        };
        let project = format!("{}-p", scope.prefix);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut compose = String::from("version: \"2.4\"\nservices:\n");
        for s in services {
            compose.push_str(&format!("  {s}:\n    image: {WEB_NOHC}\n"));
        }
        std::fs::write(dir.path().join("docker-compose.yml"), compose).expect("compose file");
        let config = format!(
            "prometheus:\n  url: http://127.0.0.1:1\npostgres:\n  dsn: postgres://nobody@127.0.0.1:1/none\nprofile: test\nmetrics:\n  up:\n    query: up\n    unit: ratio\n    window: 30s\nprofiles:\n  test: {{}}\ncompose:\n  project_dir: .\n  project: {project}\nwatch:\n  services: [{}]\n{watch}\n",
            services.join(", ")
        );
        std::fs::write(dir.path().join("tuner.yaml"), config).expect("tuner.yaml");
        Stack {
            scope,
            dir,
            project,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `service` with the given limits running `script` under sh.
    fn run(&self, service: &str, cpus: &str, memory: &str, script: &str) -> String {
        docker(&[
            "run",
            "-d",
            "--init",
            "--name",
            &self.scope.name(service),
            "--label",
            &format!("com.docker.compose.service={service}"),
            "--label",
            &format!("com.docker.compose.project={}", self.project),
            "--cpus",
            cpus,
            "--memory",
            memory,
            "--entrypoint",
            "/bin/sh",
            WEB_NOHC,
            "-c",
            script,
        ])
    }

    fn tuner(&self) -> Command {
        let mut cmd = Command::new(tuner_bin());
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("TUNER_OUTPUT")
            .args(["--config", "tuner.yaml", "watch"]);
        cmd
    }

    /// One `tuner watch --once -o json` (plus `extra`); its check as JSON.
    fn once(&self, extra: &[&str]) -> serde_json::Value {
        let out = self
            .tuner()
            .args(["--once", "-o", "json"])
            .args(extra)
            .output()
            .expect("run tuner");
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "not one JSON check ({e}); exit {:?}\nstdout: {stdout}\nstderr: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    fn journal(&self) -> Vec<serde_json::Value> {
        read_lines(&self.path(".tuner/journal.jsonl"))
    }
}

fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The decision of `service` in a check: `hold` or `adjust`, and its row.
fn row<'a>(check: &'a serde_json::Value, service: &str) -> &'a serde_json::Value {
    check["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["service"] == service))
        .unwrap_or_else(|| panic!("no row for {service} in {check}"))
}

fn decision(check: &serde_json::Value, service: &str) -> String {
    row(check, service)["decision"]["decision"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

fn nano(container: &str) -> i64 {
    facts(container).nano_cpus
}

/// Four busy loops: above 80% of a 0.2 CPU limit even on a busy shared
/// host, where CFS hands each runnable thread only a slice.
const BUSY: &str =
    "while :; do :; done & while :; do :; done & while :; do :; done & while :; do :; done";
const IDLE: &str = "exec sleep 3600";

#[test]
#[ignore = "flaky on a loaded 2-core host: the first checks can read the busy container under 80% (seen 2026-12-07); fix the warm-up, then un-ignore"]
fn a_busy_container_gets_25_percent_more_cpu_on_the_third_check_not_before() {
    let stack = Stack::new(
        &["busy"],
        "  cooldown: 1h\n  cpu_min: 0.05\n  memory_min: 128M",
    );
    let id = stack.run("busy", "0.2", "128m", BUSY);
    // Each check is a separate run: the count lives in the state file, so
    // this also proves a restart of watch loses nothing.
    for n in 1..=2 {
        let check = stack.once(&[]);
        assert_eq!(decision(&check, "busy"), "hold", "check {n}: {check}");
        assert_eq!(nano(&id), 200_000_000, "raised before the third check");
    }
    let check = stack.once(&[]);
    assert_eq!(decision(&check, "busy"), "adjust", "{check}");
    assert_eq!(nano(&id), 250_000_000);
    assert_eq!(facts(&id).memory, 128 * M, "memory untouched");
    let over = std::fs::read_to_string(stack.path("docker-compose.override.yml"))
        .expect("override written");
    assert!(
        over.contains("busy") && over.contains("cpus: 0.25"),
        "{over}"
    );
    let changelog = std::fs::read_to_string(stack.path("CHANGELOG_TUNING.md")).expect("changelog");
    assert!(
        changelog.contains("busy limits 0.2 CPU, 128M -> 0.25 CPU, 128M"),
        "{changelog}"
    );
    // The intent was journaled before the outcome.
    let steps: Vec<String> = stack
        .journal()
        .iter()
        .map(|e| e["step"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(steps, ["intent", "outcome"]);
    // Still busy, but inside the 1h cooldown: no further change.
    for _ in 0..3 {
        let check = stack.once(&[]);
        let reason = row(&check, "busy")["decision"]["reason"].to_string();
        assert!(reason.contains("cooldown"), "{check}");
    }
    assert_eq!(nano(&id), 250_000_000);
}

#[test]
fn the_daily_limit_holds_and_metrics_count_adjustments_while_running() {
    let stack = Stack::new(
        &["busy"],
        "  cooldown: 0s\n  checks: 1\n  max_per_day: 2\n  cpu_min: 0.05\n  memory_min: 128M",
    );
    let id = stack.run("busy", "0.2", "128m", BUSY);
    let port = free_port();
    let mut child = stack
        .tuner()
        .args(["--interval", "1s", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start tuner watch");
    let metrics = || {
        Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    let checks = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("tuner_watch_checks_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let ran = wait_until(Duration::from_secs(40), || checks(&metrics()) >= 6);
    let text = metrics();
    let health = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}/health")])
        .output()
        .expect("curl");
    signal(child.id(), "TERM");
    let status = wait_child(&mut child, Duration::from_secs(15));
    assert!(ran, "fewer than 6 checks in 40 s:\n{text}");
    assert_eq!(String::from_utf8_lossy(&health.stdout), "ok\n");
    assert!(
        text.contains(
            "tuner_watch_adjustments_total{service=\"busy\",direction=\"up\",result=\"successful\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains("max_per_day"), "{text}");
    // 0.2 -> 0.25 -> 0.31, then the day is full.
    assert_eq!(nano(&id), 310_000_000);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "SIGTERM ends cleanly"
    );
}

#[test]
fn an_idle_container_is_lowered_but_never_below_its_memory_floor() {
    let stack = Stack::new(&["idle"], "  cooldown: 0s\n  checks: 1\n  memory_min: 16M");
    // 50 MB held in tmpfs: the peak the floor must respect.
    let id = stack.run(
        "idle",
        "1",
        "256m",
        "/bin/busybox head -c 50000000 /dev/zero > /dev/shm/hold; exec sleep 3600",
    );
    assert!(wait_until(Duration::from_secs(10), || {
        docker(&[
            "exec",
            &id,
            "/bin/busybox",
            "stat",
            "-c",
            "%s",
            "/dev/shm/hold",
        ]) == "50000000"
    }));
    let mut memories = vec![facts(&id).memory];
    // The first check sees the 50 MB peak; then the service goes idle.
    stack.once(&[]);
    memories.push(facts(&id).memory);
    docker(&["exec", &id, "/bin/busybox", "rm", "/dev/shm/hold"]);
    for _ in 0..7 {
        stack.once(&[]);
        memories.push(facts(&id).memory);
    }
    let last = *memories.last().unwrap_or(&0);
    assert!(memories.windows(2).all(|w| w[1] <= w[0]), "{memories:?}");
    assert!(last < 100 * M, "lowered: {memories:?}");
    // The observed peak (~50M) plus 15% is the floor, long after the
    // working set fell to almost nothing.
    assert!(last as f64 >= 50e6 * 1.15, "below the floor: {memories:?}");
    assert_eq!(
        memories[memories.len() - 2],
        last,
        "settled at the floor: {memories:?}"
    );
    assert!(nano(&id) < 1_000_000_000, "idle CPU lowered too");
    assert!(facts(&id).running);
}

#[test]
fn an_oom_killed_container_gets_more_memory_at_once_and_is_not_lowered_after() {
    let stack = Stack::new(&["oom"], "  cooldown: 0s\n  checks: 1");
    // One allocation past the 64M limit; the shell (and the container) live on.
    let id = stack.run(
        "oom",
        "1",
        "64m",
        "/bin/busybox tail /dev/zero; exec sleep 3600",
    );
    std::thread::sleep(Duration::from_secs(3));
    let check = stack.once(&[]);
    assert_eq!(decision(&check, "oom"), "adjust", "{check}");
    assert!(
        row(&check, "oom")["decision"]["oom"].as_bool() == Some(true),
        "{check}"
    );
    // +20% of 64M is less than +100M: 164M.
    assert_eq!(facts(&id).memory, 164 * M);
    // Idle from now on, with every check allowed to act: memory stays.
    for _ in 0..3 {
        let check = stack.once(&[]);
        let r = row(&check, "oom");
        assert!(
            r["decision"]["memory"].is_null(),
            "memory moved after an OOM: {check}"
        );
    }
    assert_eq!(facts(&id).memory, 164 * M);
}

#[test]
fn a_dry_run_changes_nothing() {
    let stack = Stack::new(&["idle"], "  cooldown: 0s\n  checks: 1");
    let id = stack.run("idle", "1", "256m", IDLE);
    let before = facts(&id);
    let check = stack.once(&["--dry-run"]);
    assert_eq!(decision(&check, "idle"), "adjust", "{check}");
    assert_eq!(check["dry_run"], true);
    let after = facts(&id);
    assert_eq!(
        (after.nano_cpus, after.memory),
        (before.nano_cpus, before.memory)
    );
    for file in [
        ".tuner/journal.jsonl",
        ".tuner/watch-state.json",
        "CHANGELOG_TUNING.md",
        "docker-compose.override.yml",
    ] {
        assert!(!stack.path(file).exists(), "{file} written by a dry run");
    }
}

#[test]
fn sigterm_during_an_adjustment_finishes_it() {
    let stack = Stack::new(&["idle"], "  cooldown: 0s\n  checks: 1");
    let id = stack.run("idle", "1", "256m", IDLE);
    let mut child = stack
        .tuner()
        .args([
            "--interval",
            "1s",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .env("TUNER_WATCH_TEST_PAUSE_MS", "3000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start tuner watch");
    let intent = wait_until(Duration::from_secs(20), || {
        stack.journal().iter().any(|e| e["step"] == "intent")
    });
    signal(child.id(), "TERM");
    let status = wait_child(&mut child, Duration::from_secs(20));
    assert!(intent, "no adjustment started");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let journal = stack.journal();
    assert_eq!(journal.len(), 2, "one intent, one outcome: {journal:?}");
    assert_eq!(journal[1]["outcome"], "succeeded", "{journal:?}");
    let new = &journal[0]["new"];
    assert_eq!(facts(&id).memory, new["memory"].as_i64().unwrap_or(-1));
    assert!(facts(&id).memory < 256 * M);
}

#[test]
fn a_killed_adjustment_is_undone_by_the_next_run() {
    let stack = Stack::new(&["idle"], "  cooldown: 0s\n  checks: 1");
    let id = stack.run("idle", "1", "256m", IDLE);
    let mut child = stack
        .tuner()
        .args([
            "--interval",
            "1s",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .env("TUNER_WATCH_TEST_PAUSE_MS", "5000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tuner watch");
    let intent = wait_until(Duration::from_secs(20), || {
        stack.journal().iter().any(|e| e["step"] == "intent")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(intent, "no adjustment started");
    assert_eq!(facts(&id).memory, 256 * M, "killed before the update");
    // The next run recovers first; a high `checks` keeps it from acting anew.
    std::fs::write(
        stack.path("tuner.yaml"),
        std::fs::read_to_string(stack.path("tuner.yaml"))
            .unwrap_or_default()
            .replace("checks: 1", "checks: 50"),
    )
    .expect("rewrite config");
    let out = stack.tuner().arg("--once").output().expect("run tuner");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recovered") && stderr.contains("keeps"),
        "{stderr}"
    );
    let journal = stack.journal();
    assert_eq!(
        journal.last().map(|e| e["outcome"].clone()),
        Some("recovered_undone".into())
    );
    assert_eq!(facts(&id).memory, 256 * M);
}

#[test]
fn bad_watch_config_is_a_usage_error_naming_the_line() {
    let stack = Stack::new(&["web"], "  hihg: 80%");
    let out: Output = stack.tuner().arg("--once").output().expect("run tuner");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tuner.yaml:") && stderr.contains("hihg"),
        "{stderr}"
    );
    let stack = Stack::new(&["web"], "  listen: 0.0.0.0:9479\n  low: 90%");
    let out = stack.tuner().arg("--once").output().expect("run tuner");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("watch.listen") && stderr.contains("loopback"),
        "{stderr}"
    );
    assert!(stderr.contains("watch.low"), "{stderr}");
    assert!(!stack.path(".tuner").exists(), "nothing written");
}

fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

fn wait_child(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Kills a spawned server when the test ends, even on failure.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn usage_from_prometheus_cadvisor_style_series_drives_the_same_policy() {
    let stack = Stack::new(&["busy"], "");
    let id = stack.run("busy", "0.2", "128m", IDLE);
    let name = stack.scope.name("busy");
    // Synthetic cAdvisor-style series for the real container, through a
    // real node_exporter textfile collector and a real Prometheus.
    let d = stack.dir.path().to_path_buf();
    std::fs::create_dir_all(d.join("textfile")).expect("textfile dir");
    std::fs::write(
        d.join("textfile/cadvisor.prom"),
        format!(
            "container_cpu_cores{{name=\"{name}\"}} 0.19\ncontainer_memory_working_set_bytes{{name=\"{name}\"}} 67108864\ncontainer_spec_cpu_cores{{name=\"{name}\"}} 0.2\ncontainer_spec_memory_limit_bytes{{name=\"{name}\"}} 134217728\ncontainer_oom_events_total{{name=\"{name}\"}} 0\n"
        ),
    )
    .expect("series");
    let exporter_port = free_port();
    let _exporter = Server(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .arg(format!(
                "--collector.textfile.directory={}/textfile",
                d.display()
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    );
    let prom_port = free_port();
    std::fs::write(
        d.join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"),
    )
    .expect("prometheus.yml");
    let _prometheus = Server(
        Command::new("prometheus")
            .arg(format!("--config.file={}/prometheus.yml", d.display()))
            .arg(format!("--storage.tsdb.path={}/data", d.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let url = format!("http://127.0.0.1:{prom_port}");
    let scraped = wait_until(Duration::from_secs(30), || {
        Command::new("curl")
            .args([
                "-sf",
                "-G",
                &format!("{url}/api/v1/query"),
                "--data-urlencode",
            ])
            .arg("query=container_cpu_cores")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&name))
            .unwrap_or(false)
    });
    assert!(scraped, "Prometheus never scraped the series");
    let config = std::fs::read_to_string(stack.path("tuner.yaml"))
        .unwrap_or_default()
        .replace("url: http://127.0.0.1:1", &format!("url: {url}"))
        .replace(
            "watch:\n",
            "watch:\n  source: prometheus\n  memory_min: 128M\n  prometheus:\n    cpu: container_cpu_cores\n    memory: container_memory_working_set_bytes\n    cpu_limit: container_spec_cpu_cores\n    memory_limit: container_spec_memory_limit_bytes\n    oom: container_oom_events_total\n",
        );
    std::fs::write(stack.path("tuner.yaml"), config).expect("config");
    for n in 1..=2 {
        let check = stack.once(&[]);
        assert_eq!(check["source"], "prometheus");
        assert_eq!(decision(&check, "busy"), "hold", "check {n}: {check}");
    }
    let check = stack.once(&[]);
    assert_eq!(decision(&check, "busy"), "adjust", "{check}");
    assert_eq!(nano(&id), 250_000_000, "95% of 0.2 CPU: +25%");
}

#[path = "../bench/watch_cycle.rs"]
mod bench_cycle;
