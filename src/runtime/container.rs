//! What the core knows about a container, in tuner's own terms: the trait
//! returns these, never an engine's wire types, so the deploy plan, the
//! levers and the restarter read the same facts whichever engine runs them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::limits::{Limits, MemoryUsage};

/// Health as the engine reports it, or `None` when the container has no healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::None => "no healthcheck",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        })
    }
}

/// The last run of a container's healthcheck, for "why is green unhealthy".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    pub exit_code: i64,
    pub output: String,
}

/// A container's healthcheck, runnable with `Runtime::exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCommand {
    pub argv: Vec<String>,
    /// How long one run may take (the engine's default, 30 s, when unset).
    pub timeout: std::time::Duration,
}

impl HealthCommand {
    /// From the engine's `Test` list: `["CMD", args..]` or
    /// `["CMD-SHELL", "cmd"]`; `NONE`, empty or inherited is `None`.
    pub fn from_test(test: &[String], timeout_ns: Option<i64>) -> Option<HealthCommand> {
        let argv = match test.split_first() {
            Some((kind, args)) if kind == "CMD" && !args.is_empty() => args.to_vec(),
            Some((kind, [cmd])) if kind == "CMD-SHELL" => {
                vec!["/bin/sh".into(), "-c".into(), cmd.clone()]
            }
            _ => return None,
        };
        let timeout = match timeout_ns {
            Some(ns) if ns > 0 => std::time::Duration::from_nanos(ns as u64),
            _ => std::time::Duration::from_secs(30),
        };
        Some(HealthCommand { argv, timeout })
    }

    /// `wget -q -O /dev/null http://127.0.0.1:8080/health`, for messages.
    pub fn display(&self) -> String {
        self.argv.join(" ")
    }
}

/// A volume or bind mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `volume`, `bind`, `tmpfs`...
    pub kind: String,
    /// The volume's name (`None` for binds).
    pub name: Option<String>,
    pub destination: String,
}

/// A container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `8080/tcp`.
    pub port: String,
    /// `127.0.0.1`, `0.0.0.0` or empty.
    pub host_ip: String,
    pub host_port: String,
}

/// The container's address on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAddress {
    pub network: String,
    /// Empty while the container is not running.
    pub ip: String,
}

/// One container as inspected. The fields shown by `tuner deploy status`
/// are serialised; the rest is for the core and stays out of the JSON
/// output, which predates them.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    /// `running`, `exited`, `created`...
    pub state: String,
    pub running: bool,
    pub exit_code: i64,
    pub health: Health,
    pub limits: Limits,
    #[serde(skip)]
    pub labels: HashMap<String, String>,
    /// The engine is bringing it back by its restart policy.
    #[serde(skip)]
    pub restarting: bool,
    /// Its last exit was the kernel's OOM killer.
    #[serde(skip)]
    pub oom_killed: bool,
    /// The image or container defines a healthcheck (and not `NONE`).
    #[serde(skip)]
    pub has_healthcheck: bool,
    #[serde(skip)]
    pub last_check: Option<CheckRun>,
    /// The healthcheck as a command to exec (`CMD-SHELL x` becomes
    /// `/bin/sh -c x`), with its own timeout; `None` without one.
    #[serde(skip)]
    pub healthcheck: Option<HealthCommand>,
    #[serde(skip)]
    pub mounts: Vec<Mount>,
    /// Live port bindings, sorted by container port.
    #[serde(skip)]
    pub published: Vec<Published>,
    /// Exposed container ports (`8080/tcp`), sorted.
    #[serde(skip)]
    pub exposed: Vec<String>,
    /// Sorted by network name.
    #[serde(skip)]
    pub networks: Vec<NetworkAddress>,
    #[serde(skip)]
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL, when the container sets it.
    #[serde(skip)]
    pub stop_timeout: Option<i64>,
}

impl Container {
    /// Running and, when it has a healthcheck, healthy.
    pub fn serving(&self) -> bool {
        self.running && matches!(self.health, Health::Healthy | Health::None)
    }

    /// Its address on the first network (by name) that gave it one.
    pub fn first_ip(&self) -> Option<&str> {
        self.networks
            .iter()
            .map(|n| n.ip.as_str())
            .find(|ip| !ip.is_empty())
    }
}

/// The engine behind a runtime, for plans and `tuner status --health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub version: String,
    /// The API version the engine speaks.
    pub api_version: String,
    /// CPUs the engine can give containers.
    pub cpus: i64,
}

/// One reading of what a container uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    /// When the engine took the sample.
    pub read_at: DateTime<Utc>,
    /// CPU time used since the container started: a rate needs two readings.
    pub cpu_seconds: f64,
    pub memory: MemoryUsage,
    /// OOM kills inside the container since the time asked for; `None`
    /// when not asked.
    pub oom_events: Option<u64>,
}

/// A file to put into a container (which may be stopped).
#[derive(Debug, Clone, Copy)]
pub struct FileIn<'a> {
    /// A plain file name, no directories.
    pub name: &'a str,
    pub contents: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// How to create green, a clone of blue with new limits. What the engine
/// creates stays in the engine's own terms (`request`); the core only reads
/// what the plan shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneSpec {
    /// The engine-specific create request, handed back to `create_clone`.
    pub request: serde_json::Value,
    /// Blue and green as two documents of the same shape, for the plan's
    /// field-by-field diff.
    pub blue_view: serde_json::Value,
    pub green_view: serde_json::Value,
    /// Networks green joins after it is created, besides its first one.
    pub extra_networks: Vec<String>,
    /// Blue's fixed host ports that green publishes elsewhere
    /// (`8080/tcp -> 127.0.0.1:8080`): two containers cannot share them.
    pub moved_ports: Vec<String>,
    /// Where green will be published (`127.0.0.1:<port>`), when chosen at
    /// plan time.
    pub address: Option<String>,
}
