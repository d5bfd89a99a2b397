//! Where a check reads usage. The port is one call for all managed
//! containers, so a source that can answer for all at once (Prometheus:
//! one query per metric) never asks once per service.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::runtime::cgroup::Cgroups;
use crate::runtime::Runtime;

/// A container `watch` manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    pub service: String,
    pub container_id: String,
    pub container_name: String,
}

/// CPU as the source has it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cpu {
    /// Seconds used since the container started: a rate needs the previous check's.
    Counter(f64),
    /// Cores in use, already a rate.
    Rate(f64),
}

/// One container's usage at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub read_at: DateTime<Utc>,
    pub cpu: Cpu,
    /// Cores allowed; 0 = none.
    pub cpu_limit: f64,
    pub memory_used: u64,
    /// 0 = none.
    pub memory_limit: u64,
    pub oom_kills: u64,
}

/// Per container id: its sample or why there is none.
pub type Samples = BTreeMap<String, Result<Sample, String>>;

#[async_trait]
pub trait UsageSource: Send + Sync {
    /// `cgroup`, `prometheus`, `docker`: shown with every check.
    fn name(&self) -> &'static str;

    async fn read(&self, containers: &[Managed]) -> Samples;
}

/// The kernel's cgroup files.
pub struct CgroupSource {
    pub cgroups: Cgroups,
}

#[async_trait]
impl UsageSource for CgroupSource {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    async fn read(&self, containers: &[Managed]) -> Samples {
        containers
            .iter()
            .map(|c| {
                let sample = self
                    .cgroups
                    .read(&c.container_id)
                    .map(|s| Sample {
                        read_at: s.read_at,
                        cpu: Cpu::Counter(s.cpu_seconds),
                        cpu_limit: s.cpu_limit,
                        memory_used: s.memory.working_set(),
                        memory_limit: s.memory.limit,
                        oom_kills: s.oom_kills,
                    })
                    .map_err(|e| e.to_string());
                (c.container_id.clone(), sample)
            })
            .collect()
    }
}

/// The engine's stats API through `Runtime::usage`: a call per container,
/// about a second each here, so only when nothing else is available.
pub struct DockerSource<'a> {
    pub runtime: &'a dyn Runtime,
}

#[async_trait]
impl UsageSource for DockerSource<'_> {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn read(&self, containers: &[Managed]) -> Samples {
        // OOM events of the last day stand in for the kernel's counter: a
        // new kill raises the count, an old one ageing out only lowers it.
        let since = Utc::now() - Duration::hours(24);
        let reads = containers.iter().map(|c| async move {
            let usage = self.runtime.usage(&c.container_id, Some(since)).await;
            let limits = self.runtime.inspect(&c.container_id).await;
            let sample = match (usage, limits) {
                (Ok(u), Ok(i)) => Ok(Sample {
                    read_at: u.read_at,
                    cpu: Cpu::Counter(u.cpu_seconds),
                    cpu_limit: i.limits.cpus,
                    memory_used: u.memory.working_set(),
                    memory_limit: i.limits.memory,
                    oom_kills: u.oom_events.unwrap_or(0),
                }),
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            };
            (c.container_id.clone(), sample)
        });
        futures::future::join_all(reads).await.into_iter().collect()
    }
}

/// A source, and the Docker stats API for the containers it cannot read
/// (a cgroup tree that is not mounted here, a layout not found): the last
/// resort only where needed.
pub struct WithFallback<'a> {
    pub first: Box<dyn UsageSource + 'a>,
    pub last: Box<dyn UsageSource + 'a>,
}

#[async_trait]
impl UsageSource for WithFallback<'_> {
    fn name(&self) -> &'static str {
        self.first.name()
    }

    async fn read(&self, containers: &[Managed]) -> Samples {
        let mut samples = self.first.read(containers).await;
        let missing: Vec<Managed> = containers
            .iter()
            .filter(|c| !matches!(samples.get(&c.container_id), Some(Ok(_))))
            .cloned()
            .collect();
        if missing.is_empty() {
            return samples;
        }
        for (id, sample) in self.last.read(&missing).await {
            let first_error = samples
                .get(&id)
                .and_then(|s| s.as_ref().err())
                .cloned()
                .unwrap_or_default();
            let sample = sample.map_err(|e| format!("{first_error}; docker stats: {e}"));
            samples.insert(id, sample);
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers for the ids it knows, errs for the rest; counts its calls.
    struct Fixed(Vec<&'static str>, std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl UsageSource for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }

        async fn read(&self, containers: &[Managed]) -> Samples {
            self.1
                .fetch_add(containers.len(), std::sync::atomic::Ordering::SeqCst);
            containers
                .iter()
                .map(|c| {
                    let s = if self.0.contains(&c.container_id.as_str()) {
                        Ok(Sample {
                            read_at: Utc::now(),
                            cpu: Cpu::Counter(1.0),
                            cpu_limit: 1.0,
                            memory_used: 1,
                            memory_limit: 2,
                            oom_kills: 0,
                        })
                    } else {
                        Err(format!("{} cannot read", c.container_id))
                    };
                    (c.container_id.clone(), s)
                })
                .collect()
        }
    }

    fn managed(id: &str) -> Managed {
        Managed {
            service: id.into(),
            container_id: id.into(),
            container_name: id.into(),
        }
    }

    #[tokio::test]
    async fn the_last_resort_reads_only_what_the_first_could_not() {
        let source = WithFallback {
            first: Box::new(Fixed(vec!["a"], Default::default())),
            last: Box::new(Fixed(vec!["b"], Default::default())),
        };
        let s = source
            .read(&[managed("a"), managed("b"), managed("c")])
            .await;
        assert!(s["a"].is_ok() && s["b"].is_ok());
        let err = s["c"].as_ref().unwrap_err();
        assert!(
            err.contains("c cannot read; docker stats: c cannot read"),
            "{err}"
        );
    }
}
