//! A throwaway HAProxy in front of busybox httpd servers, all on free
//! loopback ports in temp dirs. Each guard kills its process on `Drop`,
//! also when the test fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const HAPROXY: &str = "/usr/sbin/haproxy";
pub const BUSYBOX: &str = "/bin/busybox";

/// `/bin/busybox httpd` serving `/id` (its marker), `/health` (`ok`) and
/// `/cgi-bin/slow?<seconds>` (`slow-<marker>` after that long), the
/// in-flight request a drain must wait for.
pub struct WebServer {
    pub port: u16,
    pub marker: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl WebServer {
    pub fn start(marker: &str) -> WebServer {
        let dir = tempfile::Builder::new()
            .prefix("tuner-web-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("id"), format!("{marker}\n")).expect("write id");
        std::fs::write(dir.path().join("health"), "ok\n").expect("write health");
        let cgi = dir.path().join("cgi-bin");
        std::fs::create_dir(&cgi).expect("mkdir cgi-bin");
        let slow = cgi.join("slow");
        std::fs::write(
            &slow,
            format!("#!/bin/sh\nsleep \"${{QUERY_STRING:-1}}\"\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow-{marker}\\n'\n"),
        )
        .expect("write cgi script");
        std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod cgi script");
        let port = super::free_port();
        let child = Command::new(BUSYBOX)
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn busybox httpd");
        let server = WebServer {
            port,
            marker: marker.to_string(),
            dir,
            child: Some(child),
        };
        let up = super::wait_until(Duration::from_secs(10), || {
            http_get(port, "/health")
                .map(|(s, _)| s == 200)
                .unwrap_or(false)
        });
        assert!(up, "busybox httpd {marker} did not answer on port {port}");
        server
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Makes `/health` answer 404, so HAProxy's check fails.
    pub fn break_health(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("health"));
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// HAProxy in the foreground (`-db`) with an admin socket and one frontend
/// in front of backend `app`.
pub struct HaproxyServer {
    pub frontend_port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl HaproxyServer {
    /// `servers`: (name, address) of the backend's config-file servers.
    pub fn start(servers: &[(&str, String)]) -> HaproxyServer {
        HaproxyServer::start_with(servers, false)
    }

    /// As users run it for reloads: master-worker (`-W`, reloaded by
    /// `kill -USR2`), reading `server-state` in its dir back on each start
    /// (`server-state-file` + `load-server-state-from-file global`).
    pub fn start_reloadable(servers: &[(&str, String)]) -> HaproxyServer {
        HaproxyServer::start_with(servers, true)
    }

    fn start_with(servers: &[(&str, String)], reloadable: bool) -> HaproxyServer {
        let dir = tempfile::Builder::new()
            .prefix("tuner-haproxy-")
            .tempdir()
            .expect("temp dir");
        let frontend_port = super::free_port();
        let socket = dir.path().join("haproxy.sock");
        let (state_global, state_defaults) = if reloadable {
            (
                format!(
                    "    server-state-file {}\n",
                    dir.path().join("server-state").display()
                ),
                "    load-server-state-from-file global\n",
            )
        } else {
            (String::new(), "")
        };
        let mut cfg = format!(
            "global\n    stats socket {} mode 600 level admin\n\
             \x20   stats socket {}/operator.sock mode 600 level operator\n    maxconn 2000\n{state_global}\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n{state_defaults}\
             frontend fe\n    bind 127.0.0.1:{frontend_port}\n    default_backend app\n\
             backend app\n    balance roundrobin\n    option httpchk GET /health\n\
             \x20   default-server check inter 500ms fastinter 100ms downinter 500ms rise 1 fall 2\n",
            socket.display(),
            dir.path().display()
        );
        for (name, address) in servers {
            cfg.push_str(&format!("    server {name} {address}\n"));
        }
        // A backend whose algorithm cannot take dynamic servers.
        cfg.push_str("backend fixed\n    balance static-rr\n");
        let cfg_path = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg_path, cfg).expect("write haproxy.cfg");
        let check = Command::new(HAPROXY)
            .arg("-c")
            .arg("-f")
            .arg(&cfg_path)
            .output()
            .expect("run haproxy -c");
        assert!(
            check.status.success(),
            "haproxy.cfg invalid: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log file");
        let mut command = Command::new(HAPROXY);
        if reloadable {
            command.arg("-W");
        }
        let child = command
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn haproxy");
        let mut server = HaproxyServer {
            frontend_port,
            dir,
            child: Some(child),
        };
        let up = super::wait_until(Duration::from_secs(10), || {
            server.is_running()
                && std::os::unix::net::UnixStream::connect(server.socket()).is_ok()
                && TcpStream::connect(("127.0.0.1", frontend_port)).is_ok()
        });
        assert!(up, "haproxy did not start: {}", server.log());
        server
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("haproxy.sock")
    }

    /// The `server-state-file` of a reloadable HAProxy.
    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join("server-state")
    }

    /// Reloads a reloadable HAProxy as users do (`kill -USR2` to the
    /// master) and waits until the new worker has loaded its config.
    pub fn reload(&mut self) {
        let loaded = |log: &str| log.matches("Loading success").count();
        let before = loaded(&self.log());
        let pid = self.child.as_ref().expect("haproxy running").id();
        let status = Command::new("kill")
            .args(["-USR2", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -USR2 {pid} failed");
        let done = super::wait_until(Duration::from_secs(20), || {
            loaded(&self.log()) > before
                && std::os::unix::net::UnixStream::connect(self.socket()).is_ok()
        });
        assert!(done, "haproxy did not reload: {}", self.log());
    }

    /// A second socket at `level operator`, for permission errors.
    pub fn operator_socket(&self) -> PathBuf {
        self.dir.path().join("operator.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .map(|c| matches!(c.try_wait(), Ok(None)))
            .unwrap_or(false)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `GET path` through the frontend.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.frontend_port, path)
    }
}

impl HaproxyServer {
    /// Kills HAProxy now (also done on `Drop`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A master (`-W`) stops its workers on SIGTERM; SIGKILL could
            // leave them listening.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let stopped = super::wait_until(Duration::from_secs(5), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !stopped {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for HaproxyServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A blocking HTTP/1.0 GET to 127.0.0.1:`port`: (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
    let mut raw = Vec::new();
    stream.take(1 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
