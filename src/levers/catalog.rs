//! The lever catalog, `config/levers.yaml`: which knobs exist, what each
//! treats, what it costs and which values to try, in order.
//!
//! The file is a map from lever name to its spec, read in file order: within
//! a cost tier the first lever listed is tried first, so the file order *is*
//! the expert's ranking by measured effect.
//!
//! This file holds what a lever is; `catalog/file.rs` reads and checks the
//! file.

mod file;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a violated objective means (DESIGN.md vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Symptom {
    HighWalRate,
    HighIoWait,
    HighWriteLatency,
    CpuPressure,
    MemoryPressure,
}

pub const SYMPTOMS: &str =
    "high_wal_rate, high_io_wait, high_write_latency, cpu_pressure, memory_pressure";

impl Symptom {
    pub fn as_str(self) -> &'static str {
        match self {
            Symptom::HighWalRate => "high_wal_rate",
            Symptom::HighIoWait => "high_io_wait",
            Symptom::HighWriteLatency => "high_write_latency",
            Symptom::CpuPressure => "cpu_pressure",
            Symptom::MemoryPressure => "memory_pressure",
        }
    }
}

impl fmt::Display for Symptom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Symptom {
    type Err = String;
    fn from_str(s: &str) -> Result<Symptom, String> {
        match s.trim() {
            "high_wal_rate" => Ok(Symptom::HighWalRate),
            "high_io_wait" => Ok(Symptom::HighIoWait),
            "high_write_latency" => Ok(Symptom::HighWriteLatency),
            "cpu_pressure" => Ok(Symptom::CpuPressure),
            "memory_pressure" => Ok(Symptom::MemoryPressure),
            other => Err(format!("unknown symptom {other:?}; known: {SYMPTOMS}")),
        }
    }
}

/// Disruption tier. Declared order is the order levers are tried in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cost {
    Low,
    Medium,
    High,
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cost::Low => "low",
            Cost::Medium => "medium",
            Cost::High => "high",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Cpus,
    Memory,
}

/// What a lever moves. Serialized into journal entries so that a rollback
/// still knows how to undo a change after levers.yaml was edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A PostgreSQL parameter set with ALTER SYSTEM. Whether it needs a
    /// restart is the backend's answer from live `pg_settings.context`.
    Postgres {
        parameter: String,
        allow_unsafe: bool,
    },
    /// A container or Compose service limit.
    Container { service: String, resource: Resource },
    /// `KEY=value` in an env file, then the Compose service is recreated.
    Env {
        file: Option<PathBuf>,
        key: String,
        service: String,
    },
    /// A program run without a shell; `{value}` in an argument is replaced by
    /// the value being set (the old value when rolling back).
    Command {
        apply: Vec<String>,
        rollback: Vec<String>,
    },
}

impl Target {
    /// Both move the same thing on the live system (one PostgreSQL
    /// parameter, one container resource, one env key).
    pub fn same_setting(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Postgres { parameter: a, .. }, Target::Postgres { parameter: b, .. }) => {
                a.eq_ignore_ascii_case(b)
            }
            (
                Target::Container {
                    service: a,
                    resource: r,
                },
                Target::Container {
                    service: b,
                    resource: q,
                },
            ) => a == b && r == q,
            (
                Target::Env {
                    key: a, file: f, ..
                },
                Target::Env {
                    key: b, file: g, ..
                },
            ) => a == b && f == g,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lever {
    pub name: String,
    /// The tier written in the file; see [`crate::levers::choose`] for the
    /// effective tier, which a restart raises.
    pub cost: Cost,
    pub symptoms: Vec<Symptom>,
    /// Candidate values, tried in order.
    pub values: Vec<String>,
    pub description: Option<String>,
    pub target: Target,
}

impl Lever {
    pub fn treats(&self, symptom: Symptom) -> bool {
        self.symptoms.contains(&symptom)
    }

    /// `checkpoint_timeout=15min`, the seed's "Lever:" form.
    pub fn assignment(&self, value: Option<&str>) -> String {
        let key = match &self.target {
            Target::Postgres { parameter, .. } => parameter.clone(),
            Target::Container {
                service,
                resource: Resource::Cpus,
            } => format!("{service}.cpus"),
            Target::Container {
                service,
                resource: Resource::Memory,
            } => format!("{service}.memory"),
            Target::Env { key, .. } => key.clone(),
            Target::Command { .. } => self.name.clone(),
        };
        format!("{key}={}", value.unwrap_or("(default)"))
    }

    /// A postgres lever used only to read a setting (e.g. checkpoint_timeout).
    pub fn postgres_probe(parameter: &str) -> Lever {
        Lever {
            name: parameter.to_string(),
            cost: Cost::Low,
            symptoms: Vec::new(),
            values: Vec::new(),
            description: None,
            target: Target::Postgres {
                parameter: parameter.to_string(),
                allow_unsafe: false,
            },
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub levers: Vec<Lever>,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&Lever> {
        self.levers.iter().find(|l| l.name == name)
    }

    /// The services whose containers some lever changes (limits, or env and
    /// a recreate), each once.
    pub fn services(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .levers
            .iter()
            .filter_map(|l| match &l.target {
                Target::Container { service, .. } | Target::Env { service, .. } => {
                    Some(service.clone())
                }
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
