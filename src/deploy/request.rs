//! The limits a user asks for, validated before anything happens.

use serde::Serialize;

use super::DeployError;
use crate::config::units::{format_bytes, parse_bytes, parse_cpus};

pub const MIN_CPUS: f64 = 0.1;
pub const MAX_CPUS: f64 = 16.0;
pub const MIN_MEMORY: u64 = 64 << 20;
pub const MAX_MEMORY: u64 = 32 << 30;

const CPU_FORMS: &str = "a number of cores from 0.1 to 16.0, e.g. `1.5`, `0.25`, `2`";
const MEMORY_FORMS: &str = "64M to 32G as `768M`, `1.5G`, `512m` or plain bytes `805306368`";

/// New limits for a service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Target {
    pub cpus: f64,
    pub memory: u64,
}

impl Target {
    /// Parses and range-checks the command-line strings (no I/O).
    pub fn parse(cpus: &str, memory: &str) -> Result<Target, DeployError> {
        let c = parse_cpus(cpus).map_err(|e| {
            DeployError::InvalidLimit(format!(
                "invalid CPU limit {cpus:?}: {}; accepted: {CPU_FORMS}",
                e.reason
            ))
        })?;
        if !(MIN_CPUS..=MAX_CPUS).contains(&c) {
            return Err(DeployError::InvalidLimit(format!(
                "CPU limit {cpus} is out of range; accepted: {CPU_FORMS}"
            )));
        }
        let m = parse_bytes(memory).map_err(|e| {
            DeployError::InvalidLimit(format!(
                "invalid memory limit {memory:?}: {}; accepted: {MEMORY_FORMS}",
                e.reason
            ))
        })?;
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&m) {
            return Err(DeployError::InvalidLimit(format!(
                "memory limit {memory} ({}) is out of range; accepted: {MEMORY_FORMS}",
                format_bytes(m)
            )));
        }
        Ok(Target { cpus: c, memory: m })
    }

    /// Refuses more CPUs than the host has.
    pub fn check_host(&self, host_cpus: i64) -> Result<(), DeployError> {
        if self.cpus > host_cpus as f64 {
            return Err(DeployError::InvalidLimit(format!(
                "CPU limit {} is above the {host_cpus} CPUs of this Docker host",
                self.cpus
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(
            Target::parse("1.5", "768M").unwrap(),
            Target {
                cpus: 1.5,
                memory: 768 << 20
            }
        );
        assert_eq!(Target::parse("2", "1.5G").unwrap().memory, 3 << 29);
        assert_eq!(Target::parse("0.1", "512m").unwrap().memory, 512 << 20);
        assert_eq!(
            Target::parse("16", "805306368").unwrap().memory,
            805_306_368
        );
    }

    #[test]
    fn refusals_show_accepted_forms() {
        for (c, m) in [
            ("0.05", "768M"),
            ("17", "768M"),
            ("abc", "768M"),
            ("1", "63M"),
            ("1", "33G"),
            ("1", "lots"),
            ("1", "1.5"),
        ] {
            let err = Target::parse(c, m).unwrap_err().to_string();
            assert!(err.contains("accepted:"), "{c} {m}: {err}");
        }
    }

    #[test]
    fn host_cpus_cap() {
        let t = Target::parse("3", "1G").unwrap();
        assert!(t.check_host(2).unwrap_err().to_string().contains("2 CPUs"));
        t.check_host(4).unwrap();
    }
}
