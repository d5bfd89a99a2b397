//! One check over every managed container, as a reconcile: read the
//! actual usage and limits, decide from them and the saved state, act on
//! the difference, save the state. Safe to re-run after a crash: the
//! journal's recovery runs first, and the state is saved after each check.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::apply::{Applied, Applier, ApplyError};
use super::policy::{self, Decision, Reading};
use super::source::{Cpu, Managed, Sample, Samples, UsageSource};
use super::state::{self, StateError, WatchState};
use crate::config::watch::WatchConfig;
use crate::journal::Shutdown;
use crate::runtime::{DockerError, Found, Runtime, ServiceQuery, COMPOSE_PROJECT};

/// How long the first check waits between two CPU readings of a container
/// it has no earlier reading of, so even the first check has a rate.
pub const PRIME: Duration = Duration::from_millis(1000);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot list the containers to watch: {0}")]
    List(#[source] DockerError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// One service's line of a check.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub service: String,
    pub container: String,
    pub reading: Option<Reading>,
    pub decision: Option<Decision>,
    pub applied: Option<Applied>,
    /// Why the service could not be read or adjusted.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub at: DateTime<Utc>,
    pub source: &'static str,
    pub dry_run: bool,
    pub rows: Vec<Row>,
    pub seconds: f64,
}

pub struct Watch<'a> {
    pub cfg: &'a WatchConfig,
    pub runtime: &'a dyn Runtime,
    pub source: &'a dyn UsageSource,
    pub applier: Applier<'a>,
    pub state_path: PathBuf,
    /// `compose.project`: whose containers are watched when
    /// `watch.services` is empty, and which project's services it names.
    pub project: Option<String>,
    pub dry_run: bool,
}

