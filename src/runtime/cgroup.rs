//! A container's usage straight from the kernel's cgroup files, v1 or v2:
//! a few small reads per container (microseconds), where a one-shot Docker
//! stats call takes about a second here.
//!
//! Docker's cgroupfs driver puts a container under `docker/<id>`, the
//! systemd driver under `system.slice/docker-<id>.scope`; v1 splits the
//! controllers into their own trees (`memory/`, `cpu/`, `cpuacct/`), v2
//! has one. Anything else (nested slices, another engine's layout) is
//! found by a bounded walk for a folder named after the id, once per
//! container.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::limits::MemoryUsage;

/// Above this a v1 limit means "unlimited" (the kernel stores ~2^63 rounded to a page).
const UNLIMITED_V1: u64 = 1 << 62;

/// Control files kept open between reads: the kernel regenerates a cgroup
/// file read again from offset 0, and the path walk, open and close it
/// saves were half of a quiet `tuner watch` check's CPU (perf, 50
/// containers, cgroup v1). Bounded, so a thousand containers cannot run
/// the process out of descriptors (7 files each on v1, 6 on v2).
const MAX_OPEN: usize = 512;

/// A kept file not read for this long belongs to a container no longer
/// watched: closed when room is needed.
const STALE: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup of container {id} under {}: is it running, and is this host's cgroup tree mounted there? (watch.cgroup_root)", root.display())]
    NotFound { id: String, root: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unexpected content {text:?}", path.display())]
    Parse { path: PathBuf, text: String },
}

/// One reading of one container's cgroup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgroupSample {
    pub read_at: DateTime<Utc>,
    /// CPU time used since the cgroup was created.
    pub cpu_seconds: f64,
    /// Cores the CFS quota allows; 0 = no limit.
    pub cpu_limit: f64,
    /// `limit` 0 = no limit.
    pub memory: MemoryUsage,
    /// OOM kills inside the cgroup since it was created.
    pub oom_kills: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where one container's files are.
#[derive(Debug, Clone)]
enum Dirs {
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        cpuacct: PathBuf,
    },
    V2(PathBuf),
}

/// Reads containers' cgroups under one mount point, remembering where each
/// container's folders are.
#[derive(Debug)]
pub struct Cgroups {
    root: PathBuf,
    version: Version,
    found: Mutex<HashMap<String, Dirs>>,
    open: Mutex<HashMap<PathBuf, (File, Instant)>>,
}

