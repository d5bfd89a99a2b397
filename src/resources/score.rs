//! The host's score (0-100) from seed 001's parts, CPU 30, RAM 30, disk 20,
//! network 10, health 10, and the tier it places the host in.

use serde::{Deserialize, Serialize};

use super::host::HostFacts;

const GIB: f64 = (1u64 << 30) as f64;

/// Points per part; the total is their sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Score {
    pub cpu: u8,
    pub ram: u8,
    pub disk: u8,
    pub network: u8,
    pub health: u8,
    pub total: u8,
}

/// Seed 001's five tiers, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    Minimal,
    Basic,
    Standard,
    Performance,
    HighPerformance,
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Tier::Minimal,
        Tier::Basic,
        Tier::Standard,
        Tier::Performance,
        Tier::HighPerformance,
    ];

    /// The tier a total score falls in (0-30, 31-50, 51-70, 71-85, 86-100).
    pub fn of(score: u8) -> Tier {
        match score {
            0..=30 => Tier::Minimal,
            31..=50 => Tier::Basic,
            51..=70 => Tier::Standard,
            71..=85 => Tier::Performance,
            _ => Tier::HighPerformance,
        }
    }

    /// Share of the host's CPU and memory kept for the host itself.
    pub fn reserve_percent(self) -> f64 {
        match self {
            Tier::Minimal => 50.0,
            Tier::Basic => 40.0,
            Tier::Standard => 30.0,
            Tier::Performance => 25.0,
            Tier::HighPerformance => 20.0,
        }
    }

    /// How base sizes scale on this tier, unless services.yaml says otherwise.
    pub fn default_multiplier(self) -> f64 {
        match self {
            Tier::Minimal => 0.5,
            Tier::Basic => 0.75,
            Tier::Standard => 1.0,
            Tier::Performance => 1.25,
            Tier::HighPerformance => 1.5,
        }
    }

    pub fn range(self) -> (u8, u8) {
        match self {
            Tier::Minimal => (0, 30),
            Tier::Basic => (31, 50),
            Tier::Standard => (51, 70),
            Tier::Performance => (71, 85),
            Tier::HighPerformance => (86, 100),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Minimal => "minimal",
            Tier::Basic => "basic",
            Tier::Standard => "standard",
            Tier::Performance => "performance",
            Tier::HighPerformance => "high-performance",
        }
    }
}

/// Scores the host on what it can give containers (cgroup limits count).
/// The thresholds give seed 001's example host (22 cores at 3.07 GHz,
/// 15.6 GB, 1 TB SSD, one interface, load 0.61) the seed's parts 30, 20,
/// 20, 5 and 10; the seed prints 95 as their total, but they add up to 85.
pub fn score(host: &HostFacts) -> Score {
    let cpu = cpu_points(host.usable_cpus(), host.cpu_mhz);
    let ram = ram_points(host.usable_memory() as f64 / GIB);
    let disk = disk_points(host.disk_bytes as f64 / GIB, host.rotational);
    let network = match host.interfaces.len() {
        0 => 0,
        1 => 5,
        _ => 10,
    };
    let health = health_points(host.load_1m / host.usable_cpus().max(1.0));
    Score {
        cpu,
        ram,
        disk,
        network,
        health,
        total: cpu + ram + disk + network + health,
    }
}

/// Up to 20 for the CPU count, 10 for the clock (5 when unknown).
fn cpu_points(cpus: f64, mhz: Option<f64>) -> u8 {
    let count = match cpus {
        c if c >= 16.0 => 20,
        c if c >= 8.0 => 15,
        c if c >= 4.0 => 10,
        c if c >= 2.0 => 5,
        _ => 2,
    };
    let clock = match mhz {
        None => 5,
        Some(m) if m >= 3000.0 => 10,
        Some(m) if m >= 2500.0 => 7,
        Some(m) if m >= 2000.0 => 5,
        Some(_) => 3,
    };
    count + clock
}

fn ram_points(gib: f64) -> u8 {
    match gib {
        g if g >= 31.0 => 30,
        g if g >= 15.0 => 20,
        g if g >= 7.5 => 15,
        g if g >= 3.5 => 10,
        g if g >= 1.5 => 5,
        _ => 2,
    }
}

