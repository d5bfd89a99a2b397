//! Real servers for integration tests, each on a free loopback port in its own
//! temp dir, each stopped by `Drop` even when the test fails.
#![allow(dead_code)]

pub mod cadvisor;
pub mod compose;
pub mod config;
pub mod docker;
pub mod haproxy;
pub mod load;
pub mod pgbench;
pub mod postgres;
pub mod prometheus;
pub mod secured;
pub mod swap;
pub mod swarm;
pub mod tune;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A free loopback port for a process we start ourselves.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A free loopback port below 32768 for Docker to publish: ports in the
/// ephemeral range can be held by TIME_WAIT sockets and make docker-proxy fail.
pub fn free_publish_port() -> u16 {
    let seed =
        std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64 ^ rand_nanos();
    for i in 0..2000u64 {
        let port = 20000
            + ((seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i * 7919))
                % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-32000");
}

fn rand_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Polls `check` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// The built `tuner` binary, for tests that run the CLI as a user would.
pub fn tuner_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tuner"))
}
