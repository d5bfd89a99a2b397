//! Settling and watching after a change: samples every SLA metric at a fixed
//! interval, stops at once on a new tuning alert, on missing metrics, or on
//! an interrupt.

use std::collections::BTreeSet;
use std::time::Duration;

use super::ports::Observer;
use super::TuneError;
use crate::journal::Events;
use crate::journal::Shutdown;
use crate::judge::throughput::Counts;
use crate::judge::Ended;
use crate::levers::port::LeverBackend;
use crate::metrics::Sample;

#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub settle: Duration,
    pub observe: Duration,
    pub interval: Duration,
    /// How far back the metrics' queries read (`metrics::lookback`): after a
    /// CHECKPOINT the first sample waits this long, so no sample of a window
    /// opened by one still averages in what came before it.
    pub lookback: Duration,
}

impl Windows {
    /// Samples in one observation window (at least one).
    pub fn samples(&self) -> u64 {
        let interval = self.interval.as_millis().max(1);
        (self.observe.as_millis() / interval).max(1) as u64
    }
}

/// Whether a window starts at a CHECKPOINT, and who issues it. The backend
/// also counts the window's transactions, when it has a database.
#[derive(Clone, Copy)]
pub enum Opening<'a> {
    /// Sample right after settling.
    Plain(&'a dyn LeverBackend),
    /// Issue a CHECKPOINT through this backend after settling.
    Checkpoint(&'a dyn LeverBackend),
    /// The caller has just issued the CHECKPOINT through this backend.
    AfterCheckpoint(&'a dyn LeverBackend),
}

#[derive(Debug, Clone)]
pub struct Observation {
    pub samples: Vec<Sample>,
    /// Per sample, transactions since the window's CHECKPOINT (or since its
    /// first sample's interval began, in a plain window); `None` when the
    /// counter could not be read.
    pub counts: Option<Counts>,
    pub ended: Ended,
    /// The first interrupt arrived: the caller rolls back and stops.
    pub interrupted: bool,
}

/// A tuning alert that was not already firing before the change.
async fn new_alert(
    observer: &dyn Observer,
    before: &BTreeSet<String>,
) -> Result<Option<String>, String> {
    let firing = observer
        .firing_triggers()
        .await
        .map_err(|e| format!("cannot read alerts: {e}"))?;
    Ok(firing.into_iter().find(|a| !before.contains(a)))
}

/// Why a wait ended early.
enum EarlyEnd {
    Interrupted,
    Ended(Ended),
}

impl EarlyEnd {
    fn with(self, samples: Vec<Sample>) -> Observation {
        match self {
            EarlyEnd::Interrupted => Observation {
                samples,
                counts: None,
                ended: Ended::Complete,
                interrupted: true,
            },
            EarlyEnd::Ended(ended) => Observation {
                samples,
                counts: None,
                ended,
                interrupted: false,
            },
        }
    }
}

/// Waits `total` in interval-sized steps, so an alert raised by the change
/// itself rolls it back without waiting for the whole time to pass. The
/// wait is reported as `what`, counted in seconds: settle and lookback can
/// last minutes, and a silent minute looks like a hang.
async fn wait(
    what: &str,
    total: Duration,
    windows: &Windows,
    observer: &dyn Observer,
    firing_before: &BTreeSet<String>,
    shutdown: &mut Shutdown,
    progress: &dyn Events,
) -> Option<EarlyEnd> {
    if total.is_zero() {
        return None;
    }
    progress.waiting_for(what, total);
    let end = waited(total, windows, observer, firing_before, shutdown, progress).await;
    progress.finished();
    end
}

async fn waited(
    total: Duration,
    windows: &Windows,
    observer: &dyn Observer,
    firing_before: &BTreeSet<String>,
    shutdown: &mut Shutdown,
    progress: &dyn Events,
) -> Option<EarlyEnd> {
    let mut left = total;
    while !left.is_zero() {
        let step = left.min(windows.interval.max(Duration::from_millis(1)));
        tokio::select! {
            biased;
            _ = shutdown.reached(1) => return Some(EarlyEnd::Interrupted),
            _ = tokio::time::sleep(step) => {}
        }
        left -= step;
        progress.advanced((total - left).as_secs_f64().round() as u64);
        match new_alert(observer, firing_before).await {
            Ok(Some(name)) => return Some(EarlyEnd::Ended(Ended::AlertFired(name))),
            Ok(None) => {}
            Err(why) => return Some(EarlyEnd::Ended(Ended::NoData(why))),
        }
    }
    None
}

/// What ends a window early, besides an interrupt: a tuning alert that was
/// not firing before it, and a `required` metric that goes silent (an empty
/// result, NaN, a series that disappeared) — failing closed, never judging
/// on what is left.
#[derive(Clone, Copy)]
pub struct Tripwires<'a> {
    pub firing_before: &'a BTreeSet<String>,
    pub required: &'a [String],
}

/// Settles; then, for a window opened by a CHECKPOINT (`opening`), issues it
/// if asked and waits out the metrics' lookback; then samples
/// `windows.samples()` times, ending early on a `tripwire`. Every window
/// counts its transactions when the backend has a database (throughput is a
/// guard of every change). `on_sample` records each sample with its count
/// (tuning.log) before the next one is taken. A failed CHECKPOINT ends the
/// window as no data: a window that cannot be aligned cannot be judged
/// against one that was.
pub async fn observe(
    observer: &dyn Observer,
    windows: &Windows,
    opening: Opening<'_>,
    tripwires: Tripwires<'_>,
    shutdown: &mut Shutdown,
    progress: &dyn Events,
    mut on_sample: impl FnMut(&Sample, Option<Count>) -> Result<(), TuneError>,
) -> Result<Observation, TuneError> {
    let Tripwires {
        firing_before,
        required,
    } = tripwires;
    let mut samples = Vec::new();
    let stop = |samples, ended| Ok(EarlyEnd::Ended(ended).with(samples));

    progress.step("settling");
    let settling = "settling after the change";
    if let Some(end) = wait(
        settling,
        windows.settle,
        windows,
        observer,
        firing_before,
        shutdown,
        progress,
    )
    .await
    {
        return Ok(end.with(samples));
    }

    let checkpointed = match opening {
        Opening::Plain(_) => false,
        Opening::Checkpoint(backend) => {
            progress.step("CHECKPOINT: the window starts at a known point of the WAL cycle");
            match backend.checkpoint().await {
                Ok(true) => {}
                Ok(false) => {
                    return stop(
                        samples,
                        Ended::NoData("no database backend to CHECKPOINT".into()),
                    )
                }
                Err(e) => return stop(samples, Ended::NoData(format!("CHECKPOINT failed: {e}"))),
            }
            true
        }
        Opening::AfterCheckpoint(_) => true,
    };
    let backend = match opening {
        Opening::Plain(b) | Opening::Checkpoint(b) | Opening::AfterCheckpoint(b) => b,
    };
    // From the CHECKPOINT, so aligned windows pair by work since it; a plain
    // window from its start.
    let mut work = WorkCounter::start(backend, checkpointed).await;
    if checkpointed {
        if !windows.lookback.is_zero() {
            progress.step(&format!(
                "waiting {} after the CHECKPOINT: the metrics' queries look back that far",
                crate::config::units::format_duration(windows.lookback)
            ));
        }
        let lookback = "waiting out the queries' lookback after the CHECKPOINT";
        if let Some(end) = wait(
            lookback,
            windows.lookback,
            windows,
            observer,
            firing_before,
            shutdown,
            progress,
        )
        .await
        {
            return Ok(end.with(samples));
        }
    }

    let total = windows.samples();
    progress.waiting("observing", Some(total));
    for done in 1..=total {
        tokio::select! {
            biased;
            _ = shutdown.reached(1) => {
                progress.finished();
                return Ok(EarlyEnd::Interrupted.with(samples));
            }
            _ = tokio::time::sleep(windows.interval) => {}
        }
        match new_alert(observer, firing_before).await {
            Ok(Some(name)) => {
                progress.finished();
                return stop(samples, Ended::AlertFired(name));
            }
            Ok(None) => {}
            Err(why) => {
                progress.finished();
                return stop(samples, Ended::NoData(why));
            }
        }
        let sample = match observer.sample().await {
            Ok(s) => s,
            Err(e) => {
                progress.finished();
                return stop(
                    samples,
                    Ended::NoData(format!("Prometheus unreachable during observation: {e}")),
                );
            }
        };
        on_sample(&sample, work.read().await)?;
        progress.advanced(done);
        if let Some(gone) = required.iter().find(|m| sample.get(m).is_none()) {
            progress.finished();
            let why = format!(
                "{gone} has no data at sample {done} of {total} (an empty result, NaN, or its series disappeared)"
            );
            samples.push(sample);
            return stop(samples, Ended::NoData(why));
        }
        samples.push(sample);
    }
    progress.finished();
    Ok(Observation {
        samples,
        counts: work.finish(),
        ended: Ended::Complete,
        interrupted: false,
    })
}

/// Transactions counted with one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    /// Since the window's CHECKPOINT.
    SinceCheckpoint(f64),
    /// Since the window started (a plain window).
    SinceStart(f64),
}

