//! Docker side of the blue-green tests and benchmark: a busybox httpd image
//! built locally from `/bin/busybox` (no registry here), containers named
//! `tuner-test-haproxy-<pid>-...` removed on `Drop`, and the swap driven
//! through the `Router` sequence.
//!
//! `router_swap` drives the `Router` sequence by hand (router tests);
//! `tuner_deploy` runs the real `tuner deploy` binary against a config whose
//! `deploy.router` points at a test HAProxy.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tuner::deploy::router::haproxy::{HaproxyConfig, HaproxyRouter};
use tuner::deploy::router::{Backend, Router};

use super::haproxy::HaproxyServer;

/// Not `tuner-test/web-hc:1`: other test suites build images under that
/// prefix with a different layout (`/healthz`, no marker).
pub const IMAGE: &str = "tuner-test/haproxy-web:1";
/// Checked on the image, so an image of that name built differently is
/// rebuilt rather than used.
const IMAGE_LABEL: &str = "tuner-test.haproxy-web=marker-host-health-8080";
/// Port httpd listens on inside the container.
const INNER_PORT: u16 = 8080;

/// Runs `docker args...`: stdout trimmed, or stderr.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("docker {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Builds `tuner-test/haproxy-web:1` with `docker import` unless present: busybox
/// httpd serving `/www`, writing `$MARKER-<hostname>` to `/www/id` at start
/// (a clone copies the env but gets its own hostname, its short id: see
/// [`marker`]), with a 1 s Docker HEALTHCHECK on `/health`.
pub fn ensure_image() {
    let (key, value) = IMAGE_LABEL.split_once('=').unwrap();
    let format = format!("{{{{index .Config.Labels \"{key}\"}}}}");
    if docker(&["image", "inspect", "-f", &format, IMAGE]).is_ok_and(|v| v == value) {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("tuner-web-image-")
        .tempdir()
        .expect("temp dir");
    let root = dir.path().join("root");
    for d in ["bin", "www", "tmp"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy(super::haproxy::BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    for applet in ["sh", "httpd", "wget"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    let tar = dir.path().join("web.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar of the web rootfs failed");
    let cmd = format!(
        r#"CMD ["/bin/sh","-c","echo ${{MARKER:-web}}-$(cat /etc/hostname) > /www/id && echo ok > /www/health && exec /bin/httpd -f -p {INNER_PORT} -h /www"]"#
    );
    let health = format!(
        r#"HEALTHCHECK --interval=1s --timeout=1s --retries=3 CMD ["/bin/wget","-q","-O","/dev/null","http://127.0.0.1:{INNER_PORT}/health"]"#
    );
    docker(&[
        "import",
        "--change",
        &cmd,
        "--change",
        &health,
        "--change",
        &format!("LABEL {IMAGE_LABEL}"),
        &tar.display().to_string(),
        IMAGE,
    ])
    .expect("docker import the web image");
}

/// What the container now called `name` answers on `/id`: its marker and
/// its hostname (Docker's default, the short id), so blue and its clone
/// green are told apart although green copies blue's environment.
pub fn marker(name: &str, marker: &str) -> String {
    let id = docker(&["inspect", "-f", "{{.Id}}", name]).expect("docker inspect id");
    format!("{marker}-{}", &id[..12.min(id.len())])
}

/// One running web container.
#[derive(Debug, Clone)]
pub struct WebContainer {
    pub name: String,
    /// Published on 127.0.0.1.
    pub port: u16,
}

impl WebContainer {
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Containers started by one test; `Drop` removes every one still there.
pub struct Containers {
    prefix: String,
    names: Mutex<Vec<String>>,
    counter: Mutex<u32>,
}

impl Containers {
    pub fn new(tag: &str) -> Containers {
        ensure_image();
        Containers {
            prefix: format!("tuner-test-haproxy-{}-{tag}-", std::process::id()),
            names: Mutex::new(Vec::new()),
            counter: Mutex::new(0),
        }
    }

    /// `docker run -d` with limits, on a free port below 32768 (or `port`).
    pub fn run(&self, marker: &str, cpus: &str, memory: &str, port: Option<u16>) -> WebContainer {
        let name = {
            let mut n = self.counter.lock().unwrap();
            *n += 1;
            format!("{}{n}", self.prefix)
        };
        let mut last = String::new();
        for _ in 0..5 {
            let port = port.unwrap_or_else(super::free_publish_port);
            let publish = format!("127.0.0.1:{port}:{INNER_PORT}");
            let env = format!("MARKER={marker}");
            self.names.lock().unwrap().push(name.clone());
            match docker(&[
                "run", "-d", "--name", &name, "--cpus", cpus, "--memory", memory, "-p", &publish,
                "-e", &env, IMAGE,
            ]) {
                Ok(_) => return WebContainer { name, port },
                Err(e) => {
                    // A failed publish leaves the container `Created`.
                    last = e;
                    let _ = docker(&["rm", "-f", &name]);
                }
            }
        }
        panic!("could not start {name}: {last}");
    }

    pub fn remove(&self, name: &str) {
        docker(&["rm", "-f", name]).expect("docker rm -f");
        self.names.lock().unwrap().retain(|n| n != name);
    }
}

impl Containers {
    /// Tracks a container this guard did not start (a green `tuner deploy`
    /// created), so `Drop` removes it too.
    pub fn adopt(&self, name: &str) {
        self.names.lock().unwrap().push(name.to_string());
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        for name in names {
            let _ = docker(&["rm", "-f", &name]);
        }
        // Anything else under the prefix: a green left by a failed deploy
        // (`<name>_tuner_green`).
        let filter = format!("name={}", self.prefix);
        if let Ok(ids) = docker(&["ps", "-aq", "--filter", &filter]) {
            for id in ids.split_whitespace() {
                let _ = docker(&["rm", "-f", id]);
            }
        }
    }
}

/// A temp dir with a minimal tuner.yaml whose `deploy.router` is HAProxy
/// at `socket`, backend `backend`; state lives beside it.
pub struct TunerConfig {
    pub dir: tempfile::TempDir,
}

impl TunerConfig {
    pub fn haproxy(socket: &Path, backend: &str) -> TunerConfig {
        TunerConfig::haproxy_with_state(socket, backend, None)
    }

    /// With `state_file`: tuner saves HAProxy's server state there after
    /// each swap.
    pub fn haproxy_with_state(
        socket: &Path,
        backend: &str,
        state_file: Option<&Path>,
    ) -> TunerConfig {
        let dir = tempfile::Builder::new()
            .prefix("tuner-test-deploy2-cfg-")
            .tempdir()
            .expect("temp dir");
        let text = format!(
            "prometheus:\n  url: http://127.0.0.1:9\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\nprofile: development\npaths:\n  state_dir: state\nmetrics:\n  io_wait:\n    query: up\n    unit: percent\n    window: 1m\nprofiles:\n  development:\n    io_wait: \"< 25%\"\ndeploy:\n  router:\n    kind: haproxy\n    haproxy:\n      socket: {}\n      backend: {backend}\n",
            socket.display()
        );
        let text = match state_file {
            Some(path) => format!("{text}      state_file: {}\n", path.display()),
            None => text,
        };
        std::fs::write(dir.path().join("tuner.yaml"), text).expect("write tuner.yaml");
        TunerConfig { dir }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("tuner.yaml")
    }
}

/// Runs `bin --config <config> args...` with extra environment, bounded
/// by `limit` (the child is killed past it).
pub async fn run_tuner(
    bin: &Path,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> Result<std::process::Output, String> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TUNER_DEPLOY_CRASH_AFTER")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| format!("tuner {} did not finish within {limit:?}", args.join(" ")))?
        .map_err(|e| format!("tuner {}: {e}", args.join(" ")))
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn show(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What one `tuner deploy --output json` reported.
#[derive(Debug, Clone)]
pub struct DeployRun {
    /// Wall time of the process.
    pub wall: Duration,
    pub drain: Duration,
    pub to_green: Duration,
    /// The standby server green was checked under in HAProxy.
    pub router_green: String,
    /// The service's own server, which points at green afterwards.
    pub router_blue: String,
    pub json: serde_json::Value,
}

/// Runs `bin --config <config> deploy <service> <cpus> <memory> --output
/// json` with 1 s health interval, bounded by `limit`. Err holds the
/// exit status, stdout and stderr.
pub async fn tuner_deploy(
    bin: &Path,
    config: &Path,
    service: &str,
    cpus: &str,
    memory: &str,
    limit: Duration,
) -> Result<DeployRun, String> {
    let start = Instant::now();
    let out = run_tuner(
        bin,
        config,
        &[
            "--output",
            "json",
            "deploy",
            service,
            cpus,
            memory,
            "--health-timeout",
            "30s",
            "--health-interval",
            "1s",
            "--drain",
            "10s",
        ],
        &[],
        limit,
    )
    .await?;
    let wall = start.elapsed();
    let show = || show(&out);
    if !out.status.success() {
        return Err(show());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", show()))?;
    let result = &json["result"];
    let secs = |v: &serde_json::Value| Duration::from_secs_f64(v.as_f64().unwrap_or(f64::NAN));
    let drain = result["phases"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["phase"] == "drain"))
        .map(|p| secs(&p["seconds"]))
        .ok_or_else(|| format!("no drain phase in the report: {}", show()))?;
    Ok(DeployRun {
        wall,
        drain,
        to_green: secs(&result["seconds_to_green"]),
        router_green: json["plan"]["router_green"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        router_blue: json["plan"]["router_blue"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        json,
    })
}

/// Polls Docker's health status until `healthy`.
/// A blue container with `cpus`/`memory` behind a fresh HAProxy (backend
/// `app`, server `server` at blue's published address), healthy in both
/// HAProxy's and Docker's eyes; its future green is adopted for cleanup.
pub async fn blue_behind_haproxy(
    containers: &Containers,
    server: &str,
    cpus: &str,
    memory: &str,
) -> (WebContainer, HaproxyServer, HaproxyRouter) {
    let blue_web = containers.run("blue", cpus, memory, None);
    containers.adopt(&format!("{}_tuner_green", blue_web.name));
    let haproxy = HaproxyServer::start(&[(server, blue_web.address())]);
    let router =
        HaproxyRouter::new(HaproxyConfig::new(haproxy.socket(), "app")).expect("HAProxy router");
    let blue = Backend {
        name: server.into(),
        address: blue_web.address(),
    };
    router
        .wait_healthy(&blue, Duration::from_secs(30))
        .await
        .expect("blue healthy in HAProxy");
    wait_docker_healthy(&blue_web.name, Duration::from_secs(30)).expect("blue healthy in Docker");
    (blue_web, haproxy, router)
}

pub fn wait_docker_healthy(name: &str, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let status = docker(&["inspect", "-f", "{{.State.Health.Status}}", name])?;
        if status == "healthy" {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err(format!("{name} is {status} after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `(NanoCpus, Memory)` of a container.
pub fn limits(name: &str) -> (i64, i64) {
    let out = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}",
        name,
    ])
    .expect("docker inspect limits");
    let mut it = out.split_whitespace().map(|v| v.parse().unwrap_or(-1));
    (it.next().unwrap_or(-1), it.next().unwrap_or(-1))
}

pub fn exists(name: &str) -> bool {
    docker(&["inspect", "-f", "{{.Id}}", name]).is_ok()
}

/// Phases of one swap.
#[derive(Debug, Clone, Copy)]
pub struct SwapTiming {
    /// Start to blue removed (container and HAProxy server).
    pub total: Duration,
    /// Waiting for blue's in-flight requests.
    pub drain: Duration,
    /// Start to green promoted (taking traffic).
    pub to_green: Duration,
}

impl SwapTiming {
    pub fn without_drain(&self) -> Duration {
        self.total.saturating_sub(self.drain)
    }
}

/// The blue-green swap through the `Router` sequence, as `tuner deploy`
/// will do it: start green with the new limits, add it as a standby, wait
/// for HAProxy's check, promote, drain blue, remove the blue container,
/// retire it. `slot` is green's server name; with `wait_docker`, green is
/// also awaited Docker-healthy before promotion. Returns green and timings.
pub async fn router_swap(
    router: &dyn Router,
    containers: &Containers,
    blue: (&Backend, &WebContainer),
    slot: &str,
    cpus: &str,
    memory: &str,
    wait_docker: bool,
) -> (Backend, WebContainer, SwapTiming) {
    let start = Instant::now();
    let green_web = containers.run(slot, cpus, memory, None);
    let green = Backend {
        name: slot.to_string(),
        address: green_web.address(),
    };
    router.add_standby(&green).await.unwrap();
    if wait_docker {
        let name = green_web.name.clone();
        tokio::task::spawn_blocking(move || wait_docker_healthy(&name, Duration::from_secs(30)))
            .await
            .unwrap()
            .unwrap();
    }
    router
        .wait_healthy(&green, Duration::from_secs(30))
        .await
        .unwrap();
    router.promote(&green).await.unwrap();
    let to_green = start.elapsed();
    let drain_start = Instant::now();
    router.drain(blue.0, Duration::from_secs(30)).await.unwrap();
    let drain = drain_start.elapsed();
    containers.remove(&blue.1.name);
    router.retire(blue.0).await.unwrap();
    let timing = SwapTiming {
        total: start.elapsed(),
        drain,
        to_green,
    };
    (green, green_web, timing)
}

/// Wall time of a blocking command.
pub fn timed(program: &Path, args: &[&str]) -> Result<Duration, String> {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {}: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(start.elapsed())
}
