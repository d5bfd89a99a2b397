//! One check over every managed container, as a reconcile: read the
//! actual usage and limits, decide from them and the saved state, act on
//! the difference, save the state. Safe to re-run after a crash: the
//! journal's recovery runs first, and the state is saved after each check.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::apply::{Applied, Applier, ApplyError};
use super::policy::{self, Adjustment, Decision, Reading};
use super::source::{Cpu, Managed, Sample, Samples, UsageSource};
use super::state::{self, ServiceState, StateError, WatchState};
use super::swap::BlueGreen;
use crate::config::watch::WatchConfig;
use crate::journal::{Events, Shutdown};
use crate::runtime::{DockerError, Found, Runtime, ServiceQuery, COMPOSE_PROJECT};

/// How long the first check waits between two CPU readings of a container
/// it has no earlier reading of, so even the first check has a rate.
pub const PRIME: Duration = Duration::from_millis(1000);

/// The longest a running watch goes without listing the engine's
/// containers or writing its state. Within it a check reuses the last list
/// (a container gone or recreated fails its read, which lists again) and
/// skips a write that would only refresh the CPU counter and the words of
/// the last decision: at a 5 s interval the list and the fsync were most of
/// a quiet check's cost.
pub const REFRESH: Duration = Duration::from_secs(60);

/// What one process's checks remember between them.
#[derive(Default)]
pub struct Memo {
    /// The containers the last list found, and when it ran.
    listed: std::sync::Mutex<Option<(Instant, Vec<Managed>)>>,
    /// The state as last written, and when.
    saved: std::sync::Mutex<Option<(Instant, WatchState)>>,
}

impl Memo {
    fn listed(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Vec<Managed>)>> {
        // A poisoned lock only means a panic elsewhere; the memo is a cache.
        self.listed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn saved(&self) -> std::sync::MutexGuard<'_, Option<(Instant, WatchState)>> {
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `state` must be written: it changed in more than the CPU
/// counter and the last decision's words (which a restart can do without:
/// the next rate spans the gap, and the next check rewrites the words), or
/// the last write is older than `REFRESH`.
fn worth_saving(last: Option<&(Instant, WatchState)>, state: &WatchState, now: Instant) -> bool {
    let Some((at, written)) = last else {
        return true;
    };
    if now.duration_since(*at) >= REFRESH || written.services.len() != state.services.len() {
        return true;
    }
    written
        .services
        .iter()
        .zip(&state.services)
        .any(|((k1, a), (k2, b))| {
            k1 != k2
                || a != &ServiceState {
                    last_cpu: a.last_cpu,
                    last_decision: a.last_decision.clone(),
                    ..b.clone()
                }
        })
}

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
    /// How services in `watch.blue_green` are swapped; `None` leaves them
    /// with an error row (a config without them needs no router).
    pub blue_green: Option<BlueGreen<'a>>,
    /// Progress: the waits, and each adjustment as it starts.
    pub events: &'a dyn Events,
    /// Each service's row as soon as it is decided (and acted on), so a
    /// consumer of the JSON stream sees a decision before a long swap ends.
    pub decided: &'a (dyn Fn(&Row) + Send + Sync),
    pub memo: Memo,
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
        let (managed, missing) = self.managed().await?;
        let mut rows = Vec::with_capacity(managed.len() + missing.len());
        for row in missing {
            self.push(&mut rows, row);
        }
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
                    self.push(&mut rows, row);
                    continue;
                }
                None => {
                    row.error = Some("no reading".into());
                    self.push(&mut rows, row);
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
                } else {
                    let applied = self.act(m, adj, now).await?;
                    if matches!(applied, Applied::Done { .. }) {
                        policy::record_change(st, now);
                    }
                    row.applied = Some(applied);
                }
            }
            st.last_decision = describe(&decision, row.applied.as_ref());
            row.reading = Some(reading);
            row.decision = Some(decision);
            self.push(&mut rows, row);
        }
        // Anything out of the ordinary (a service not found or not read, an
        // adjustment tried) lists the containers afresh next time.
        if rows
            .iter()
            .any(|r| r.error.is_some() || r.applied.is_some())
        {
            *self.memo.listed() = None;
        }
        if !self.dry_run {
            let mut last = self.memo.saved();
            let now = Instant::now();
            if worth_saving(last.as_ref(), saved, now) {
                state::save(&self.state_path, saved)?;
                *last = Some((now, saved.clone()));
            }
        }
        Ok(CheckReport {
            at: Utc::now(),
            source: self.source.name(),
            dry_run: self.dry_run,
            rows,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// A live update, or a blue-green swap for the services configured so.
    async fn act(
        &self,
        m: &Managed,
        adj: &Adjustment,
        now: DateTime<Utc>,
    ) -> Result<Applied, WatchError> {
        if !self.cfg.blue_green.contains(&m.service) {
            self.events.step(&format!(
                "{}: {} in place ({})",
                m.service,
                adj.describe(),
                adj.reason
            ));
            return Ok(self.applier.apply(m, adj, now).await?);
        }
        match &self.blue_green {
            Some(bg) => Ok(self.applier.swap(bg, m, adj, now).await?),
            None => Ok(Applied::Failed {
                id: None,
                error: "listed under watch.blue_green, but this run has no deploy router".into(),
            }),
        }
    }

    fn push(&self, rows: &mut Vec<Row>, row: Row) {
        (self.decided)(&row);
        rows.push(row);
    }

    /// Waits `interval` before the next check, shown as a wait counted in
    /// seconds; false when a shutdown cut it short.
    pub async fn pause(&self, interval: Duration, shutdown: &mut Shutdown) -> bool {
        self.events.waiting_for("next check", interval);
        // A tick per tenth of the wait (1 s at least): progress without
        // waking a 5 s daemon more than a few times per check.
        let step = (interval / 10).max(Duration::from_secs(1));
        let started = Instant::now();
        let mut waited = true;
        while let Some(left) = interval
            .checked_sub(started.elapsed())
            .filter(|l| !l.is_zero())
        {
            tokio::select! {
                _ = tokio::time::sleep(left.min(step)) => {}
                _ = shutdown.reached(1) => {
                    waited = false;
                    break;
                }
            }
            self.events.advanced(started.elapsed().as_secs());
        }
        self.events.finished();
        waited
    }

    /// The running containers to watch, plus rows for configured services
    /// with none. One list call for all of them.
    async fn managed(&self) -> Result<(Vec<Managed>, Vec<Row>), WatchError> {
        if let Some((at, managed)) = self.memo.listed().as_ref() {
            if at.elapsed() < REFRESH {
                return Ok((managed.clone(), Vec::new()));
            }
        }
        let (managed, missing) = self.list().await?;
        *self.memo.listed() = missing
            .is_empty()
            .then(|| (Instant::now(), managed.clone()));
        Ok((managed, missing))
    }

    async fn list(&self) -> Result<(Vec<Managed>, Vec<Row>), WatchError> {
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
        self.events.waiting_for("first CPU readings", PRIME);
        tokio::time::sleep(PRIME).await;
        self.events.finished();
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

#[cfg(test)]
#[path = "cycle_tests.rs"]
mod tests;
