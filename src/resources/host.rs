//! What the machine offers: read from /proc and /sys directly (no crate
//! needed for a handful of files), with the cgroup limits tuner itself runs
//! under, so a tuner inside a container sizes for its box, not the host's.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The host as the score and the allocation see it. Built by [`detect`] or
/// by hand in tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostFacts {
    /// Physical cores (distinct core ids per package); threads when unknown.
    pub cores: u32,
    pub threads: u32,
    /// MHz, when the kernel reports it (VMs often report the nominal one).
    pub cpu_mhz: Option<f64>,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub disk_free_bytes: u64,
    /// The filesystem the disk figures are for.
    pub disk_path: PathBuf,
    /// `Some(true)` for spinning disks, from /sys/block/*/queue/rotational.
    pub rotational: Option<bool>,
    /// One-minute load average.
    pub load_1m: f64,
    /// Interfaces backed by a device (not lo, bridges, veth pairs).
    pub interfaces: Vec<String>,
    pub cgroup: CgroupLimits,
}

/// The CPU and memory limits of the cgroup tuner runs in; `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CgroupLimits {
    pub version: Option<u8>,
    pub cpus: Option<f64>,
    pub memory_bytes: Option<u64>,
}

impl HostFacts {
    /// CPUs usable here: the thread count, or less under a cgroup quota.
    pub fn usable_cpus(&self) -> f64 {
        let threads = f64::from(self.threads.max(1));
        self.cgroup.cpus.map_or(threads, |c| c.min(threads))
    }

