//! The promotion gate on plain containers: a real Prometheus finds the
//! service's containers through Docker (`docker_sd_configs`, as users
//! scrape containers whose addresses change) and scrapes the error ratio
//! each one reports. A green that reports errors fails the gate: it is
//! removed, blue keeps serving and the failing value is shown and
//! journaled. A green that reports none is promoted.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use support::docker::{docker, facts, sh, wait_healthy, Scope, WEB_HC};

/// The test web image, serving `/metrics` with `web_error_ratio 0.4` when
/// its memory limit is `$ERRORS_WHEN_MEM`, else `web_error_ratio 0`.
const WEB_METRICS: &str = "tuner-test/web-metrics:1";

const ENTRY: &str = r#"#!/bin/sh
lim=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null)
ratio=0
if [ -n "$ERRORS_WHEN_MEM" ] && [ "$lim" = "$ERRORS_WHEN_MEM" ]; then ratio=0.4; fi
echo ok > /tmp/healthz
echo "web_error_ratio $ratio" > /tmp/metrics
exec /bin/httpd -f -p 8080 -h /tmp
"#;

fn ensure_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("tuner-test-image-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("metrics.sh"), ENTRY).expect("entry");
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!("FROM {WEB_HC}\nCOPY metrics.sh /bin/metrics.sh\nENTRYPOINT [\"/bin/sh\",\"/bin/metrics.sh\"]\n"),
        )
        .expect("Dockerfile");
        sh(Command::new("docker")
            .args(["build", "-q", "-t", WEB_METRICS])
            .arg(dir.path()));
    });
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prometheus scraping every container of Compose project `project`
/// through the Docker socket, every second.
struct Prometheus {
    url: String,
    dir: tempfile::TempDir,
    _process: Process,
}

impl Prometheus {
    fn start(project: &str) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("tuner-test-gate-prom-")
            .tempdir()
            .expect("temp dir");
        let port = support::free_port();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: web\n    docker_sd_configs:\n      - host: unix:///var/run/docker.sock\n        refresh_interval: 1s\n        filters:\n          - name: label\n            values: ['com.docker.compose.project={project}']\n"
            ),
        )
        .expect("prometheus.yml");
        let process = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).expect("log"))
            .spawn()
            .expect("spawn prometheus");
        Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            _process: Process(process),
        }
    }

    fn instant(&self, promql: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "2", "-G"])
            .arg(format!("{}/api/v1/query", self.url))
            .arg("--data-urlencode")
            .arg(format!("query={promql}"))
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

const QUERY: &str = "max(web_error_ratio{job=\"web\"})";

fn config(dir: &Path, prometheus: &str) -> PathBuf {
    let path = dir.join("tuner.yaml");
    std::fs::write(
        &path,
        format!(
            "prometheus:\n  url: {prometheus}\npaths:\n  state_dir: state\ndeploy:\n  analysis:\n    interval: 1s\n    count: 10\n    checks:\n      - name: error_ratio\n        query: '{QUERY}'\n        max: 0.05\n"
        ),
    )
    .expect("config");
    path
}

fn tuner(cfg: &Path, args: &[&str]) -> Output {
    Command::new(support::tuner_bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env_remove("TUNER_DEPLOY_CRASH_AFTER")
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

/// One web container (1 CPU, 128M) scraped by its own Prometheus, the
/// error ratio seen once; `errors_on_new_limits` makes a 192M clone report
/// errors.
fn service(scope: &Scope, errors_on_new_limits: bool) -> (String, String, Prometheus) {
    ensure_image();
    let net = scope.network();
    let project = format!("{}-p", scope.prefix);
    let env = format!("ERRORS_WHEN_MEM={}", 192u64 << 20);
    let extra: Vec<&str> = if errors_on_new_limits {
        vec!["-e", &env]
    } else {
        Vec::new()
    };
    let blue = scope.run(&scope.name("web"), "web", WEB_METRICS, &net, &extra);
    assert!(
        wait_healthy(&blue, Duration::from_secs(60)),
        "{:?}",
        facts(&blue)
    );
    let prom = Prometheus::start(&project);
    assert!(
        support::wait_until(Duration::from_secs(60), || prom.instant(QUERY) == Some(0.0)),
        "Prometheus never scraped blue:\n{}",
        prom.log()
    );
    (blue, project, prom)
}

const ARGS: [&str; 6] = [
    "--health-timeout",
    "30s",
    "--health-interval",
    "1s",
    "--drain",
    "1s",
];

#[test]
fn a_green_reporting_errors_fails_the_gate_and_blue_keeps_serving() {
    let scope = Scope::new();
    let (blue, project, prom) = service(&scope, true);
    let cfg_dir = tempfile::tempdir().expect("cfg dir");
    let cfg = config(cfg_dir.path(), &prom.url);
    let mut args = vec!["deploy", "web", "0.75", "192M", "--project", &project];
    args.extend(ARGS);

    let mut dry = args.clone();
    dry.push("--dry-run");
    let out = tuner(&cfg, &dry);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("promotion gate: measure error_ratio <= 0.05"),
        "the plan shows the gate: {}",
        show(&out)
    );

    let out = tuner(&cfg, &args);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", show(&out), prom.log());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("phase analysis")
            && err.contains("promotion gate failed")
            && err.contains("measured 0.4")
            && err.contains("blue"),
        "{}",
        show(&out)
    );
    // Blue was never touched and still serves; green is gone.
    let f = facts(&blue);
    assert!(f.running && f.health == "healthy", "{f:?}");
    assert_eq!((f.nano_cpus, f.memory), (1_000_000_000, 128 << 20));
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
    ]);
    assert_eq!(left.lines().count(), 1, "green removed: {left}");
    // The failing value is journaled.
    let journal =
        std::fs::read_to_string(cfg_dir.path().join("state/journal.jsonl")).expect("journal");
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"measured\"") && l.contains("0.4") && l.contains("FAIL")),
        "{journal}"
    );
}

#[test]
fn a_green_within_its_checks_is_promoted() {
    let scope = Scope::new();
    let (blue, project, prom) = service(&scope, false);
    let cfg_dir = tempfile::tempdir().expect("cfg dir");
    let cfg = config(cfg_dir.path(), &prom.url);
    let mut args = vec!["deploy", "web", "0.75", "192M", "--project", &project];
    args.extend(ARGS);
    let out = tuner(&cfg, &args);
    assert!(out.status.success(), "{}\n{}", show(&out), prom.log());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Gate passed: error_ratio 0"),
        "{}",
        show(&out)
    );
    let green = facts(&scope.name("web"));
    assert_ne!(green.id, blue, "green took blue's place");
    assert_eq!((green.nano_cpus, green.memory), (750_000_000, 192 << 20));
    let journal =
        std::fs::read_to_string(cfg_dir.path().join("state/journal.jsonl")).expect("journal");
    assert_eq!(
        journal
            .lines()
            .filter(|l| l.contains("\"measured\"") && l.contains("pass"))
            .count(),
        10,
        "{journal}"
    );
}
