//! The demo Compose stack (demo/docker-compose.yml) as a test fixture.
//!
//! Each `ComposeStack` runs under its own project name with its own copy of
//! the demo directory (compose file, Prometheus and exporter config,
//! config/alerts.yml) and its own env file on free publish ports, so it never
//! touches a running `tuner-demo` project or another test's stack, and a
//! `docker-compose.override.yml` written by `tuner` during a test stays in the
//! test's copy. `Drop` runs `docker-compose down -v` even when the test fails.
//!
//! Layout of a stack's temp dir:
//!   <dir>/demo/docker-compose.yml, .env, prometheus/, postgres-exporter/
//!   <dir>/config/alerts.yml

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Services of the demo stack, as named in demo/docker-compose.yml.
pub const SERVICES: [&str; 9] = [
    "postgres",
    "postgres-exporter",
    "node-exporter",
    "prometheus",
    "alertmanager",
    "webhook",
    "app",
    "grafana",
    "haproxy",
];
/// Prometheus scrape jobs (demo/prometheus/prometheus.yml).
pub const JOBS: [&str; 5] = [
    "prometheus",
    "postgres-exporter",
    "node-exporter",
    "app",
    "grafana",
];

/// Variables the stack reads from its env file. They are removed from the
/// docker-compose process environment, where they would override the file.
const ENV_KEYS: [&str; 12] = [
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_FILE",
    "PG_PORT",
    "AM_PORT",
    "PROM_PORT",
    "GRAFANA_PORT",
    "POSTGRES_PASSWORD",
    "LOADGEN_RATE",
    "LOADGEN_CONCURRENCY",
    "BATCH_SIZE",
    "LOADGEN_ROW_RATE",
    "TUNER_ENV_FILE",
];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct ComposeStack {
    /// Compose project name, e.g. `tuner-test-stack-1234-0`.
    pub project: String,
    /// The stack's copy of demo/ (holds docker-compose.yml and .env).
    pub project_dir: PathBuf,
    /// The stack's env file (`<project_dir>/.env`).
    pub env_file: PathBuf,
    pub pg_port: u16,
    pub prom_port: u16,
    pub grafana_port: u16,
    /// Password of the `postgres` superuser.
    pub password: String,
    dir: tempfile::TempDir,
}

/// Extra settings for [`ComposeStack::start_with`].
#[derive(Default, Clone)]
pub struct StackOptions {
    /// Extra or replacement env-file entries, e.g. `("LOADGEN_RATE", "100")`.
    pub env: Vec<(String, String)>,
    /// Services to start (with their dependencies); all when empty.
    pub services: Vec<String>,
}

/// Repository root (the crate's manifest dir).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds missing or outdated demo images once per test binary.
/// Set `TUNER_TEST_SKIP_IMAGES=1` to trust the images already built.
pub fn ensure_images() {
    if std::env::var("TUNER_TEST_SKIP_IMAGES").is_ok_and(|v| v == "1") {
        return;
    }
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        // cargo sets CARGO_* and friends for test processes; a nested
        // `cargo build` that saw them would fingerprint differently and
        // rebuild dependencies on every run, so pass only what it needs.
        let mut cmd = Command::new(repo_root().join("scripts/images.sh"));
        cmd.env_clear();
        for key in [
            "PATH",
            "HOME",
            "USER",
            "CARGO_HOME",
            "RUSTUP_HOME",
            "RUSTUP_TOOLCHAIN",
            "DOCKER_HOST",
            "TMPDIR",
        ] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run scripts/images.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/images.sh failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        // Local state of the developer's demo must not leak into tests.
        if name == ".env" || name == "docker-compose.override.yml" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn docker_lines(args: &[&str]) -> Vec<String> {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes containers, volumes and networks of test stacks whose test
/// process is gone (killed before `Drop` could run). Only projects named
/// `tuner-test-stack-<pid>-<n>` are touched.
fn remove_orphaned_stacks() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let label = "{{.Label \"com.docker.compose.project\"}}";
        let mut projects = docker_lines(&[
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project",
            "--format",
            label,
        ]);
        projects.extend(docker_lines(&[
            "volume",
            "ls",
            "--filter",
            "label=com.docker.compose.project",
            "--format",
            label,
        ]));
        projects.sort();
        projects.dedup();
        for project in projects {
            let Some(rest) = project.strip_prefix("tuner-test-stack-") else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let filter = format!("label=com.docker.compose.project={project}");
            for id in docker_lines(&["ps", "-aq", "--filter", &filter]) {
                let _ = Command::new("docker")
                    .args(["rm", "-f", "-v", &id])
                    .output();
            }
            for v in docker_lines(&["volume", "ls", "-q", "--filter", &filter]) {
                let _ = Command::new("docker").args(["volume", "rm", &v]).output();
            }
            for n in docker_lines(&["network", "ls", "-q", "--filter", &filter]) {
                let _ = Command::new("docker").args(["network", "rm", &n]).output();
            }
            eprintln!("removed orphaned test stack {project}");
        }
    });
}

