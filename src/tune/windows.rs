//! The windows a change is judged by: which kind (plain or aligned to a
//! CHECKPOINT), the before-window, and the re-measurement after a rollback.
//!
//! Plain windows are the last `observe` of Prometheus' history before the
//! change and the `observe` after it settled, compared by median. Aligned
//! windows each open with a CHECKPOINT the tuner issues, because WAL comes in
//! full-page-image bursts after every checkpoint: compared by window mean,
//! paired by transactions since it. A window opened by a CHECKPOINT is only
//! ever compared with another one, WAL goal or not, since its I/O burst would
//! otherwise flatter whatever comes after.

use std::collections::BTreeSet;
use std::time::Duration;

use super::cycle::Tuner;
use super::observe::{observe, Count, Opening, Tripwires, Windows};
use super::ports::ObserveError;
use super::TuneError;
use crate::journal::{tuning_log, Shutdown};
use crate::judge::reference::Reference;
use crate::judge::Ended;
use crate::levers::catalog::Symptom;
use crate::levers::port::LeverBackend;
use crate::metrics::Sample;

/// The tuning.log phase of the first cycle's first before-window, which
/// only measures how far two windows of one setting drift.
pub const DRIFT_PHASE: &str = "before_drift";

/// How a change's before- and after-windows are taken and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Plain,
    Aligned,
}

impl WindowKind {
    pub fn of(reference: &Reference) -> WindowKind {
        if reference.aligned {
            WindowKind::Aligned
        } else {
            WindowKind::Plain
        }
    }

    pub fn aligned(self) -> bool {
        self == WindowKind::Aligned
    }

    /// After-windows and re-measurements open the way their reference did.
    pub fn opening(self, backend: &dyn LeverBackend) -> Opening<'_> {
        match self {
            WindowKind::Aligned => Opening::Checkpoint(backend),
            WindowKind::Plain => Opening::Plain(backend),
        }
    }
}

/// One tuning.log line, with the transactions counted since the window's
/// CHECKPOINT (or its start) when they were read.
pub fn log_line(
    s: &Sample,
    change_id: &str,
    phase: &str,
    count: Option<Count>,
) -> serde_json::Value {
    let mut line = tuning_log::line(s.at, change_id, phase, &s.values);
    let (key, n) = match count {
        Some(Count::SinceCheckpoint(n)) => ("transactions_since_checkpoint", n),
        Some(Count::SinceStart(n)) => ("transactions_since_window_start", n),
        None => return line,
    };
    if let Some(map) = line.as_object_mut() {
        map.insert(key.into(), n.into());
    }
    line
}