/// Up to 10 for the medium (SSD 10, unknown 6, HDD 4), 10 for the size.
fn disk_points(gib: f64, rotational: Option<bool>) -> u8 {
    let medium = match rotational {
        Some(false) => 10,
        None => 6,
        Some(true) => 4,
    };
    let size = match gib {
        g if g >= 500.0 => 10,
        g if g >= 100.0 => 7,
        g if g >= 50.0 => 5,
        g if g >= 20.0 => 3,
        _ => 1,
    };
    medium + size
}

/// Load per CPU: a host already busy has less to give.
fn health_points(load_per_cpu: f64) -> u8 {
    match load_per_cpu {
        l if l < 0.5 => 10,
        l if l < 1.0 => 7,
        l if l < 1.5 => 4,
        _ => 1,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resources::host::CgroupLimits;

    /// A quiet host with `threads` CPUs at 3 GHz, `memory` bytes, a 1 TB
    /// SSD and one interface.
    pub(crate) fn host(threads: u32, memory: u64) -> HostFacts {
        HostFacts {
            cores: threads,
            threads,
            cpu_mhz: Some(3000.0),
            memory_bytes: memory,
            disk_bytes: 1 << 40,
            disk_free_bytes: 500 << 30,
            disk_path: "/".into(),
            rotational: Some(false),
            load_1m: 0.1,
            interfaces: vec!["eth0".into()],
            cgroup: CgroupLimits::default(),
        }
    }

    #[test]
    fn the_seeds_example_host_scores_its_parts() {
        let mut h = host(22, (156 << 30) / 10);
        h.cpu_mhz = Some(3070.0);
        h.load_1m = 0.61;
        let s = score(&h);
        assert_eq!(
            (s.cpu, s.ram, s.disk, s.network, s.health),
            (30, 20, 20, 5, 10)
        );
        assert_eq!(s.total, 85);
        assert_eq!(Tier::of(s.total), Tier::Performance);
    }

    /// One host per tier, lowest first.
    pub(crate) fn tier_hosts() -> [HostFacts; 5] {
        let mut tiny = host(1, 1 << 30);
        tiny.cpu_mhz = Some(1800.0);
        tiny.disk_bytes = 10 << 30;
        tiny.rotational = Some(true);
        tiny.load_1m = 3.0;
        tiny.interfaces.clear();
        let mut basic = host(2, 4 << 30);
        basic.cpu_mhz = Some(2600.0);
        basic.disk_bytes = 40 << 30;
        basic.rotational = None;
        let mut standard = host(4, 8 << 30);
        standard.disk_bytes = 200 << 30;
        let performance = host(8, 16 << 30);
        let mut high = host(16, 64 << 30);
        high.interfaces.push("eth1".into());
        [tiny, basic, standard, performance, high]
    }

    #[test]
    fn every_tier_is_reached_by_some_host() {
        let tiers: Vec<(u8, Tier)> = tier_hosts()
            .iter()
            .map(|h| {
                let t = score(h).total;
                (t, Tier::of(t))
            })
            .collect();
        let want = [
            Tier::Minimal,
            Tier::Basic,
            Tier::Standard,
            Tier::Performance,
            Tier::HighPerformance,
        ];
        for ((total, tier), want) in tiers.iter().zip(want) {
            assert_eq!(*tier, want, "score {total}: {tiers:?}");
        }
    }

    #[test]
    fn tier_boundaries_and_reserves_follow_the_seed() {
        for (s, t) in [
            (0, Tier::Minimal),
            (30, Tier::Minimal),
            (31, Tier::Basic),
            (50, Tier::Basic),
            (51, Tier::Standard),
            (70, Tier::Standard),
            (71, Tier::Performance),
            (85, Tier::Performance),
            (86, Tier::HighPerformance),
            (100, Tier::HighPerformance),
        ] {
            assert_eq!(Tier::of(s), t, "{s}");
            let (lo, hi) = t.range();
            assert!(lo <= s && s <= hi);
        }
        let reserves: Vec<f64> = Tier::ALL.iter().map(|t| t.reserve_percent()).collect();
        assert_eq!(reserves, [50.0, 40.0, 30.0, 25.0, 20.0]);
    }

    #[test]
    fn a_cgroup_limit_lowers_the_score() {
        let free = host(16, 64 << 30);
        let mut boxed = free.clone();
        boxed.cgroup.cpus = Some(1.0);
        boxed.cgroup.memory_bytes = Some(1 << 30);
        assert!(score(&boxed).total < score(&free).total);
        assert_eq!(score(&boxed).ram, 2);
    }
}
