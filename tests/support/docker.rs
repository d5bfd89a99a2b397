//! Docker fixtures for deploy tests: local test images built from the host's
//! static busybox (no registry needed), uniquely named containers and
//! networks, and a guard that removes them all when dropped, even when the
//! test panics.
//!
//! Images (built once, idempotently):
//! - `tuner-test/web-hc:1`   httpd + Docker HEALTHCHECK every 1s, 2 retries
//! - `tuner-test/web-slow:1` same, but a 1h start period: a failing check
//!   keeps it `starting` forever (never healthy)
//! - `tuner-test/web-nohc:1` httpd, no HEALTHCHECK
//!
//! Every image runs `/bin/entry.sh`: when the container's cgroup memory
//! limit equals `$FAIL_WHEN_MEM`, it fails as `$FAIL_MODE` says (`exit`:
//! exits 3 at once; `unhealthy`: serves a root without /healthz). So blue
//! (old limit) is healthy and a green with that limit is not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub const WEB_HC: &str = "tuner-test/web-hc:1";
pub const WEB_SLOW: &str = "tuner-test/web-slow:1";
pub const WEB_NOHC: &str = "tuner-test/web-nohc:1";

const ENTRY: &str = r#"#!/bin/sh
lim=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null)
if [ -n "$FAIL_WHEN_MEM" ] && [ "$lim" = "$FAIL_WHEN_MEM" ]; then
  case "$FAIL_MODE" in
    exit) echo "failing as asked (limit $lim)" >&2; exit 3 ;;
    unhealthy) exec /bin/httpd -f -p 8080 -h /bad ;;
  esac
fi
exec /bin/httpd -f -p 8080 -h /www
"#;

/// Runs a command, returning its output; panics with stderr on failure.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn docker(args: &[&str]) -> String {
    sh(Command::new("docker").args(args))
}

/// Like `docker` but returns the raw output without asserting success.
pub fn docker_try(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

/// Builds the test images unless they exist. Safe to call from every test.
pub fn ensure_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let images = [
            (WEB_HC, Some("HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD [\"/bin/wget\",\"-q\",\"-O\",\"/dev/null\",\"http://127.0.0.1:8080/healthz\"]")),
            (WEB_SLOW, Some("HEALTHCHECK --interval=1s --timeout=2s --retries=2 --start-period=1h CMD [\"/bin/wget\",\"-q\",\"-O\",\"/dev/null\",\"http://127.0.0.1:8080/healthz\"]")),
            (WEB_NOHC, None),
        ];
        if images.iter().all(|(name, _)| docker_try(&["image", "inspect", name]).status.success()) {
            return;
        }
        let dir = tempfile::Builder::new().prefix("tuner-test-image-").tempdir().expect("temp dir");
        let root = dir.path().join("root");
        make_rootfs(&root);
        sh(Command::new("tar").arg("-cf").arg(dir.path().join("rootfs.tar")).arg("-C").arg(&root).arg("."));
        for (name, healthcheck) in images {
            let dockerfile = format!(
                "FROM scratch\nADD rootfs.tar /\nUSER 65534\nEXPOSE 8080\nENTRYPOINT [\"/bin/sh\",\"/bin/entry.sh\"]\n{}\n",
                healthcheck.unwrap_or("")
            );
            std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
            sh(Command::new("docker").args(["build", "-q", "-t", name]).arg(dir.path()));
        }
    });
}

