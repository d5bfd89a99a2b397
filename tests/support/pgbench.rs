//! A closed-loop pgbench load: a fixed number of clients, each starting its
//! next transaction as soon as the last one commits, so the server's commit
//! speed sets the throughput (unlike `tune::WriteLoad`, which is paced: an
//! open loop). Bounded in count (`-t` per client) and in time (killed at
//! `max_duration`, or when dropped), and only ever against 127.0.0.1.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::postgres::{PgServer, BIN, PASSWORD};

fn pgbench(pg: &PgServer) -> Command {
    let mut c = Command::new(format!("{BIN}/pgbench"));
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &pg.port.to_string(),
        "-U",
        "postgres",
    ])
    .env("PGPASSWORD", PASSWORD);
    c
}

/// `pgbench -i -s scale` into the `postgres` database: `scale` × 100,000
/// accounts (about 15 MB each), so a scale of 10 outgrows the test
/// server's 32 MB of shared buffers and every checkpoint is followed by a
/// burst of full-page images.
pub fn init(pg: &PgServer, scale: u32) {
    let out = pgbench(pg)
        .args(["-i", "-q", "-s", &scale.to_string(), "postgres"])
        .output()
        .expect("run pgbench -i");
    assert!(
        out.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Pgbench {
    child: Arc<Mutex<Option<Child>>>,
    stop: Arc<AtomicBool>,
    pub log: PathBuf,
}

impl Pgbench {
    /// The built-in TPC-B-like script with `clients` clients on 2 threads,
    /// each running at most `per_client` transactions; killed after
    /// `max_duration` whatever the test does. Output goes to `pgbench.log`
    /// in the server's folder.
    pub fn start(pg: &PgServer, clients: u32, per_client: u64, max_duration: Duration) -> Pgbench {
        let log = pg.path().join("pgbench.log");
        let child = pgbench(pg)
            .args(["-c", &clients.to_string(), "-j", "2"])
            .args(["-t", &per_client.to_string(), "postgres"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("pgbench log"))
            .spawn()
            .expect("spawn pgbench");
        let child = Arc::new(Mutex::new(Some(child)));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (child.clone(), stop.clone());
        let deadline = Instant::now() + max_duration;
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            kill(&c);
        });
        Pgbench { child, stop, log }
    }

    /// Whether pgbench is still running (it ends early on an error).
    pub fn running(&self) -> bool {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        kill(&self.child);
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn kill(child: &Mutex<Option<Child>>) {
    let mut guard = child.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mut c) = guard.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Pgbench {
    fn drop(&mut self) {
        self.stop();
    }
}
