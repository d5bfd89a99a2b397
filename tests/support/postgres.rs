//! A throwaway PostgreSQL 15 server: initdb in a temp dir, postgres on a free
//! loopback port. Postgres refuses to run as root, so under root (CI) the
//! server runs as the `postgres` user that Debian's package creates.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = "/usr/lib/postgresql/15/bin";
pub const PASSWORD: &str = "tuner-test";

pub struct PgServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

fn is_root() -> bool {
    // SAFETY-free check: `id -u` avoids a libc dependency in tests.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a Postgres binary as the right user.
fn pg_command(bin: &str) -> Command {
    let path = format!("{BIN}/{bin}");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

impl PgServer {
    /// Starts a server with `extra` lines appended to postgresql.conf.
    pub fn start(extra: &[&str]) -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("tuner-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            Command::new("chmod")
                .arg("755")
                .arg(dir.path())
                .status()
                .expect("chmod");
        }
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("write pwfile");
        if is_root() {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pwfile)
                .status()
                .expect("chown pw");
        }
        let out = pg_command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = super::free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = on\njit = off\nshared_buffers = 32MB\n{}\n",
            dir.path().display(),
            extra.join("\n")
        );
        let conf_path = data.join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path).unwrap_or_default();
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing).expect("write postgresql.conf");
        let mut server = PgServer {
            port,
            dir,
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let child = pg_command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        self.child = Some(child);
        let ok = super::wait_until(Duration::from_secs(30), || {
            Command::new(format!("{BIN}/pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        assert!(ok, "postgres did not become ready: {}", self.log());
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn auto_conf(&self) -> PathBuf {
        self.data_dir().join("postgresql.auto.conf")
    }

    pub fn dsn(&self) -> String {
        format!(
            "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The postmaster's PID. Signals go to it, not to our child: under root
    /// the child is `runuser`, which does not forward every signal.
    pub fn postmaster_pid(&self) -> Option<String> {
        let pidfile = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pidfile.lines().next().map(|l| l.trim().to_string())
    }

    fn signal_and_wait(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            match self.postmaster_pid() {
                Some(pid) => {
                    let _ = Command::new("kill").args([signal, &pid]).status();
                }
                None => {
                    let _ = child.kill();
                }
            }
            let _ = child.wait();
        }
    }

    /// Fast shutdown, waits for exit.
    pub fn stop(&mut self) {
        self.signal_and_wait("-INT");
    }

    /// Stops and starts again on the same data and port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Writes a script that restarts this server the way an operator would
    /// (fast shutdown of the running postmaster, if any, then `pg_ctl start -w`)
    /// and returns its path, for argv restarters. It exits non-zero when the
    /// server does not come up. The server it starts is not our child; `Drop`
    /// still stops it through `postmaster.pid`.
    pub fn restart_script(&self) -> PathBuf {
        let script = self.dir.path().join("restart.sh");
        let as_postgres = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let body = format!(
            "#!/bin/sh\nD='{data}'\npid=$(head -n 1 \"$D/postmaster.pid\" 2>/dev/null)\n\
             if [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null; then\n  kill -INT \"$pid\"\n  \
             while kill -0 \"$pid\" 2>/dev/null; do sleep 0.1; done\nfi\n\
             exec {as_postgres}{BIN}/pg_ctl -D \"$D\" -l '{log}' -w -t 30 start\n",
            data = self.data_dir().display(),
            log = self.dir.path().join("restart.log").display(),
        );
        std::fs::write(&script, body).expect("write restart script");
        Command::new("chmod")
            .arg("755")
            .arg(&script)
            .status()
            .expect("chmod restart script");
        script
    }

    /// What the server started by `restart_script` logged (pg_ctl's log).
    pub fn restart_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("restart.log")).unwrap_or_default()
    }

    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(format!("{BIN}/psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-At",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate shutdown: the data dir is thrown away anyway.
        self.signal_and_wait("-QUIT");
    }
}
