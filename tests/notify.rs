//! Notifications through a real Alertmanager (the Debian package's binary,
//! on a free loopback port, clustering off) whose webhook receiver is an
//! HTTP listener in this test: a real `tuner deploy` (in place, on a
//! busybox container) must arrive firing and then resolved, with its
//! numbers; an Alertmanager that is down is a warning and the deploy still
//! succeeds.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::docker::{ensure_images, wait_healthy, Scope, WEB_HC};

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
