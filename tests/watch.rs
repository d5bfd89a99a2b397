//! `tuner watch` against real containers on the local engine: usage read
//! from the kernel's cgroup files, limits changed live through Docker, the
//! Compose override, the journal and the state file on disk. Every loop is
//! bounded; containers are removed by the scope even when a test fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::cadvisor::{Cadvisor, Series};
use support::docker::{docker, ensure_images, facts, Scope, WEB_HC, WEB_NOHC};
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
    /// Its CPU weight is 16 times the default: on a host loaded by other
    /// containers, a busy test container still gets all of its small quota,
    /// and an idle one asks for nothing whatever its weight.
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
            "--cpu-shares",
            "16384",
            "--memory",
            memory,
            "--entrypoint",
            "/bin/sh",
            WEB_NOHC,
            "-c",
            script,
        ])
    }

    /// Starts `service` from `image` with its own command, labelled as a
    /// service of this Compose project in this folder, so a deploy writes
    /// the project's override file.
    fn run_image(&self, service: &str, cpus: &str, memory: &str, image: &str) -> String {
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
            "--label",
            &format!(
                "com.docker.compose.project.working_dir={}",
                self.dir.path().display()
            ),
            "--cpus",
            cpus,
            "--memory",
            memory,
            image,
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
        self.once_lines(extra)
            .pop()
            .filter(|last| last["event"] == "check")
            .unwrap_or_else(|| panic!("the last JSON line is not the check"))
    }

    /// Every JSON line `tuner watch --once -o json` printed on stdout: one
    /// per decision, then the check.
    fn once_lines(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let out = self
            .tuner()
            .args(["--once", "-o", "json"])
            .args(extra)
            .output()
            .expect("run tuner");
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!(
                        "not a JSON line ({e}): {l}; exit {:?}\nstdout: {stdout}\nstderr: {}",
                        out.status.code(),
                        String::from_utf8_lossy(&out.stderr)
                    )
                })
            })
            .collect()
    }

    /// `tuner watch --interval 1s` in the background, pausing `pause_ms`
    /// between an adjustment's journaled intent and the live update, so a
    /// test can signal or kill it mid-adjustment.
    fn spawn_paused(&self, pause_ms: u64) -> std::process::Child {
        self.tuner()
            .args([
                "--interval",
                "1s",
                "--listen",
                &format!("127.0.0.1:{}", free_port()),
            ])
            .env("TUNER_WATCH_TEST_PAUSE_MS", pause_ms.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tuner watch")
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

/// Four busy loops: far above what a container's small CPU quota allows.
const BUSY: &str =
    "while :; do :; done & while :; do :; done & while :; do :; done & while :; do :; done";
const IDLE: &str = "exec sleep 3600";

/// The count of checks in a row above `high`, as the hold's reason says it
/// (`high 2/3`).
fn high_streak(check: &serde_json::Value, service: &str) -> String {
    let reason = row(check, service)["decision"]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    reason
        .split("(high ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no cpu streak in {check}"))
        .to_string()
}

#[test]
fn a_busy_container_gets_25_percent_more_cpu_on_the_third_check_not_before() {
    let stack = Stack::new(
        &["busy"],
        "  cooldown: 1h\n  cpu_min: 0.05\n  memory_min: 128M",
    );
    // 0.08 CPU: saturated at 80% with 0.064 of a core, which the container
    // gets even when the host's 2 cores are shared by a dozen busy
    // processes (its weight is high, its quota tiny). Each check's rate
    // spans at least 2 s (16 CFS periods), so one unlucky period cannot
    // pull it under 80%.
    let id = stack.run("busy", "0.08", "128m", BUSY);
    let window = Duration::from_secs(2);
    // Each check is a separate run: the count lives in the state file, so
    // this also proves a restart of watch loses nothing.
    for n in 1..=2 {
        std::thread::sleep(window);
        let check = stack.once(&[]);
        assert_eq!(decision(&check, "busy"), "hold", "check {n}: {check}");
        assert_eq!(
            high_streak(&check, "busy"),
            format!("{n}/3"),
            "check {n} read the busy container above 80%: {check}"
        );
        assert_eq!(nano(&id), 80_000_000, "raised before the third check");
    }
    std::thread::sleep(window);
    let check = stack.once(&[]);
    assert_eq!(decision(&check, "busy"), "adjust", "{check}");
    let reason = row(&check, "busy")["decision"]["reason"].to_string();
    assert!(reason.contains("cpu above 80% for 3 checks"), "{check}");
    assert_eq!(nano(&id), 100_000_000, "0.08 CPU + 25%");
    assert_eq!(facts(&id).memory, 128 * M, "memory untouched");
    let over = std::fs::read_to_string(stack.path("docker-compose.override.yml"))
        .expect("override written");
    assert!(
        over.contains("busy") && over.contains("cpus: 0.1"),
        "{over}"
    );
    let changelog = std::fs::read_to_string(stack.path("CHANGELOG_TUNING.md")).expect("changelog");
    assert!(
        changelog.contains("busy limits 0.08 CPU, 128M -> 0.1 CPU, 128M"),
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
    assert_eq!(nano(&id), 100_000_000);
}

#[test]
fn the_daily_limit_holds_and_metrics_count_adjustments_while_running() {
    let stack = Stack::new(
        &["busy"],
        "  cooldown: 0s\n  checks: 1\n  max_per_day: 2\n  cpu_min: 0.05\n  memory_min: 128M",
    );
    let id = stack.run("busy", "0.2", "128m", BUSY);
    let port = free_port();
    let file = |name: &str| std::fs::File::create(stack.path(name)).expect("output file");
    let mut child = stack
        .tuner()
        .args(["--interval", "1s", "--listen", &format!("127.0.0.1:{port}")])
        .args(["-o", "json"])
        .stdout(file("stdout"))
        .stderr(file("stderr"))
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
    // stdout: a decision line per service and check, then the check; the
    // adjustments among the decisions.
    let stdout = read_lines(&stack.path("stdout"));
    let events: Vec<&str> = stdout.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(events.len(), stdout.len(), "untagged lines: {stdout:?}");
    assert!(events.len() >= 12, "{events:?}");
    assert!(
        events.chunks(2).all(|pair| pair == ["decision", "check"]),
        "{events:?}"
    );
    let done = stdout
        .iter()
        .filter(|l| l["event"] == "decision" && l["applied"]["result"] == "done")
        .count();
    assert_eq!(done, 2, "{stdout:?}");
    // stderr: each wait between checks, counted in seconds, and each
    // adjustment as a step.
    let stderr = read_lines(&stack.path("stderr"));
    let waits = stderr
        .iter()
        .filter(|e| e["event"] == "waiting" && e["what"] == "next check")
        .count();
    assert!(waits >= 5, "{stderr:?}");
    assert!(
        stderr
            .iter()
            .any(|e| e["event"] == "waiting" && e["total"] == 1 && e["unit"] == "s"),
        "{stderr:?}"
    );
    let steps = stderr
        .iter()
        .filter(|e| {
            e["event"] == "step"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("in place"))
        })
        .count();
    assert_eq!(steps, 2, "{stderr:?}");
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
    let mut child = stack.spawn_paused(3000);
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
    let mut child = stack.spawn_paused(5000);
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
fn a_service_configured_for_blue_green_is_resized_by_a_swap() {
    let stack = Stack::new(
        &["web"],
        "  blue_green: [web]\n  cooldown: 0s\n  checks: 1\n  memory_min: 16M",
    );
    let blue = stack.run_image("web", "1", "256m", WEB_HC);
    assert!(
        support::docker::wait_healthy(&blue, Duration::from_secs(60)),
        "blue never healthy"
    );
    let out = stack
        .tuner()
        .args(["--once", "-o", "json"])
        .output()
        .expect("run tuner");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    // The decision as its own event, then the check holding the same row.
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["event"], "decision", "{stdout}");
    assert_eq!(lines[0]["service"], "web");
    assert_eq!(lines[0]["applied"]["result"], "done", "{stdout}\n{stderr}");
    assert_eq!(lines[1]["event"], "check");
    // Progress on stderr: the swap as a step, green's health as a wait.
    assert!(
        stderr.contains("by a blue-green swap") && stderr.contains("\"event\":\"waiting\""),
        "{stderr}"
    );
    // A new container under the old name, with the new limits; blue gone.
    let green = facts(&stack.scope.name("web"));
    assert_ne!(green.id, blue, "not swapped");
    assert!(green.running);
    assert_eq!(green.nano_cpus, 750_000_000, "1 CPU - 25%");
    assert!(green.memory < 256 * M, "memory lowered: {}", green.memory);
    assert!(
        !support::docker::docker_try(&["inspect", &blue])
            .status
            .success(),
        "blue still there"
    );
    let over = std::fs::read_to_string(stack.path("docker-compose.override.yml"))
        .expect("override written");
    assert!(
        over.contains("web:") && over.contains("cpus: 0.75"),
        "{over}"
    );
    // Journaled by the deploy code, under the service, finished.
    let deploy: Vec<serde_json::Value> = stack
        .journal()
        .into_iter()
        .filter(|e| e["module"] == "deploy")
        .collect();
    assert_eq!(
        deploy.first().map(|e| e["event"].clone()),
        Some("started".into())
    );
    assert_eq!(
        deploy.last().map(|e| e["outcome"].clone()),
        Some("succeeded".into()),
        "{deploy:?}"
    );
    let changelog = std::fs::read_to_string(stack.path("CHANGELOG_TUNING.md")).expect("changelog");
    assert!(
        changelog.contains("web limits 1 CPU, 256M -> 0.75 CPU"),
        "{changelog}"
    );
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

#[test]
fn usage_from_prometheus_cadvisor_style_series_drives_the_same_policy() {
    let stack = Stack::new(&["busy"], "");
    let id = stack.run("busy", "0.2", "128m", IDLE);
    // Synthetic cAdvisor-style series for the real container, through a
    // real node_exporter textfile collector and a real Prometheus.
    let cadvisor = Cadvisor::start(
        stack.dir.path(),
        &[Series {
            name: stack.scope.name("busy"),
            cpu_cores: 0.19,
            memory: 64 * M as u64,
            cpu_limit: 0.2,
            memory_limit: 128 * M as u64,
        }],
    );
    let config = std::fs::read_to_string(stack.path("tuner.yaml"))
        .unwrap_or_default()
        .replace("url: http://127.0.0.1:1", &format!("url: {}", cadvisor.url))
        .replace(
            "watch:\n",
            &format!(
                "watch:\n  source: prometheus\n  memory_min: 128M\n{}",
                support::cadvisor::watch_queries_yaml()
            ),
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