impl Tuner<'_> {
    /// The window the change is judged against. For a WAL goal, one that
    /// starts at a CHECKPOINT whenever the database can take one: measured
    /// now when there is none yet, or when the one held is the first window
    /// after the last kept change (a stale "before", see `reference`; the
    /// drift between the two windows of the setting in force is kept). Any
    /// other goal reuses the window held, else, when the database counts
    /// transactions, a window observed now (throughput guards every change,
    /// and Prometheus' history has no counts), else Prometheus' history.
    /// A window observed now with none held before it (the first cycle) is
    /// observed twice, and judged against with the drift between the two:
    /// the band must know how far two windows of one setting differ before
    /// any change is called a win (`judge::reference`).
    pub(super) async fn before_window(
        &mut self,
        change_id: &str,
        goal: &str,
        wal_goal: bool,
        firing: &BTreeSet<String>,
        shutdown: &mut Shutdown,
    ) -> Result<Reference, TuneError> {
        let held = self.reference.take();
        let needs_fresh = wal_goal
            && match &held {
                // A stale aligned window, or one not aligned at all.
                Some(r) => r.after_change || !r.aligned,
                None => true,
            };
        // With no aligned window held, the fresh one is the first of two.
        let first_of_two = !matches!(&held, Some(r) if r.aligned);
        let phase = if first_of_two { DRIFT_PHASE } else { "before" };
        let chosen = if needs_fresh {
            match self
                .window_from_checkpoint(change_id, phase, firing, shutdown)
                .await?
            {
                Some(fresh) => Some(match held {
                    Some(r) if r.aligned => self.with_drifts(fresh, &r, goal),
                    _ => {
                        self.second_window(change_id, fresh, goal, firing, shutdown, |t| {
                            Opening::Checkpoint(t.cx.backend)
                        })
                        .await?
                    }
                }),
                None => held,
            }
        } else {
            held
        };
        if let Some(r) = chosen {
            return Ok(r);
        }
        if let Some(live) = self
            .counted_window(change_id, DRIFT_PHASE, firing, shutdown)
            .await?
        {
            return self
                .second_window(change_id, live, goal, firing, shutdown, |t| {
                    Opening::Plain(t.cx.backend)
                })
                .await;
        }
        let w = self.opts.windows;
        let history = self.cx.observer.history(w.observe, w.interval).await?;
        Ok(Reference::new(history, false, None))
    }

    /// `later` with the drift of the goal (and of throughput) from
    /// `earlier`, a window of the same setting (`judge::reference`).
    pub(super) fn with_drifts(
        &self,
        later: Reference,
        earlier: &Reference,
        goal: &str,
    ) -> Reference {
        let config = self.cx.config;
        let interval = self.opts.windows.interval;
        let rule = &self.opts.rule;
        let per = super::cycle::per_transaction(config, goal);
        let stride = super::cycle::goal_stride(config, goal, interval);
        let span = super::cycle::throughput_span(config);
        later
            .with_drift_from(earlier, goal, per, rule, stride)
            .with_throughput_drift_from(earlier, span, rule, interval)
    }

    /// The first cycle's second before-window, opened as `first` was: the
    /// change is judged against it, with the drift from `first`.
    async fn second_window(
        &self,
        change_id: &str,
        first: Reference,
        goal: &str,
        firing: &BTreeSet<String>,
        shutdown: &mut Shutdown,
        opening: impl for<'t> Fn(&'t Self) -> Opening<'t>,
    ) -> Result<Reference, TuneError> {
        self.cx.progress.step(
            "measuring a second window before the change: how far two windows of one setting drift",
        );
        let second = self
            .live_window(change_id, "before", opening(self), firing, shutdown)
            .await?;
        Ok(self.with_drifts(second, &first, goal))
    }

    /// A plain before-window observed now, logged as `phase`, when
    /// the database counts transactions; `None` when it cannot.
    async fn counted_window(
        &self,
        change_id: &str,
        phase: &str,
        firing: &BTreeSet<String>,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Reference>, TuneError> {
        match self.cx.backend.transactions().await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!("cannot count transactions; the window before the change comes from Prometheus' history, and throughput is not guarded: {e}");
                return Ok(None);
            }
        }
        self.cx
            .progress
            .step("measuring the window before the change, counting transactions");
        self.live_window(
            change_id,
            phase,
            Opening::Plain(self.cx.backend),
            firing,
            shutdown,
        )
        .await
        .map(Some)
    }

    /// A fresh before-window after a rollback, logged to tuning.log as phase
    /// `remeasure`. `None` (the next cycle then reads Prometheus' history)
    /// when interrupted, when data is missing, or when an alert fires.
    pub(super) async fn remeasure(
        &self,
        change_id: &str,
        kind: WindowKind,
        shutdown: &mut Shutdown,
    ) -> Option<Reference> {
        if shutdown.count() > 0 {
            return None;
        }
        self.cx.progress.step("re-measuring after the rollback");
        let firing: BTreeSet<String> = self
            .cx
            .observer
            .firing_triggers()
            .await
            .ok()?
            .into_iter()
            .collect();
        let log = self.cx.tuning_log.clone();
        let id = change_id.to_string();
        let observation = observe(
            self.cx.observer,
            &self.opts.windows,
            kind.opening(self.cx.backend),
            Tripwires {
                firing_before: &firing,
                required: &[],
            },
            shutdown,
            self.cx.progress,
            |s, work| {
                Ok(tuning_log::append(
                    &log,
                    &log_line(s, &id, "remeasure", work),
                )?)
            },
        )
        .await
        .ok()?;
        (observation.ended == Ended::Complete && !observation.interrupted)
            .then(|| Reference::new(observation.samples, kind.aligned(), observation.counts))
    }

    /// A before-window that starts at a CHECKPOINT, for a WAL goal, logged
    /// to tuning.log as `phase`. `None` when the backend has no
    /// database to checkpoint (the cycle then judges unaligned windows, with
    /// the provisional note); an error when the CHECKPOINT or the metrics
    /// fail, since nothing has changed yet and nothing needs undoing.
    async fn window_from_checkpoint(
        &self,
        change_id: &str,
        phase: &str,
        firing: &BTreeSet<String>,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Reference>, TuneError> {
        if shutdown.count() > 0 {
            return Err(TuneError::Interrupted);
        }
        self.cx
            .progress
            .step("measuring WAL from a CHECKPOINT before the change");
        // Sampling starts once the metrics' lookback has passed this
        // CHECKPOINT, as it does after the one `observe` issues for the
        // after-window, so sample i of both sits at the same offset from it.
        if !self.cx.backend.checkpoint().await? {
            return Ok(None);
        }
        self.live_window(
            change_id,
            phase,
            Opening::AfterCheckpoint(self.cx.backend),
            firing,
            shutdown,
        )
        .await
        .map(Some)
    }

    /// A before-window observed now, without settling (nothing changed),
    /// logged to tuning.log as `phase`. Missing data or an alert is
    /// an error: nothing has changed yet, and nothing needs undoing.
    async fn live_window(
        &self,
        change_id: &str,
        phase: &str,
        opening: Opening<'_>,
        firing: &BTreeSet<String>,
        shutdown: &mut Shutdown,
    ) -> Result<Reference, TuneError> {
        if shutdown.count() > 0 {
            return Err(TuneError::Interrupted);
        }
        let windows = Windows {
            settle: Duration::ZERO,
            ..self.opts.windows
        };
        let aligned = !matches!(opening, Opening::Plain(_));
        let log = self.cx.tuning_log.clone();
        let id = change_id.to_string();
        let phase = phase.to_string();
        let observation = observe(
            self.cx.observer,
            &windows,
            opening,
            Tripwires {
                firing_before: firing,
                required: &[],
            },
            shutdown,
            self.cx.progress,
            |s, work| Ok(tuning_log::append(&log, &log_line(s, &id, &phase, work))?),
        )
        .await?;
        if observation.interrupted {
            return Err(TuneError::Interrupted);
        }
        match observation.ended {
            Ended::Complete => Ok(Reference::new(
                observation.samples,
                aligned,
                observation.counts,
            )),
            Ended::NoData(why) => Err(ObserveError(why).into()),
            Ended::AlertFired(name) => Err(ObserveError(format!(
                "alert {name} started firing before any change was made"
            ))
            .into()),
        }
    }
}

