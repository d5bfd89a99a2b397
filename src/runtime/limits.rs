//! CPU and memory limits of a container, and how a resize keeps its shape.
//!
//! Docker keeps CPU either as `NanoCpus` or as `CpuQuota`/`CpuPeriod`; the two
//! are exclusive for a container's whole life (the engine answers 409 when
//! the other one is updated), so the limits remember which knob the
//! container uses and an update goes through that one. Memory and
//! MemorySwap move together: raising Memory alone above the stored
//! MemorySwap is refused. The engine's wire format lives in `docker/`.

use serde::{Deserialize, Serialize};

use crate::config::units::format_bytes;

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

/// The CFS quota that gives `cpus` cores over `period` microseconds.
pub fn quota_for(cpus: f64, period: i64) -> i64 {
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

    fn limits(memory: u64, memory_swap: i64) -> Limits {
        Limits {
            cpus: 1.0,
            memory,
            memory_swap,
            knob: CpuKnob::NanoCpus,
        }
    }

    #[test]
    fn resize_keeps_the_swap_policy() {
        assert_eq!(
            limits(512 << 20, 1024 << 20)
                .resized(0.5, 256 << 20)
                .memory_swap,
            512 << 20,
            "the ratio to memory is kept"
        );
        assert_eq!(
            limits(0, 0).resized(1.0, 128 << 20).memory_swap,
            256 << 20,
            "never-set swap becomes Docker's 2x default"
        );
        assert_eq!(
            limits(512 << 20, -1).resized(1.0, 1 << 30).memory_swap,
            -1,
            "unlimited stays unlimited"
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