impl Cgroups {
    /// v2 when the root holds `cgroup.controllers` (the unified hierarchy).
    pub fn new(root: &Path) -> Cgroups {
        let version = if root.join("cgroup.controllers").exists() {
            Version::V2
        } else {
            Version::V1
        };
        Cgroups {
            root: root.to_path_buf(),
            version,
            found: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// A reading of container `id` (its full id).
    pub fn read(&self, id: &str) -> Result<CgroupSample, CgroupError> {
        let dirs = self.dirs(id)?;
        let result = self.read_dirs(&dirs);
        if result.is_err() {
            // The container may have been recreated elsewhere: look again next time.
            self.cache().remove(id);
        }
        result
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Dirs>> {
        self.found.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The whole file at `path`, through a kept descriptor when there is
    /// one (a failed read of it opens the path afresh, so a file that went
    /// away fails as an open would).
    fn text(&self, path: &Path) -> Result<String, CgroupError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if let Some((file, used)) = open.get_mut(path) {
            *used = now;
            if let Ok(text) = from_start(file) {
                return Ok(text);
            }
            open.remove(path);
        }
        let failed = |source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(failed)?;
        let text = from_start(&file).map_err(failed)?;
        if open.len() >= MAX_OPEN {
            open.retain(|_, (_, used)| now.duration_since(*used) < STALE);
        }
        if open.len() < MAX_OPEN {
            open.insert(path.to_path_buf(), (file, now));
        }
        Ok(text)
    }

    fn signed(&self, path: &Path) -> Result<i64, CgroupError> {
        let t = self.text(path)?;
        t.trim().parse().map_err(|_| CgroupError::Parse {
            path: path.to_path_buf(),
            text: t,
        })
    }

    fn number(&self, path: &Path) -> Result<u64, CgroupError> {
        let t = self.text(path)?;
        t.trim().parse().map_err(|_| CgroupError::Parse {
            path: path.to_path_buf(),
            text: t,
        })
    }

    fn dirs(&self, id: &str) -> Result<Dirs, CgroupError> {
        if let Some(d) = self.cache().get(id) {
            return Ok(d.clone());
        }
        let not_found = || CgroupError::NotFound {
            id: id.to_string(),
            root: self.root.clone(),
        };
        let dirs = match self.version {
            Version::V2 => Dirs::V2(locate(&self.root, id).ok_or_else(not_found)?),
            Version::V1 => Dirs::V1 {
                memory: locate(&self.root.join("memory"), id).ok_or_else(not_found)?,
                cpu: locate(&self.root.join("cpu"), id).ok_or_else(not_found)?,
                cpuacct: locate(&self.root.join("cpuacct"), id).ok_or_else(not_found)?,
            },
        };
        self.cache().insert(id.to_string(), dirs.clone());
        Ok(dirs)
    }
}

/// The container's folder under one hierarchy: the two Docker layouts
/// first, then a walk at most four levels deep.
fn locate(tree: &Path, id: &str) -> Option<PathBuf> {
    let known = [
        tree.join("docker").join(id),
        tree.join("system.slice").join(format!("docker-{id}.scope")),
    ];
    if let Some(p) = known.into_iter().find(|p| p.is_dir()) {
        return Some(p);
    }
    walk(tree, id, 4)
}

fn walk(dir: &Path, id: &str, depth: usize) -> Option<PathBuf> {
    if depth == 0 {
        return None;
    }
    let entries = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        if entry.file_name().to_string_lossy().contains(id) {
            return Some(entry.path());
        }
        subdirs.push(entry.path());
    }
    subdirs.into_iter().find_map(|d| walk(&d, id, depth - 1))
}

impl Cgroups {
    fn read_dirs(&self, dirs: &Dirs) -> Result<CgroupSample, CgroupError> {
        let read_at = Utc::now();
        match dirs {
            Dirs::V1 {
                memory,
                cpu,
                cpuacct,
            } => {
                let usage = self.number(&memory.join("memory.usage_in_bytes"))?;
                let stat = self.text(&memory.join("memory.stat"))?;
                // `total_` counts the subtree, which is the whole container.
                let inactive_file = field(&stat, "total_inactive_file")
                    .or_else(|| field(&stat, "inactive_file"))
                    .unwrap_or(0);
                let limit = self.number(&memory.join("memory.limit_in_bytes"))?;
                let oom = self.text(&memory.join("memory.oom_control"))?;
                let quota = self.signed(&cpu.join("cpu.cfs_quota_us"))?;
                let period = self.signed(&cpu.join("cpu.cfs_period_us"))?;
                let nanos = self.number(&cpuacct.join("cpuacct.usage"))?;
                Ok(CgroupSample {
                    read_at,
                    cpu_seconds: nanos as f64 / 1e9,
                    cpu_limit: cores(quota, period),
                    memory: MemoryUsage {
                        usage,
                        inactive_file,
                        limit: if limit >= UNLIMITED_V1 { 0 } else { limit },
                    },
                    oom_kills: field(&oom, "oom_kill").unwrap_or(0),
                })
            }
            Dirs::V2(dir) => {
                let usage = self.number(&dir.join("memory.current"))?;
                let stat = self.text(&dir.join("memory.stat"))?;
                let max = self.text(&dir.join("memory.max"))?;
                let events = self.text(&dir.join("memory.events"))?;
                let cpu_stat = self.text(&dir.join("cpu.stat"))?;
                let cpu_max_path = dir.join("cpu.max");
                let cpu_max = self.text(&cpu_max_path)?;
                let usec = field(&cpu_stat, "usage_usec").ok_or_else(|| CgroupError::Parse {
                    path: dir.join("cpu.stat"),
                    text: cpu_stat.clone(),
                })?;
                let mut parts = cpu_max.split_whitespace();
                let quota = match parts.next() {
                    Some("max") | None => -1,
                    Some(q) => q.parse().map_err(|_| CgroupError::Parse {
                        path: cpu_max_path.clone(),
                        text: cpu_max.clone(),
                    })?,
                };
                let period = parts.next().and_then(|p| p.parse().ok()).unwrap_or(100_000);
                Ok(CgroupSample {
                    read_at,
                    cpu_seconds: usec as f64 / 1e6,
                    cpu_limit: cores(quota, period),
                    memory: MemoryUsage {
                        usage,
                        inactive_file: field(&stat, "inactive_file").unwrap_or(0),
                        limit: max.trim().parse().unwrap_or(0),
                    },
                    oom_kills: field(&events, "oom_kill").unwrap_or(0),
                })
            }
        }
    }
}

fn cores(quota: i64, period: i64) -> f64 {
    if quota > 0 && period > 0 {
        quota as f64 / period as f64
    } else {
        0.0
    }
}

/// A file read from offset 0 to its end without moving a shared offset.
fn from_start(file: &File) -> std::io::Result<String> {
    let mut bytes = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read_at(&mut chunk, bytes.len() as u64)?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// `key value` lines (memory.stat, memory.events, cpu.stat, oom_control).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next() == Some(key))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, body) in files {
            std::fs::write(dir.join(name), body).unwrap();
        }
    }