impl Watch<'_> {
    /// One check. A dry run decides from a copy of the state and changes
    /// nothing, the saved state included.
    pub async fn check(
        &self,
        saved: &mut WatchState,
        shutdown: &Shutdown,
    ) -> Result<CheckReport, WatchError> {
        let started = Instant::now();
        let mut copy = saved.clone();
        let state = if self.dry_run { &mut copy } else { &mut *saved };
        let (managed, mut rows) = self.managed().await?;
        let samples = self.read(&managed, state).await;
        for m in &managed {
            let mut row = Row {
                service: m.service.clone(),
                container: m.container_name.clone(),
                reading: None,
                decision: None,
                applied: None,
                error: None,
            };
            let (prev, sample) = match samples.get(&m.container_id) {
                Some((prev, Ok(s))) => (*prev, *s),
                Some((_, Err(e))) => {
                    row.error = Some(e.clone());
                    rows.push(row);
                    continue;
                }
                None => {
                    row.error = Some("no reading".into());
                    rows.push(row);
                    continue;
                }
            };
            let st = state.services.entry(m.service.clone()).or_default();
            st.follow(&m.container_id);
            let reading = reading(m, prev.or(st.last_cpu), &sample);
            if let Cpu::Counter(secs) = sample.cpu {
                st.last_cpu = Some((secs, sample.read_at));
            }
            let now = sample.read_at;
            let decision = policy::decide(self.cfg, st, &reading, now);
            if let Decision::Adjust(adj) = &decision {
                if self.dry_run {
                    // Shown, not made.
                } else if shutdown.count() > 0 {
                    row.error = Some("stopping: not adjusted".into());
                } else if self.cfg.blue_green.contains(&m.service) {
                    row.error = Some(format!(
                        "configured for blue-green: run `tuner deploy {} {} {}` to apply",
                        m.service,
                        crate::runtime::limits::trim(
                            adj.cpus.map(|c| c.to).unwrap_or(reading.cpu_limit)
                        ),
                        crate::config::units::format_bytes(
                            adj.memory.map(|c| c.to).unwrap_or(reading.memory_limit)
                        )
                    ));
                } else {
                    let applied = self.applier.apply(m, adj, now).await?;
                    if matches!(applied, Applied::Done { .. }) {
                        policy::record_change(st, now);
                    }
                    row.applied = Some(applied);
                }
            }
            st.last_decision = describe(&decision, row.applied.as_ref());
            row.reading = Some(reading);
            row.decision = Some(decision);
            rows.push(row);
        }
        if !self.dry_run {
            state::save(&self.state_path, saved)?;
        }
        Ok(CheckReport {
            at: Utc::now(),
            source: self.source.name(),
            dry_run: self.dry_run,
            rows,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The running containers to watch, plus rows for configured services
    /// with none. One list call for all of them.
    async fn managed(&self) -> Result<(Vec<Managed>, Vec<Row>), WatchError> {
        let all: Vec<Found> = self.runtime.list().await.map_err(WatchError::List)?;
        let running: Vec<Found> = all.into_iter().filter(|c| c.state == "running").collect();
        let mut managed = Vec::new();
        let mut missing = Vec::new();
        if self.cfg.services.is_empty() {
            for c in &running {
                let in_project = match &self.project {
                    Some(p) => c.labels.get(COMPOSE_PROJECT) == Some(p),
                    None => false,
                };
                if in_project {
                    let service = c
                        .labels
                        .get(crate::runtime::COMPOSE_SERVICE)
                        .cloned()
                        .unwrap_or_else(|| c.name.clone());
                    managed.push(managed_of(&service, c));
                }
            }
        }
        for service in &self.cfg.services {
            let query = ServiceQuery {
                service: service.clone(),
                project: self.project.clone(),
            };
            match crate::runtime::find::select(&query, &running).first() {
                Some(c) => managed.push(managed_of(service, c)),
                None => missing.push(Row {
                    service: service.clone(),
                    container: "-".into(),
                    reading: None,
                    decision: None,
                    applied: None,
                    error: Some(format!("no running container for {query}")),
                }),
            }
        }
        managed.sort_by(|a, b| a.service.cmp(&b.service));
        managed.dedup_by(|a, b| a.service == b.service);
        Ok((managed, missing))
    }

    /// Samples of every container, with an earlier CPU reading for those
    /// the state has none of (taken `PRIME` before).
    async fn read(
        &self,
        managed: &[Managed],
        state: &WatchState,
    ) -> std::collections::BTreeMap<String, (Option<(f64, DateTime<Utc>)>, Result<Sample, String>)>
    {
        let first: Samples = self.source.read(managed).await;
        let unprimed: Vec<Managed> = managed
            .iter()
            .filter(|m| {
                let known = state
                    .services
                    .get(&m.service)
                    .is_some_and(|s| s.container_id == m.container_id && s.last_cpu.is_some());
                !known && matches!(first.get(&m.container_id), Some(Ok(s)) if matches!(s.cpu, Cpu::Counter(_)))
            })
            .cloned()
            .collect();
        let mut out: std::collections::BTreeMap<_, _> =
            first.into_iter().map(|(id, s)| (id, (None, s))).collect();
        if unprimed.is_empty() {
            return out;
        }
        tokio::time::sleep(PRIME).await;
        for (id, second) in self.source.read(&unprimed).await {
            if let Some((prev, slot)) = out.get_mut(&id) {
                if let Ok(Sample {
                    cpu: Cpu::Counter(secs),
                    read_at,
                    ..
                }) = slot
                {
                    *prev = Some((*secs, *read_at));
                }
                *slot = second;
            }
        }
        out
    }
}

fn managed_of(service: &str, c: &Found) -> Managed {
    Managed {
        service: service.to_string(),
        container_id: c.id.clone(),
        container_name: c.name.clone(),
    }
}

/// The policy's view of a sample: CPU as cores in use over the interval.
fn reading(m: &Managed, prev: Option<(f64, DateTime<Utc>)>, s: &Sample) -> Reading {
    let cpu_used = match s.cpu {
        Cpu::Rate(r) => Some(r),
        Cpu::Counter(now) => prev.and_then(|(before, at)| {
            let secs = (s.read_at - at).num_microseconds()? as f64 / 1e6;
            // A counter that went back belongs to a restarted container.
            (secs > 0.0 && now >= before).then(|| (now - before) / secs)
        }),
    };
    Reading {
        container_id: m.container_id.clone(),
        cpu_used,
        cpu_limit: s.cpu_limit,
        memory_used: s.memory_used,
        memory_limit: s.memory_limit,
        oom_kills: s.oom_kills,
    }
}

/// The last decision in words, for the state file and `/metrics`.
pub fn describe(d: &Decision, applied: Option<&Applied>) -> String {
    match (d, applied) {
        (Decision::Hold { reason }, _) => format!("hold: {reason}"),
        (Decision::Adjust(a), Some(Applied::Done { .. })) => {
            format!("{} {}: {}", a.direction().name(), a.describe(), a.reason)
        }
        (Decision::Adjust(a), Some(Applied::Busy { holder })) => {
            format!("wanted {}; service busy: {holder}", a.describe())
        }
        (Decision::Adjust(a), Some(Applied::Failed { error, .. })) => {
            format!("wanted {}; failed: {error}", a.describe())
        }
        (Decision::Adjust(a), None) => format!(
            "would {} {}: {}",
            a.direction().name(),
            a.describe(),
            a.reason
        ),
    }
}