fn make_rootfs(root: &Path) {
    for d in ["bin", "etc", "www", "bad", "tmp"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("copy /bin/busybox (install busybox-static)");
    for applet in ["sh", "httpd", "wget", "cat", "sleep", "ls", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
    std::fs::write(root.join("www/healthz"), "ok\n").expect("healthz");
    std::fs::write(root.join("www/index.html"), "web\n").expect("index");
    std::fs::write(root.join("bad/index.html"), "bad\n").expect("bad index");
    std::fs::write(root.join("bin/entry.sh"), ENTRY).expect("entry");
    sh(Command::new("chmod").arg("1777").arg(root.join("tmp")));
}

/// A namespace for one test: names start with `tuner-test-deploy-<pid>-<n>`;
/// everything with that prefix is removed on drop.
pub struct Scope {
    pub prefix: String,
    pub compose_dirs: Vec<(PathBuf, String)>,
}

impl Scope {
    pub fn new() -> Scope {
        static N: AtomicUsize = AtomicUsize::new(0);
        ensure_images();
        Scope {
            prefix: format!(
                "tuner-test-deploy-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
            compose_dirs: Vec::new(),
        }
    }

    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    pub fn network(&self) -> String {
        static NETS: AtomicUsize = AtomicUsize::new(0);
        let name = self.name(&format!("net{}", NETS.fetch_add(1, Ordering::SeqCst)));
        docker(&["network", "create", "--label", "tuner-test=1", &name]);
        name
    }

    /// Starts a container labelled as Compose service `service` (no project
    /// dir), 1 CPU / 128M, with `--init` so it stops quickly.
    pub fn run(
        &self,
        name: &str,
        service: &str,
        image: &str,
        network: &str,
        extra: &[&str],
    ) -> String {
        let project = format!("{}-p", self.prefix);
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--init",
            "--name",
            name,
            "--network",
            network,
            "--network-alias",
            service,
            "--cpus",
            "1",
            "--memory",
            "128m",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend([
            "--label".into(),
            format!("com.docker.compose.service={service}"),
            "--label".into(),
            format!("com.docker.compose.project={project}"),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(image.to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&refs)
    }

    pub fn track_compose(&mut self, dir: &Path, project: &str) {
        self.compose_dirs
            .push((dir.to_path_buf(), project.to_string()));
    }
}

impl Default for Scope {
    fn default() -> Self {
        Scope::new()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        for (dir, project) in &self.compose_dirs {
            let _ = Command::new("docker-compose")
                .current_dir(dir)
                .args(["-p", project, "down", "-v", "-t", "1"])
                .output();
        }
        let filter = format!("name={}", self.prefix);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", "-v", id]).output();
            }
        }
        // Clones of test containers carry the test's labels but may have been renamed.
        let label = format!("label=com.docker.compose.project={}-p", self.prefix);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", "-v", id]).output();
            }
        }
        if let Ok(out) = Command::new("docker")
            .args(["volume", "ls", "-q", "--filter", &filter])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker")
                    .args(["volume", "rm", "-f", id])
                    .output();
            }
        }
        if let Ok(out) = Command::new("docker")
            .args(["network", "ls", "-q", "--filter", &filter])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["network", "rm", id]).output();
            }
        }
    }
}

/// One container's facts, read with `docker inspect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub health: String,
    pub nano_cpus: i64,
    pub memory: i64,
    pub memory_swap: i64,
    pub labels: String,
}

pub fn facts(container: &str) -> Facts {
    let out = docker(&["inspect", container]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("docker inspect JSON");
    let c = &v[0];
    Facts {
        id: c["Id"].as_str().unwrap_or_default().to_string(),
        name: c["Name"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        running: c["State"]["Running"].as_bool().unwrap_or(false),
        health: c["State"]["Health"]["Status"]
            .as_str()
            .unwrap_or("none")
            .to_string(),
        nano_cpus: c["HostConfig"]["NanoCpus"].as_i64().unwrap_or(-1),
        memory: c["HostConfig"]["Memory"].as_i64().unwrap_or(-1),
        memory_swap: c["HostConfig"]["MemorySwap"].as_i64().unwrap_or(-1),
        labels: c["Config"]["Labels"].to_string(),
    }
}

/// Ids of every container (any state) labelled with Compose service `service`.
pub fn service_containers(service: &str) -> Vec<String> {
    let filter = format!("label=com.docker.compose.service={service}");
    docker(&["ps", "-aq", "--no-trunc", "--filter", &filter])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub fn wait_healthy(container: &str, timeout: Duration) -> bool {
    super::wait_until(timeout, || facts(container).health == "healthy")
}
