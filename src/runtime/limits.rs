//! CPU and memory limits as Docker stores them, and how to change them.
//!
//! Docker keeps CPU either as `NanoCpus` or as `CpuQuota`/`CpuPeriod`; the two
//! are exclusive for a container's whole life (the engine answers 409 when
//! the other one is updated), so an update always uses the knob the
//! container already has. Memory and MemorySwap are always sent together:
//! raising Memory alone above the stored MemorySwap is refused.

use bollard::models::{ContainerUpdateBody, HostConfig};
use serde::{Deserialize, Serialize};

use crate::config::units::{format_bytes, nano_to_cpus};

/// The CFS period Docker uses when only a quota is given.
pub const DEFAULT_CPU_PERIOD: i64 = 100_000;

/// Which CPU field a container uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CpuKnob {
    /// `NanoCpus` (`docker run --cpus`, Compose `cpus:`), or nothing set yet.
    NanoCpus,
    /// `CpuQuota` over `CpuPeriod` microseconds (`--cpu-quota`).
    Quota { period: i64 },
}

/// CPU and memory limits of one container. Zero means "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Cores, e.g. 1.5.
    pub cpus: f64,
    /// Bytes.
    pub memory: u64,
    /// Bytes of memory plus swap; -1 unlimited, 0 never set.
    pub memory_swap: i64,
    pub knob: CpuKnob,
}

impl Limits {
    /// Reads the limits from a container's `HostConfig`.
    pub fn from_host_config(hc: &HostConfig) -> Limits {
        let quota = hc.cpu_quota.unwrap_or(0);
        let nano = hc.nano_cpus.unwrap_or(0);
        let (cpus, knob) = if quota > 0 {
            let period = hc
                .cpu_period
                .filter(|p| *p > 0)
                .unwrap_or(DEFAULT_CPU_PERIOD);
            (quota as f64 / period as f64, CpuKnob::Quota { period })
        } else {
            (nano_to_cpus(nano), CpuKnob::NanoCpus)
        };
        Limits {
            cpus,
            memory: hc.memory.unwrap_or(0).max(0) as u64,
            memory_swap: hc.memory_swap.unwrap_or(0),
            knob,
        }
    }

    /// The limits after a resize to `cpus`/`memory`, keeping the CPU knob and
    /// the swap policy: unlimited swap stays unlimited, a swap that was a
    /// multiple of memory keeps that ratio, and "never set" becomes Docker's
    /// own default of twice the memory.
    pub fn resized(&self, cpus: f64, memory: u64) -> Limits {
        let memory_swap = if self.memory_swap < 0 {
            -1
        } else if self.memory_swap > 0 && self.memory > 0 {
            let ratio = self.memory_swap as f64 / self.memory as f64;
            (memory as f64 * ratio).round() as i64
        } else {
            memory.saturating_mul(2) as i64
        };
        Limits {
            cpus,
            memory,
            memory_swap,
            knob: self.knob,
        }
    }

    /// Writes these limits into a `HostConfig` (for a new container).
    pub fn apply_to(&self, hc: &mut HostConfig) {
        match self.knob {
            CpuKnob::NanoCpus => {
                hc.nano_cpus = Some(crate::config::units::cpus_to_nano(self.cpus));
                hc.cpu_quota = Some(0);
            }
            CpuKnob::Quota { period } => {
                hc.nano_cpus = Some(0);
                hc.cpu_period = Some(period);
                hc.cpu_quota = Some(quota_for(self.cpus, period));
            }
        }
        hc.memory = Some(self.memory as i64);
        hc.memory_swap = Some(self.memory_swap);
    }

    /// The body of a live update (`docker update`): the container's own CPU
    /// knob, Memory and MemorySwap together.
    pub fn update_body(&self) -> ContainerUpdateBody {
        let mut body = ContainerUpdateBody {
            memory: Some(self.memory as i64),
            memory_swap: Some(self.memory_swap),
            ..Default::default()
        };
        match self.knob {
            CpuKnob::NanoCpus => {
                body.nano_cpus = Some(crate::config::units::cpus_to_nano(self.cpus))
            }
            CpuKnob::Quota { period } => {
                body.cpu_period = Some(period);
                body.cpu_quota = Some(quota_for(self.cpus, period));
            }
        }
        body
    }

    /// True when CPU and memory match `other` (to a thousandth of a core).
    pub fn same_size(&self, other: &Limits) -> bool {
        (self.cpus - other.cpus).abs() < 0.001 && self.memory == other.memory
    }

    pub fn describe(&self) -> String {
        let cpus = if self.cpus > 0.0 {
            format!("{} CPU", trim(self.cpus))
        } else {
            "no CPU limit".to_string()
        };
        let mem = if self.memory > 0 {
            format_bytes(self.memory)
        } else {
            "no memory limit".to_string()
        };
        format!("{cpus}, {mem}")
    }
}

fn quota_for(cpus: f64, period: i64) -> i64 {
    (cpus * period as f64).round() as i64
}

/// Prints cores without trailing zeros (`1.5`, `2`).
pub fn trim(cpus: f64) -> String {
    let s = format!("{cpus:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Memory a container really holds: usage minus reclaimable page cache
/// (what `docker stats` shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryUsage {
    pub usage: u64,
    pub inactive_file: u64,
    pub limit: u64,
}

impl MemoryUsage {
    pub fn working_set(&self) -> u64 {
        self.usage.saturating_sub(self.inactive_file)
    }

    /// The margin kept above the working set when shrinking: 10%, at least 16M.
    pub fn margin(&self) -> u64 {
        (self.working_set() / 10).max(16 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_cpus_container_keeps_its_knob() {
        let hc = HostConfig {
            nano_cpus: Some(1_500_000_000),
            memory: Some(512 << 20),
            memory_swap: Some(1024 << 20),
            ..Default::default()
        };
        let l = Limits::from_host_config(&hc);
        assert_eq!(l.knob, CpuKnob::NanoCpus);
        assert_eq!(l.cpus, 1.5);
        let n = l.resized(0.5, 256 << 20);
        assert_eq!(n.memory_swap, 512 << 20);
        let body = n.update_body();
        assert_eq!(body.nano_cpus, Some(500_000_000));
        assert_eq!(body.cpu_quota, None);
        assert_eq!(body.memory, Some(256 << 20));
        assert_eq!(body.memory_swap, Some(512 << 20));
    }

    #[test]
    fn quota_container_is_updated_through_its_quota() {
        let hc = HostConfig {
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            ..Default::default()
        };
        let l = Limits::from_host_config(&hc);
        assert_eq!(l.knob, CpuKnob::Quota { period: 100_000 });
        assert_eq!(l.cpus, 0.5);
        let body = l.resized(1.25, 128 << 20).update_body();
        assert_eq!(body.cpu_quota, Some(125_000));
        assert_eq!(body.nano_cpus, None);
        assert_eq!(
            body.memory_swap,
            Some(256 << 20),
            "never-set swap becomes Docker's 2x default"
        );
    }

    #[test]
    fn unlimited_swap_stays_unlimited() {
        let hc = HostConfig {
            memory: Some(512 << 20),
            memory_swap: Some(-1),
            ..Default::default()
        };
        assert_eq!(
            Limits::from_host_config(&hc)
                .resized(1.0, 1 << 30)
                .memory_swap,
            -1
        );
    }

    #[test]
    fn working_set_excludes_inactive_cache() {
        let u = MemoryUsage {
            usage: 300 << 20,
            inactive_file: 100 << 20,
            limit: 0,
        };
        assert_eq!(u.working_set(), 200 << 20);
        assert_eq!(u.margin(), 20 << 20);
    }
}