    /// Memory usable here: RAM, or less under a cgroup limit.
    pub fn usable_memory(&self) -> u64 {
        self.cgroup
            .memory_bytes
            .map_or(self.memory_bytes, |m| m.min(self.memory_bytes))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} from {}: {reason}", path.display())]
pub struct HostError {
    pub what: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

/// Reads the host's facts; `disk_path` is the filesystem whose size and
/// free space count (where the containers' data lives).
pub fn detect(disk_path: &Path) -> Result<HostFacts, HostError> {
    let cpuinfo = read("CPU details", Path::new("/proc/cpuinfo"))?;
    let (cores, threads, cpu_mhz) = parse_cpuinfo(&cpuinfo);
    let meminfo = read("memory size", Path::new("/proc/meminfo"))?;
    let memory_bytes = parse_meminfo(&meminfo).ok_or_else(|| HostError {
        what: "memory size",
        path: "/proc/meminfo".into(),
        reason: "no MemTotal line".into(),
    })?;
    let loadavg = read("load average", Path::new("/proc/loadavg"))?;
    let load_1m = loadavg
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    let vfs = rustix::fs::statvfs(disk_path).map_err(|e| HostError {
        what: "disk size",
        path: disk_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let block = vfs.f_frsize.max(1);
    Ok(HostFacts {
        cores,
        threads,
        cpu_mhz,
        memory_bytes,
        disk_bytes: vfs.f_blocks.saturating_mul(block),
        disk_free_bytes: vfs.f_bavail.saturating_mul(block),
        disk_path: disk_path.to_path_buf(),
        rotational: rotational(disk_path),
        load_1m,
        interfaces: interfaces(Path::new("/sys/class/net")),
        cgroup: own_cgroup_limits(),
    })
}

fn read(what: &'static str, path: &Path) -> Result<String, HostError> {
    std::fs::read_to_string(path).map_err(|e| HostError {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// (physical cores, threads, MHz) from /proc/cpuinfo.
pub fn parse_cpuinfo(text: &str) -> (u32, u32, Option<f64>) {
    let mut threads = 0u32;
    let mut cores = std::collections::BTreeSet::new();
    let mut physical = "0".to_string();
    let mut mhz: Option<f64> = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => threads += 1,
            "physical id" => physical = value.to_string(),
            "core id" => {
                cores.insert((physical.clone(), value.to_string()));
            }
            "cpu MHz" => {
                if let Ok(v) = value.parse::<f64>() {
                    mhz = Some(mhz.map_or(v, |m: f64| m.max(v)));
                }
            }
            _ => {}
        }
    }
    let threads = threads.max(1);
    let cores = if cores.is_empty() {
        threads
    } else {
        cores.len() as u32
    };
    (cores, threads, mhz)
}

/// MemTotal in bytes.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Interfaces with a backing device: virtual ones (lo, docker0, veth) have none.
pub fn interfaces(sys_class_net: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sys_class_net) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

/// Whether the block device under `path` spins: its major:minor through
/// /sys/dev/block, then `queue/rotational` of the disk (a partition's
/// parent holds it). `None` when the device cannot be found (overlay, tmpfs).
fn rotational(path: &Path) -> Option<bool> {
    let st = rustix::fs::stat(path).ok()?;
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    let dev = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    [
        dev.join("queue/rotational"),
        dev.join("../queue/rotational"),
    ]
    .iter()
    .find_map(|f| std::fs::read_to_string(f).ok())
    .map(|v| v.trim() == "1")
}

/// The limits of the cgroup tuner runs in: its own folder from
/// /proc/self/cgroup when that exists (a systemd slice on a host), else the
/// mount's root (inside a container, the container's own cgroup).
fn own_cgroup_limits() -> CgroupLimits {
    let root = Path::new("/sys/fs/cgroup");
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| own_cgroup_dir(root, &t));
    match own.map(|dir| cgroup_limits(&dir)) {
        Some(limits) if limits.version.is_some() => limits,
        _ => cgroup_limits(root),
    }
}

/// The folder under `root` for this process: the v2 line (`0::/path`).
/// v1 controllers each have their own hierarchy, which `cgroup_limits`
/// reads at the mount's root.
pub fn own_cgroup_dir(root: &Path, proc_self_cgroup: &str) -> Option<PathBuf> {
    let path = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim()
        .trim_start_matches('/');
    (!path.is_empty()).then(|| root.join(path))
}

/// The CPU and memory limits under `root` (normally /sys/fs/cgroup),
/// cgroup v2 (`cpu.max`, `memory.max`) or v1 (`cpu/cpu.cfs_quota_us`,
/// `memory/memory.limit_in_bytes`).
pub fn cgroup_limits(root: &Path) -> CgroupLimits {
    let text = |rel: &str| std::fs::read_to_string(root.join(rel)).ok();
    if let Some(cpu_max) = text("cpu.max").or_else(|| text("memory.max").map(|_| "max".into())) {
        let cpus = parse_v2_cpu_max(&cpu_max);
        let memory_bytes = text("memory.max").and_then(|m| parse_limit(&m));
        return CgroupLimits {
            version: Some(2),
            cpus,
            memory_bytes,
        };
    }
    let quota = text("cpu/cpu.cfs_quota_us").or_else(|| text("cpu,cpuacct/cpu.cfs_quota_us"));
    let period = text("cpu/cpu.cfs_period_us").or_else(|| text("cpu,cpuacct/cpu.cfs_period_us"));
    let memory = text("memory/memory.limit_in_bytes");
    if quota.is_none() && memory.is_none() {
        return CgroupLimits::default();
    }
    let cpus = match (quota, period) {
        (Some(q), Some(p)) => parse_v2_cpu_max(&format!("{} {}", q.trim(), p.trim())),
        _ => None,
    };
    CgroupLimits {
        version: Some(1),
        cpus,
        memory_bytes: memory.and_then(|m| parse_limit(&m)),
    }
}

/// `QUOTA PERIOD` (v2 `cpu.max`, or v1's two files joined); `max` or a
/// negative quota is no limit.
fn parse_v2_cpu_max(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let quota: f64 = parts.next()?.parse().ok()?;
    let period: f64 = parts.next()?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// A memory limit in bytes; `max` (v2) or the v1 "unlimited" value (a page
/// short of i64::MAX) is no limit.
fn parse_limit(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    (v < (1u64 << 62)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_counts_cores_threads_and_frequency() {
        let text = "processor\t: 0\nphysical id\t: 0\ncore id\t: 0\ncpu MHz\t\t: 2596.1\n\n\
                    processor\t: 1\nphysical id\t: 0\ncore id\t: 0\ncpu MHz\t\t: 3000.0\n\n\
                    processor\t: 2\nphysical id\t: 0\ncore id\t: 1\n";
        assert_eq!(parse_cpuinfo(text), (2, 3, Some(3000.0)));
        assert_eq!(parse_cpuinfo("processor : 0\n"), (1, 1, None));
    }

    #[test]
    fn meminfo_total_in_bytes() {
        assert_eq!(
            parse_meminfo("MemTotal:       24683772 kB\nMemFree: 1 kB\n"),
            Some(24683772 * 1024)
        );
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn cgroup_v2_and_v1_limits() {
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cpu.max"), "150000 100000\n").unwrap();
        std::fs::write(v2.path().join("memory.max"), "536870912\n").unwrap();
        let l = cgroup_limits(v2.path());
        assert_eq!(l.version, Some(2));
        assert_eq!(l.cpus, Some(1.5));
        assert_eq!(l.memory_bytes, Some(512 << 20));
        std::fs::write(v2.path().join("cpu.max"), "max 100000\n").unwrap();
        std::fs::write(v2.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_limits(v2.path()).cpus, None);
        assert_eq!(cgroup_limits(v2.path()).memory_bytes, None);

        let v1 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(v1.path().join("cpu")).unwrap();
        std::fs::create_dir_all(v1.path().join("memory")).unwrap();
        std::fs::write(v1.path().join("cpu/cpu.cfs_quota_us"), "50000\n").unwrap();
        std::fs::write(v1.path().join("cpu/cpu.cfs_period_us"), "100000\n").unwrap();
        std::fs::write(
            v1.path().join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        let l = cgroup_limits(v1.path());
        assert_eq!(
            (l.version, l.cpus, l.memory_bytes),
            (Some(1), Some(0.5), None)
        );
        std::fs::write(v1.path().join("cpu/cpu.cfs_quota_us"), "-1\n").unwrap();
        assert_eq!(cgroup_limits(v1.path()).cpus, None);

        let none = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_limits(none.path()), CgroupLimits::default());
    }

    #[test]
    fn own_cgroup_is_the_v2_line() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            own_cgroup_dir(root, "0::/system.slice/tuner.service\n"),
            Some(root.join("system.slice/tuner.service"))
        );
        assert_eq!(own_cgroup_dir(root, "0::/\n"), None);
        assert_eq!(own_cgroup_dir(root, "9:name=systemd:/\n8:pids:/\n"), None);
    }

    #[test]
    fn usable_resources_follow_the_cgroup() {
        let mut h = super::super::score::tests::host(8, 16 << 30);
        assert_eq!(h.usable_cpus(), 8.0);
        h.cgroup.cpus = Some(1.5);
        h.cgroup.memory_bytes = Some(1 << 30);
        assert_eq!(h.usable_cpus(), 1.5);
        assert_eq!(h.usable_memory(), 1 << 30);
    }
}