    #[test]
    fn reads_a_v1_cgroupfs_container() {
        let root = tempfile::tempdir().unwrap();
        let id = "abc123";
        put(
            &root.path().join("memory/docker").join(id),
            &[
                ("memory.usage_in_bytes", "104857600\n"),
                (
                    "memory.stat",
                    "cache 10\ninactive_file 5\ntotal_inactive_file 20971520\n",
                ),
                ("memory.limit_in_bytes", "134217728\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
            ],
        );
        put(
            &root.path().join("cpu/docker").join(id),
            &[
                ("cpu.cfs_quota_us", "50000\n"),
                ("cpu.cfs_period_us", "100000\n"),
            ],
        );
        put(
            &root.path().join("cpuacct/docker").join(id),
            &[("cpuacct.usage", "2500000000\n")],
        );
        let cg = Cgroups::new(root.path());
        assert_eq!(cg.version(), Version::V1);
        let s = cg.read(id).unwrap();
        assert_eq!(s.cpu_seconds, 2.5);
        assert_eq!(s.cpu_limit, 0.5);
        assert_eq!(s.memory.working_set(), 80 << 20);
        assert_eq!(s.memory.limit, 128 << 20);
        assert_eq!(s.oom_kills, 2);
    }

    #[test]
    fn reads_a_v2_systemd_container_and_unlimited_means_zero() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        let id = "def456";
        put(
            &root
                .path()
                .join("system.slice")
                .join(format!("docker-{id}.scope")),
            &[
                ("memory.current", "1000\n"),
                ("memory.stat", "anon 900\ninactive_file 100\n"),
                ("memory.max", "max\n"),
                ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
                ("cpu.stat", "usage_usec 1500000\nuser_usec 1\n"),
                ("cpu.max", "max 100000\n"),
            ],
        );
        let cg = Cgroups::new(root.path());
        assert_eq!(cg.version(), Version::V2);
        let s = cg.read(id).unwrap();
        assert_eq!(s.cpu_seconds, 1.5);
        assert_eq!(s.cpu_limit, 0.0);
        assert_eq!(s.memory.working_set(), 900);
        assert_eq!(s.memory.limit, 0);
        assert_eq!(s.oom_kills, 1);
    }

    #[test]
    fn a_kept_file_is_read_afresh_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpuacct.usage");
        std::fs::write(&path, "1\n").unwrap();
        let cg = Cgroups::new(dir.path());
        assert_eq!(cg.number(&path).unwrap(), 1);
        // Rewritten in place, as the kernel regenerates a control file.
        std::fs::write(&path, "22\n").unwrap();
        assert_eq!(cg.number(&path).unwrap(), 22);
        assert_eq!(cg.open.lock().unwrap().len(), 1, "kept open");
        std::fs::remove_file(&path).unwrap();
        let gone = dir.path().join("gone");
        assert!(cg.number(&gone).unwrap_err().to_string().contains("gone"));
    }

    #[test]
    fn a_nested_layout_is_found_by_walking_and_a_missing_one_is_named() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "").unwrap();
        put(
            &root
                .path()
                .join("kubepods/burstable/pod1/cri-containerd-zz9"),
            &[
                ("memory.current", "10\n"),
                ("memory.stat", "inactive_file 0\n"),
                ("memory.max", "2048\n"),
                ("memory.events", "oom_kill 0\n"),
                ("cpu.stat", "usage_usec 1\n"),
                ("cpu.max", "200000 100000\n"),
            ],
        );
        let cg = Cgroups::new(root.path());
        let s = cg.read("zz9").unwrap();
        assert_eq!(s.cpu_limit, 2.0);
        assert_eq!(s.memory.limit, 2048);
        let err = cg.read("gone").unwrap_err().to_string();
        assert!(
            err.contains("gone") && err.contains("watch.cgroup_root"),
            "{err}"
        );
    }
}
