//! A single-node Swarm for tests, services on an attachable overlay with
//! DNS round robin (no routing mesh here: no IPVS), and HAProxy in a
//! container on that overlay resolving the tasks through Docker's DNS,
//! published on 127.0.0.1.
//!
//! Leaving a swarm briefly disconnects every container on the engine from
//! its networks, so the node is left only when `TUNER_TEST_LEAVE_SWARM=1`
//! (the separate `make test` step) and only if the test joined it.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::docker::{docker, docker_try, ensure_images, sh};

pub const HAPROXY_IMAGE: &str = "tswarm/haproxy:1";

/// This engine as a Swarm manager for one test.
pub struct SwarmNode {
    joined: bool,
}

impl SwarmNode {
    pub fn ensure() -> SwarmNode {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        let joined = state != "active";
        if joined {
            let out = docker_try(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
            // Another test process may have initialised it meanwhile.
            let now = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
            assert_eq!(
                now,
                "active",
                "swarm init: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        SwarmNode { joined }
    }
}

impl Drop for SwarmNode {
    fn drop(&mut self) {
        if self.joined && std::env::var("TUNER_TEST_LEAVE_SWARM").as_deref() == Ok("1") {
            let _ = docker_try(&["swarm", "leave", "--force"]);
            let _ = docker_try(&["network", "rm", "docker_gwbridge"]);
        }
    }
}

/// Names for one test (`tswarm-<pid>-<n>-...`); its services, containers
/// and overlay are removed on drop, even after a panic.
pub struct SwarmScope {
    pub prefix: String,
    pub network: String,
    services: Vec<String>,
    containers: Vec<String>,
    volumes: Vec<String>,
}

impl SwarmScope {
    pub fn new() -> SwarmScope {
        static N: AtomicUsize = AtomicUsize::new(0);
        ensure_images();
        let prefix = format!(
            "tswarm-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let network = format!("{prefix}-net");
        docker(&[
            "network",
            "create",
            "--driver",
            "overlay",
            "--attachable",
            &network,
        ]);
        SwarmScope {
            prefix,
            network,
            services: Vec::new(),
            containers: Vec::new(),
            volumes: Vec::new(),
        }
    }

    /// A handle for reading from another thread; owns nothing.
    pub fn probe() -> Probe {
        Probe
    }

    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    /// Creates a replicated service of `image` on the overlay (dnsrr),
    /// 1 CPU / 256M, stop grace 3 s, and waits until it has converged.
    pub fn service(&mut self, what: &str, image: &str, replicas: u32, extra: &[&str]) -> String {
        self.service_cmd(what, image, replicas, extra, &[])
    }

    /// Like `service`, with `command` after the image.
    pub fn service_cmd(
        &mut self,
        what: &str,
        image: &str,
        replicas: u32,
        extra: &[&str],
        command: &[&str],
    ) -> String {
        let name = self.name(what);
        let replicas = replicas.to_string();
        let mut args = vec![
            "service",
            "create",
            "--detach=false",
            "--quiet",
            "--name",
            &name,
            "--network",
            &self.network,
            "--endpoint-mode",
            "dnsrr",
            "--replicas",
            &replicas,
            "--limit-cpu",
            "1",
            "--limit-memory",
            "256M",
            "--stop-grace-period",
            "3s",
        ];
        args.extend_from_slice(extra);
        args.push(image);
        args.extend_from_slice(command);
        self.services.push(name.clone());
        let out = docker_try(&args);
        assert!(
            out.status.success(),
            "service create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        name
    }

    pub fn volume(&mut self, what: &str) -> String {
        let name = self.name(what);
        self.volumes.push(name.clone());
        name
    }

    /// The service's spec version index.
    pub fn version(&self, service: &str) -> u64 {
        docker(&[
            "service",
            "inspect",
            service,
            "--format",
            "{{.Version.Index}}",
        ])
        .parse()
        .expect("version index")
    }

    /// NanoCPUs and MemoryBytes of the service's spec.
    pub fn limits(&self, service: &str) -> (i64, i64) {
        let out = docker(&[
            "service",
            "inspect",
            service,
            "--format",
            "{{.Spec.TaskTemplate.Resources.Limits.NanoCPUs}} {{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}}",
        ]);
        let mut it = out
            .split_whitespace()
            .map(|v| v.parse::<i64>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    /// Containers of the service Docker calls healthy right now.
    pub fn healthy(&self, service: &str) -> usize {
        Probe.healthy(service)
    }

    /// Memory limits (bytes) of the service's running containers.
    pub fn running_memory(&self, service: &str) -> Vec<i64> {
        let filter = format!("label=com.docker.swarm.service.name={service}");
        let ids = docker(&["ps", "-q", "--filter", &filter]);
        ids.lines()
            .filter(|l| !l.is_empty())
            .filter_map(|id| {
                let out = docker_try(&["inspect", "--format", "{{.HostConfig.Memory}}", id]);
                String::from_utf8_lossy(&out.stdout).trim().parse().ok()
            })
            .collect()
    }

    /// HAProxy on the overlay, balancing the tasks of `service` (found as
    /// `tasks.<service>` through Docker's DNS), published on
    /// 127.0.0.1:`port`.
    pub fn haproxy(&mut self, service: &str, port: u16) -> tempfile::TempDir {
        ensure_haproxy_image();
        let dir = tempfile::Builder::new()
            .prefix("tswarm-haproxy-")
            .tempdir()
            .expect("temp dir");
        let cfg = format!(
            "global\n    maxconn 2000\nresolvers docker\n    nameserver dns 127.0.0.11:53\n    resolve_retries 3\n    timeout resolve 200ms\n    timeout retry 200ms\n    hold valid 1s\n    hold other 1s\n    hold refused 1s\n    hold nx 1s\n    hold timeout 1s\n    hold obsolete 0s\n    accepted_payload_size 8192\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n    retries 3\n    option redispatch 1\nfrontend fe\n    bind :8000\n    default_backend app\nbackend app\n    balance roundrobin\n    option httpchk GET /healthz\n    default-server check inter 300ms fall 1 rise 2 resolvers docker init-addr none resolve-prefer ipv4\n    server-template task 8 tasks.{service}:8080\n"
        );
        std::fs::write(dir.path().join("haproxy.cfg"), cfg).expect("write haproxy.cfg");
        let name = self.name("lb");
        self.containers.push(name.clone());
        let mount = format!("{}:/cfg:ro", dir.path().display());
        let publish = format!("127.0.0.1:{port}:8000");
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &self.network,
            "-p",
            &publish,
            "-v",
            &mount,
            HAPROXY_IMAGE,
            "-f",
            "/cfg/haproxy.cfg",
        ]);
        dir
    }
}

impl Drop for SwarmScope {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker_try(&["rm", "-f", c]);
        }
        for s in &self.services {
            let _ = docker_try(&["service", "rm", s]);
        }
        // Task containers go away asynchronously; the overlay only after them.
        for _ in 0..100 {
            let filter = format!("name={}", self.prefix);
            let out = docker_try(&["ps", "-aq", "--filter", &filter]);
            if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        for v in &self.volumes {
            let _ = docker_try(&["volume", "rm", "-f", v]);
        }
        for _ in 0..20 {
            if docker_try(&["network", "rm", &self.network])
                .status
                .success()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// HAProxy from the host's Debian package in a `FROM scratch` image: the
/// binary, every library `ldd` names and the ELF interpreter.
pub fn ensure_haproxy_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if docker_try(&["image", "inspect", HAPROXY_IMAGE])
            .status
            .success()
        {
            return;
        }
        let dir = tempfile::Builder::new()
            .prefix("tswarm-haproxy-image-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("root");
        let ldd = sh(Command::new("ldd").arg("/usr/sbin/haproxy"));
        let mut files = vec!["/usr/sbin/haproxy".to_string()];
        for line in ldd.lines() {
            if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
                files.push(path.to_string());
            }
        }
        for f in &files {
            let dest = root.join(f.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            std::fs::copy(f, &dest).unwrap_or_else(|e| panic!("copy {f}: {e}"));
        }
        std::fs::create_dir_all(root.join("etc")).expect("etc");
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/nonexistent\n")
            .expect("passwd");
        std::fs::create_dir_all(root.join("tmp")).expect("tmp");
        sh(Command::new("tar")
            .arg("-cf")
            .arg(dir.path().join("rootfs.tar"))
            .arg("-C")
            .arg(&root)
            .arg("."));
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nADD rootfs.tar /\nENTRYPOINT [\"/usr/sbin/haproxy\"]\n",
        )
        .expect("Dockerfile");
        sh(Command::new("docker")
            .args(["build", "-q", "-t", HAPROXY_IMAGE])
            .arg(dir.path()));
    });
}

/// Reads service state from any thread.
pub struct Probe;

impl Probe {
    pub fn healthy(&self, service: &str) -> usize {
        let filter = format!("label=com.docker.swarm.service.name={service}");
        let out = docker_try(&[
            "ps",
            "-q",
            "--filter",
            &filter,
            "--filter",
            "health=healthy",
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }
}

/// A minimal tuner.yaml (state beside it) for deploys of Swarm services.
pub fn config(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tswarm-cfg-")
        .tempdir()
        .expect("temp dir");
    let text = format!(
        "prometheus:\n  url: http://127.0.0.1:9\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\nprofile: development\npaths:\n  state_dir: state\nmetrics:\n  io_wait:\n    query: up\n    unit: percent\n    window: 1m\nprofiles:\n  development:\n    io_wait: \"< 25%\"\n{extra}"
    );
    std::fs::write(dir.path().join("tuner.yaml"), text).expect("write tuner.yaml");
    dir
}

/// A real Prometheus on loopback scraping `target` (host:port) every
/// second; killed on drop.
pub struct Scraper {
    pub url: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Scraper {
    pub fn start(target: &str) -> Scraper {
        let dir = tempfile::Builder::new()
            .prefix("tswarm-prom-")
            .tempdir()
            .expect("temp dir");
        let port = super::free_port();
        let cfg = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), cfg).expect("write prometheus.yml");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start prometheus (scripts/setup.sh installs it)");
        Scraper {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        }
    }

    /// The value of an instant query, when there is one.
    pub fn instant(&self, query: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "2",
                &format!("{}/api/v1/query", self.url),
                "--data-urlencode",
            ])
            .arg(format!("query={query}"))
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