/// Three distinct free publish ports.
fn three_ports() -> (u16, u16, u16) {
    loop {
        let (a, b, c) = (
            super::free_publish_port(),
            super::free_publish_port(),
            super::free_publish_port(),
        );
        if a != b && b != c && a != c {
            return (a, b, c);
        }
    }
}

impl ComposeStack {
    /// Starts the whole demo stack and waits until every service is healthy.
    pub fn start() -> ComposeStack {
        Self::start_with(StackOptions::default())
    }

    pub fn start_with(options: StackOptions) -> ComposeStack {
        ensure_images();
        remove_orphaned_stacks();
        let dir = tempfile::Builder::new()
            .prefix("tuner-stack-")
            .tempdir()
            .unwrap();
        let project_dir = dir.path().join("demo");
        copy_dir(&repo_root().join("demo"), &project_dir);
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::copy(
            repo_root().join("config/alerts.yml"),
            dir.path().join("config/alerts.yml"),
        )
        .unwrap();

        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let project = format!("tuner-test-stack-{}-{n}", std::process::id());
        let password = format!("pw{}x{n}t{}", std::process::id(), super::free_port());
        let env_file = project_dir.join(".env");
        let mut stack = ComposeStack {
            project,
            project_dir,
            env_file,
            pg_port: 0,
            prom_port: 0,
            grafana_port: 0,
            password,
            dir,
        };

        let started = Instant::now();
        // A port can be taken between picking and publishing it: retry on new ports.
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let (pg, prom, grafana) = three_ports();
            stack.pg_port = pg;
            stack.prom_port = prom;
            stack.grafana_port = grafana;
            stack.write_env(&options.env);
            let mut args = vec!["up", "-d", "--no-build"];
            args.extend(options.services.iter().map(String::as_str));
            let out = stack.compose_output(&args);
            if out.status.success() {
                let wanted: Vec<&str> = if options.services.is_empty() {
                    SERVICES.to_vec()
                } else {
                    stack.running_services()
                };
                if let Err(e) = stack.wait_healthy(&wanted, Duration::from_secs(120)) {
                    panic!("{e}");
                }
                eprintln!(
                    "compose stack {}: healthy after {:.1}s",
                    stack.project,
                    started.elapsed().as_secs_f64()
                );
                return stack;
            }
            last_error = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = stack.compose_output(&["down", "-v", "--remove-orphans", "-t", "5"]);
            if !last_error.contains("address already in use")
                && !last_error.contains("port is already allocated")
            {
                break;
            }
        }
        panic!(
            "docker-compose up failed for {}:\n{last_error}",
            stack.project
        );
    }

    fn write_env(&self, extra: &[(String, String)]) {
        let mut entries: Vec<(String, String)> = vec![
            ("COMPOSE_PROJECT_NAME".into(), self.project.clone()),
            ("PG_PORT".into(), self.pg_port.to_string()),
            ("PROM_PORT".into(), self.prom_port.to_string()),
            ("GRAFANA_PORT".into(), self.grafana_port.to_string()),
            ("AM_PORT".into(), super::free_publish_port().to_string()),
            ("POSTGRES_PASSWORD".into(), self.password.clone()),
            ("LOADGEN_RATE".into(), "50".into()),
            ("LOADGEN_CONCURRENCY".into(), "4".into()),
            ("BATCH_SIZE".into(), "20".into()),
        ];
        for (k, v) in extra {
            match entries.iter_mut().find(|(key, _)| key == k) {
                Some(entry) => entry.1 = v.clone(),
                None => entries.push((k.clone(), v.clone())),
            }
        }
        let text: String = entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&self.env_file, text).unwrap();
    }

    /// `docker-compose` bound to this stack: its project, env file and
    /// directory (so an override file there is merged, as for the demo).
    pub fn compose(&self) -> Command {
        let mut c = Command::new("docker-compose");
        c.current_dir(&self.project_dir)
            .arg("--env-file")
            .arg(&self.env_file)
            .args(["-p", &self.project]);
        for key in ENV_KEYS {
            c.env_remove(key);
        }
        c
    }

    fn compose_output(&self, args: &[&str]) -> Output {
        self.compose()
            .args(args)
            .output()
            .expect("run docker-compose")
    }

    /// The temp dir holding `demo/` and `config/`.
    pub fn root_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The stack's copy of config/ (Prometheus reads alerts.yml from it).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub fn prometheus_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.prom_port)
    }

    pub fn grafana_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grafana_port)
    }

    /// Superuser DSN for the `app` database on the published port.
    pub fn pg_dsn(&self) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/app",
            self.password, self.pg_port
        )
    }

    /// Container id of a service's (first) container, if it exists.
    pub fn container_id(&self, service: &str) -> Option<String> {
        let out = self.compose_output(&["ps", "-q", service]);
        let id = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        (!id.is_empty()).then_some(id)
    }

    fn running_services(&self) -> Vec<&'static str> {
        SERVICES
            .iter()
            .copied()
            .filter(|s| self.container_id(s).is_some())
            .collect()
    }

    /// `running/healthy`, `running/starting`, `exited`, ... of a service.
    pub fn state(&self, service: &str) -> String {
        let Some(id) = self.container_id(service) else {
            return "missing".into();
        };
        let out = Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{.State.Status}}{{if .State.Health}}/{{.State.Health.Status}}{{end}}",
                &id,
            ])
            .output()
            .expect("run docker inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until every service in `services` is healthy (or running, if it
    /// has no healthcheck). The error carries `ps` and the unhealthy logs.
    pub fn wait_healthy(&self, services: &[&str], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let states: Vec<(&str, String)> =
                services.iter().map(|s| (*s, self.state(s))).collect();
            let bad: Vec<&(&str, String)> = states
                .iter()
                .filter(|(_, st)| st != "running/healthy" && st != "running")
                .collect();
            if bad.is_empty() {
                return Ok(());
            }
            let dead = bad
                .iter()
                .any(|(_, st)| st.starts_with("exited") || st.starts_with("dead"));
            if dead || Instant::now() >= deadline {
                let mut msg = format!("stack {} not healthy: {states:?}\n", self.project);
                msg.push_str(&String::from_utf8_lossy(
                    &self.compose_output(&["ps"]).stdout,
                ));
                for (svc, _) in bad {
                    let logs = self.compose_output(&["logs", "--no-color", "--tail", "30", svc]);
                    msg.push_str(&format!(
                        "---- {svc} ----\n{}",
                        String::from_utf8_lossy(&logs.stdout)
                    ));
                }
                return Err(msg);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// GET from Prometheus' HTTP API (path like `/api/v1/targets`), as JSON.
    pub fn prom_get(&self, path_and_query: &str) -> Option<serde_json::Value> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5"])
            .arg(format!("{}{path_and_query}", self.prometheus_url()))
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// An instant query's first sample value (None when no data or on error).
    pub fn prom_query(&self, promql: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5", "--data-urlencode"])
            .arg(format!("query={promql}"))
            .arg(format!("{}/api/v1/query", self.prometheus_url()))
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let value = v["data"]["result"].get(0)?["value"].get(1)?.as_str()?;
        value.parse().ok()
    }

    /// Runs SQL with psql inside the postgres container (as the superuser,
    /// database `app`) and returns its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.compose_output(&[
            "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "app", "-Atqc", sql,
        ]);
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Health of each active scrape target, by job.
    pub fn target_health(&self) -> Vec<(String, String)> {
        let Some(v) = self.prom_get("/api/v1/targets") else {
            return Vec::new();
        };
        v["data"]["activeTargets"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        (
                            t["labels"]["job"].as_str().unwrap_or("").to_string(),
                            t["health"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for ComposeStack {
    fn drop(&mut self) {
        let out = self
            .compose()
            .args(["down", "-v", "--remove-orphans", "-t", "10"])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "warning: docker-compose down for {} failed: {}",
                self.project,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!(
                "warning: cannot run docker-compose down for {}: {e}",
                self.project
            ),
        }
    }
}
