//! `config/services.yaml`: which services exist, their base sizes, the tier
//! from which each is enabled, the multipliers per tier, the host's own
//! reserve, and the capacity queries. One YAML parse (unknown keys are
//! errors), then checks that gather every problem as `file:line:col: key: problem`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::score::Tier;
use crate::config::load::locate;
use crate::config::units::{self, Limit};

pub const DEFAULT_PATH: &str = "config/services.yaml";

/// Docker refuses memory limits under 6 MB.
const MIN_MEMORY: u64 = 6 << 20;

/// How far a service may shrink to fit a small host unless it says
/// otherwise: the lower bounds `watch` keeps too (seed 001).
const DEFAULT_MIN_CPUS: f64 = 0.1;
const DEFAULT_MIN_MEMORY: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("services file {} not found; pass --services PATH (the default is {DEFAULT_PATH})", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read services file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .problems.join("\n"))]
    Invalid { problems: Vec<String> },
}

/// A number or a string with a unit (`1.5`, `"1.5"`, `768M`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Num(f64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Num(n) => n.to_string(),
            Scalar::Text(t) => t.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    host_reserve: Option<RawReserve>,
    #[serde(default)]
    multipliers: BTreeMap<Tier, Scalar>,
    #[serde(default)]
    reservation: Option<Scalar>,
    #[serde(default)]
    data_path: Option<PathBuf>,
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    capacity: Option<RawCapacity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReserve {
    #[serde(default)]
    cpu_percent: Option<Scalar>,
    #[serde(default)]
    memory: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    cpus: Scalar,
    memory: Scalar,
    #[serde(default)]
    enabled_from: Option<Tier>,
    #[serde(default)]
    postgres: bool,
    #[serde(default)]
    min_cpus: Option<Scalar>,
    #[serde(default)]
    min_memory: Option<Scalar>,
    #[serde(default)]
    requests: Option<String>,
    #[serde(default)]
    cpu: Option<String>,
    #[serde(default)]
    target_load: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapacity {
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    target_utilisation: Option<Scalar>,
    #[serde(default)]
    storage_buffer: Option<Scalar>,
    #[serde(default)]
    transactions: Option<String>,
    #[serde(default)]
    wal_bytes: Option<String>,
    #[serde(default)]
    storage_bytes: Option<String>,
    #[serde(default)]
    free_bytes: Option<String>,
}

/// The checked file.
#[derive(Debug, Clone)]
pub struct ServicesFile {
    pub path: PathBuf,
    pub text: String,
    pub reserve_cpu_percent: f64,
    pub reserve_memory: u64,
    pub multipliers: BTreeMap<Tier, f64>,
    /// Reservation as a share of the limit (0-1).
    pub reservation: f64,
    pub data_path: PathBuf,
    /// In file order: later services are left out first when the host is short.
    pub services: Vec<ServiceSpec>,
    pub capacity: CapacitySpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    pub cpus: f64,
    pub memory: u64,
    pub enabled_from: Tier,
    pub postgres: bool,
    pub min_cpus: f64,
    pub min_memory: u64,
    /// PromQL: requests per second, for the capacity plan.
    pub requests: Option<String>,
    /// PromQL: CPU seconds per second the service uses.
    pub cpu: Option<String>,
    pub target_load: TargetLoad,
}

/// The load a capacity plan sizes for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TargetLoad {
    /// Times the measured peak (`2x`).
    TimesPeak(f64),
    /// Requests per second (`500`).
    PerSecond(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CapacitySpec {
    pub window: Duration,
    /// 0-1: seed 004's 70%.
    pub target_utilisation: f64,
    /// Growth buffer, 0-1: seed 004's 30%.
    pub storage_buffer: f64,
    pub transactions: String,
    pub wal_bytes: String,
    pub storage_bytes: String,
    pub free_bytes: String,
}

impl Default for CapacitySpec {
    /// Series the demo stack has: postgres-exporter's pg_stat_database and
    /// the custom pg_wal query, node-exporter's filesystem.
    fn default() -> CapacitySpec {
        CapacitySpec {
            window: Duration::from_secs(3600),
            target_utilisation: 0.7,
            storage_buffer: 0.3,
            transactions: "sum(rate(pg_stat_database_xact_commit[1m]))".into(),
            wal_bytes: "sum(pg_wal_lsn_bytes)".into(),
            storage_bytes: "sum(pg_database_size_bytes)".into(),
            free_bytes: "max(node_filesystem_avail_bytes{mountpoint=\"/\"})".into(),
        }
    }
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<ServicesFile, ServicesError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ServicesError::Missing {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(ServicesError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    from_str(path, &text)
}

/// Parses and checks `text` as if read from `path`.
pub fn from_str(path: &Path, text: &str) -> Result<ServicesFile, ServicesError> {
    let raw: RawFile = crate::config::yaml::parse(path, text)
        .map_err(|p| ServicesError::Invalid { problems: vec![p] })?;
    let mut problems = Vec::new();
    let at = |keys: &[&str]| locate(path, text, keys);
    let mut bad = |keys: &[&str], problem: String| {
        problems.push(format!("{}: {}: {problem}", at(keys), keys.join(".")));
    };

    let reserve = raw.host_reserve.as_ref();
    let reserve_cpu_percent = match reserve.and_then(|r| r.cpu_percent.as_ref()) {
        None => 0.0,
        Some(s) => match units::parse_percent(&s.text()) {
            Ok(p) if (0.0..100.0).contains(&p) => p,
            Ok(p) => {
                bad(
                    &["host_reserve", "cpu_percent"],
                    format!("{p}% is not between 0% and 100%"),
                );
                0.0
            }
            Err(e) => {
                bad(&["host_reserve", "cpu_percent"], e.to_string());
                0.0
            }
        },
    };
    let reserve_memory = match reserve.and_then(|r| r.memory.as_ref()) {
        None => 0,
        Some(s) => units::parse_bytes(&s.text()).unwrap_or_else(|e| {
            bad(&["host_reserve", "memory"], e.to_string());
            0
        }),
    };
    let mut multipliers = BTreeMap::new();
    for tier in Tier::ALL {
        let value = match raw.multipliers.get(&tier) {
            None => tier.default_multiplier(),
            Some(s) => match positive(&s.text()) {
                Ok(v) => v,
                Err(e) => {
                    bad(&["multipliers", tier.name()], e);
                    tier.default_multiplier()
                }
            },
        };
        multipliers.insert(tier, value);
    }
    let reservation = match &raw.reservation {
        None => 0.25,
        Some(s) => match units::parse_percent(&s.text()) {
            Ok(p) if (0.0..=100.0).contains(&p) => p / 100.0,
            Ok(p) => {
                bad(&["reservation"], format!("{p}% is not between 0% and 100%"));
                0.25
            }
            Err(e) => {
                bad(&["reservation"], e.to_string());
                0.25
            }
        },
    };

    if raw.services.is_empty() {
        bad(&["services"], "at least one service is required".into());
    }
    let mut services = Vec::new();
    for (name, s) in &raw.services {
        let key = |k: &'static str| [String::from("services"), name.clone(), k.to_string()];
        let mut check = |k: &'static str, r: Result<f64, String>| -> f64 {
            r.unwrap_or_else(|e| {
                let keys = key(k);
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                bad(&keys, e);
                0.0
            })
        };
        let cpus = check("cpus", positive(&s.cpus.text()));
        let memory = check("memory", memory_of(&s.memory.text())) as u64;
        let min_cpus = match &s.min_cpus {
            Some(v) => check(
                "min_cpus",
                positive(&v.text()).and_then(|m| not_above(m, cpus, "cpus")),
            ),
            None => DEFAULT_MIN_CPUS.min(cpus),
        };
        let min_memory = match &s.min_memory {
            Some(v) => check(
                "min_memory",
                memory_of(&v.text()).and_then(|m| not_above(m, memory as f64, "memory")),
            ) as u64,
            None => DEFAULT_MIN_MEMORY.min(memory),
        };
        let target_load = match &s.target_load {
            None => TargetLoad::TimesPeak(1.0),
            Some(v) => {
                let t = v.text();
                let r = match t.trim().strip_suffix('x') {
                    Some(times) => positive(times).map(TargetLoad::TimesPeak),
                    None => positive(&t).map(TargetLoad::PerSecond),
                };
                match r {
                    Ok(l) => l,
                    Err(e) => {
                        check(
                            "target_load",
                            Err(format!(
                                "{e} (a number of requests/s, or `2x` the measured peak)"
                            )),
                        );
                        TargetLoad::TimesPeak(1.0)
                    }
                }
            }
        };
        services.push((
            at(&["services", name]),
            ServiceSpec {
                name: name.clone(),
                cpus,
                memory,
                enabled_from: s.enabled_from.unwrap_or(Tier::Minimal),
                postgres: s.postgres,
                min_cpus,
                min_memory,
                requests: s.requests.clone(),
                cpu: s.cpu.clone(),
                target_load,
            },
        ));
    }
    if services.iter().filter(|(_, s)| s.postgres).count() > 1 {
        bad(
            &["services"],
            "more than one service says `postgres: true`".into(),
        );
    }
    // BTreeMap parses in name order; the file's order is the priority.
    services.sort_by_key(|(pos, _)| line_of(pos));
    let services = services.into_iter().map(|(_, s)| s).collect();

    let mut capacity = CapacitySpec::default();
    if let Some(c) = &raw.capacity {
        if let Some(w) = &c.window {
            match units::parse_duration_within(w, Limit::Window) {
                Ok(d) => capacity.window = d,
                Err(e) => bad(&["capacity", "window"], e.to_string()),
            }
        }
        for (key, value, slot) in [
            (
                "target_utilisation",
                &c.target_utilisation,
                &mut capacity.target_utilisation,
            ),
            (
                "storage_buffer",
                &c.storage_buffer,
                &mut capacity.storage_buffer,
            ),
        ] {
            if let Some(v) = value {
                match units::parse_percent(&v.text()) {
                    Ok(p) if p > 0.0 && p <= 100.0 => *slot = p / 100.0,
                    Ok(p) => bad(
                        &["capacity", key],
                        format!("{p}% is not between 0% and 100%"),
                    ),
                    Err(e) => bad(&["capacity", key], e.to_string()),
                }
            }
        }
        for (value, slot) in [
            (&c.transactions, &mut capacity.transactions),
            (&c.wal_bytes, &mut capacity.wal_bytes),
            (&c.storage_bytes, &mut capacity.storage_bytes),
            (&c.free_bytes, &mut capacity.free_bytes),
        ] {
            if let Some(q) = value {
                *slot = q.clone();
            }
        }
    }

    if !problems.is_empty() {
        return Err(ServicesError::Invalid { problems });
    }
    Ok(ServicesFile {
        path: path.to_path_buf(),
        text: text.to_string(),
        reserve_cpu_percent,
        reserve_memory,
        multipliers,
        reservation,
        data_path: raw.data_path.unwrap_or_else(default_data_path),
        services,
        capacity,
    })
}

impl ServicesFile {
    /// Problems for services that are not in the Compose project (`known`),
    /// each at its line.
    pub fn unknown_services(&self, known: &[String], compose_file: &Path) -> Vec<String> {
        self.services
            .iter()
            .filter(|s| !known.contains(&s.name))
            .map(|s| {
                format!(
                    "{}: services.{}: no service {:?} in {} (its services: {}); remove it or fix the name",
                    locate(&self.path, &self.text, &["services", &s.name]),
                    s.name,
                    s.name,
                    compose_file.display(),
                    known.join(", ")
                )
            })
            .collect()
    }

    pub fn postgres(&self) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.postgres)
    }
}

/// Where Docker keeps container data, else the root filesystem.
fn default_data_path() -> PathBuf {
    let docker = PathBuf::from("/var/lib/docker");
    if docker.exists() {
        docker
    } else {
        PathBuf::from("/")
    }
}

/// The line of a `file:line:col` position, for ordering.
fn line_of(pos: &str) -> usize {
    pos.rsplit(':')
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX)
}

fn positive(text: &str) -> Result<f64, String> {
    units::parse_cpus(text).map_err(|e| e.to_string())
}

fn memory_of(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("{t:?} is negative; a size such as 512M or 1.5G"));
    }
    match units::parse_bytes(t) {
        Ok(b) if b < MIN_MEMORY => Err(format!(
            "{t:?} is below Docker's minimum of 6M; a size such as 512M or 1.5G"
        )),
        Ok(b) => Ok(b as f64),
        Err(e) => Err(e.to_string()),
    }
}

fn not_above(value: f64, limit: f64, what: &str) -> Result<f64, String> {
    if value > limit {
        Err(format!("is above the service's {what}"))
    } else {
        Ok(value)
    }
}