/// The database's transactions since a window's CHECKPOINT (or its start),
/// read with each sample, with the time since then on tokio's clock. One
/// failed read drops the whole series: an aligned window is then paired by
/// time, and throughput cannot be judged (fail closed when the window before
/// the change had it).
struct WorkCounter<'a> {
    backend: Option<&'a dyn LeverBackend>,
    since_checkpoint: bool,
    start: u64,
    started: tokio::time::Instant,
    counts: Counts,
}

impl<'a> WorkCounter<'a> {
    fn off() -> WorkCounter<'a> {
        WorkCounter {
            backend: None,
            since_checkpoint: false,
            start: 0,
            started: tokio::time::Instant::now(),
            counts: Counts::default(),
        }
    }

    async fn start(backend: &'a dyn LeverBackend, since_checkpoint: bool) -> WorkCounter<'a> {
        match backend.transactions().await {
            Ok(Some(start)) => WorkCounter {
                backend: Some(backend),
                since_checkpoint,
                start,
                started: tokio::time::Instant::now(),
                counts: Counts::default(),
            },
            Ok(None) => WorkCounter::off(),
            Err(e) => {
                tracing::warn!("cannot read the transaction counter; throughput is not counted in this window: {e}");
                WorkCounter::off()
            }
        }
    }

    /// Reads the counter for the sample just taken, or `None` once the
    /// series is dropped.
    async fn read(&mut self) -> Option<Count> {
        let backend = self.backend?;
        match backend.transactions().await {
            // A counter that went backwards (statistics reset) says nothing.
            Ok(Some(n)) if n >= self.start => {
                let since = (n - self.start) as f64;
                self.counts.transactions.push(since);
                self.counts
                    .seconds
                    .push(self.started.elapsed().as_secs_f64());
                Some(if self.since_checkpoint {
                    Count::SinceCheckpoint(since)
                } else {
                    Count::SinceStart(since)
                })
            }
            other => {
                if let Err(e) = other {
                    tracing::warn!("cannot read the transaction counter; throughput is not counted in this window: {e}");
                }
                self.backend = None;
                None
            }
        }
    }

    fn finish(self) -> Option<Counts> {
        self.backend.map(|_| self.counts)
    }
}