/// How a cycle for this symptom is judged, for `--dry-run`.
pub fn windows_plan(symptom: Symptom, w: &Windows) -> String {
    let observe = crate::config::units::format_duration(w.observe);
    let settle = crate::config::units::format_duration(w.settle);
    let lookback = crate::config::units::format_duration(w.lookback);
    // Said in both plans: the guard no objective names.
    let throughput = "throughput (transactions/s from pg_stat_database, counted with every sample when PostgreSQL is reachable) must not fall beyond its noise band";
    if symptom == Symptom::HighWalRate {
        format!(
            "CHECKPOINT, wait {lookback} (the WAL query's lookback), observe {observe} (before; twice in the first cycle, for the drift between two windows of one setting); apply; settle {settle}; CHECKPOINT, wait {lookback}, observe {observe} (after); WAL compared by window mean, paired by transactions since the CHECKPOINT (by time when the database cannot count them; without a database to checkpoint: the last {observe} from Prometheus, by median), per transaction for metrics marked `per: transaction`; the band is at least the drift between two windows of the setting in force; tested over readings one query lookback apart, two-sided; {throughput}"
        )
    } else {
        format!(
            "observe {observe} (before, twice in the first cycle, for the drift between two windows of one setting; the last {observe} from Prometheus when the database cannot count transactions); apply; settle {settle}; observe {observe} (after); compared by median, tested over readings one query lookback apart, two-sided; {throughput}"
        )
    }
}
