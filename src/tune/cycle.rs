//! The closed loop. Each cycle is a reconcile step: measure the live SLA,
//! diff it with the objectives, act on the worst difference, record.
//!
//! measure → (SLA met? stop) → worst violated objective's symptom → cheapest
//! untried lever → journal intent → apply → settle → observe → judge → keep
//! or roll back → changelog → next cycle.
//!
//! Restartability: the run refuses to start over unfinished journal entries
//! (`tuner rollback` restores them), every external change is journaled
//! before it happens, and the before-window of the first change is read from
//! Prometheus' history, so no state lives only in this process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use super::ledger::{Action, Ledger, Status};
use super::observe::{observe, Opening, Shutdown, Windows};
use super::ports::{ObserveError, Observer, Progress};
use super::record;
use super::report::{CycleReport, DryRunPlan, Outcome, RunReport};
use super::restore::restore;
use super::TuneError;
use crate::config::Config;
use crate::journal::{backup, tuning_log};
use crate::judge::aligned;
use crate::judge::reference::Reference;
use crate::judge::stats::median;
use crate::judge::{self, Ended, JudgeInput, Judgement, MetricSpec, Rule};
use crate::levers::catalog::{Catalog, Lever, Symptom};
use crate::levers::choose::{self, Candidate, Skipped};
use crate::levers::port::LeverBackend;
use crate::metrics::Sample;
use crate::metrics::{measure, Baseline, SlaReport, State, Verdict, WalWindow};

/// Everything a run reads from and writes to.
pub struct Context<'a> {
    pub config: &'a Config,
    pub baseline: Option<&'a Baseline>,
    pub catalog: &'a Catalog,
    pub backend: &'a dyn LeverBackend,
    pub observer: &'a dyn Observer,
    pub progress: &'a dyn Progress,
    pub ledger: Ledger,
    pub changelog: PathBuf,
    pub tuning_log: PathBuf,
    pub backups_dir: PathBuf,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub max_cycles: u32,
    pub windows: Windows,
    pub dry_run: bool,
    pub rule: Rule,
}

/// The SLA metrics the judge protects, with their limits.
fn metric_specs(config: &Config, report: &SlaReport) -> Vec<MetricSpec> {
    let objectives = config.objectives();
    report
        .metrics
        .iter()
        .filter(|m| m.state != State::Untracked)
        .map(|m| MetricSpec {
            name: m.name.clone(),
            direction: config
                .metrics
                .get(&m.name)
                .map(|d| d.direction)
                .unwrap_or_default(),
            limit: objectives.get(&m.name).map(|o| o.comparison).zip(m.limit),
        })
        .collect()
}

/// A metric whose symptom is WAL volume: measured over checkpoint-aligned
/// windows when the tuner can issue a CHECKPOINT, and read as a window mean
/// by the SLA measurement, which decides which metrics those are.
fn is_wal_metric(config: &Config, name: &str) -> bool {
    config
        .metrics
        .get(name)
        .is_some_and(crate::metrics::measure::is_wal_metric)
}

/// How far back the WAL metrics' queries read: how long a window opened by
/// a CHECKPOINT waits before its first sample.
pub fn wal_lookback(config: &Config) -> Duration {
    config
        .metrics
        .iter()
        .filter(|(name, _)| is_wal_metric(config, name))
        .map(|(_, d)| crate::metrics::lookback::lookback(&d.query))
        .max()
        .unwrap_or_default()
}

/// Violated objectives, worst first, with their symptoms.
fn violations(report: &SlaReport) -> Result<Vec<(String, Option<Symptom>)>, TuneError> {
    let mut violated: Vec<_> = report
        .metrics
        .iter()
        .filter(|m| m.state == State::Violated)
        .collect();
    violated.sort_by(|a, b| b.excess.unwrap_or(0.0).total_cmp(&a.excess.unwrap_or(0.0)));
    violated
        .into_iter()
        .map(|m| {
            let symptom = match &m.symptom {
                Some(s) => Some(
                    s.parse::<Symptom>()
                        .map_err(|_| TuneError::UnknownSymptom {
                            metric: m.name.clone(),
                            symptom: s.clone(),
                        })?,
                ),
                None => None,
            };
            Ok((m.name.clone(), symptom))
        })
        .collect()
}

/// Says plainly which objectives a run that stopped on a violation could
/// not judge: their "no data" is not a clean bill of health.
fn not_measured(message: &mut String, report: &SlaReport) {
    if let Some(list) = report.unmeasured() {
        message.push_str(&format!("\nnot measured: {list}"));
    }
}

/// After-windows and re-measurements open the way their reference did.
fn opening(aligned: bool, backend: &dyn LeverBackend) -> Opening<'_> {
    if aligned {
        Opening::Checkpoint(backend)
    } else {
        Opening::Plain
    }
}

/// One tuning.log line, with the transactions since the window's CHECKPOINT
/// when they were read.
fn log_line(s: &Sample, change_id: &str, phase: &str, work: Option<f64>) -> serde_json::Value {
    let mut line = tuning_log::line(s.at, change_id, phase, &s.values);
    if let (Some(work), Some(map)) = (work, line.as_object_mut()) {
        map.insert("transactions_since_checkpoint".into(), work.into());
    }
    line
}

struct Choice {
    goal: String,
    symptom: Symptom,
    candidate: Candidate,
    skipped: Vec<Skipped>,
}

pub struct Tuner<'a> {
    cx: Context<'a>,
    opts: Options,
    run_id: String,
    /// Levers tried without effect (or harmfully) in this run.
    exhausted: BTreeSet<String>,
    /// The window describing the current state, the "before" of the next change.
    reference: Option<Reference>,
    backup: Option<PathBuf>,
}

impl<'a> Tuner<'a> {
    pub fn new(cx: Context<'a>, opts: Options) -> Tuner<'a> {
        Tuner {
            cx,
            opts,
            run_id: Utc::now().format("%Y%m%dT%H%M%SZ").to_string(),
            exhausted: BTreeSet::new(),
            reference: None,
            backup: None,
        }
    }

    /// Reads the SLA through the one measurement `tuner status` uses; the
    /// instant values go to tuning.log unless this is a dry run. WAL metrics
    /// are read over the last window opened by a CHECKPOINT when there is
    /// one, else over the last `observe` of Prometheus' history.
    async fn measure(&self, label: &str) -> Result<SlaReport, TuneError> {
        let w = self.opts.windows;
        let wal = match self.aligned_wal_window() {
            Some(samples) => WalWindow::FromCheckpoint(samples),
            None => WalWindow::History {
                span: w.observe,
                step: w.interval,
            },
        };
        let cx = &self.cx;
        let report = measure(cx.observer.metrics(), cx.config, cx.baseline, wal).await?;
        if !self.opts.dry_run {
            let values: BTreeMap<String, Option<f64>> = report
                .metrics
                .iter()
                .map(|m| (m.name.clone(), m.now))
                .collect();
            let line = tuning_log::line(report.at, label, "measure", &values);
            tuning_log::append(&self.cx.tuning_log, &line)?;
        }
        Ok(report)
    }

    /// The last observed window when it started at a CHECKPOINT: WAL metrics
    /// are read as its mean, since an instant reading after a change that
    /// spaced checkpoints out sits in the full-page-image-free floor and
    /// would call the SLA met too early.
    fn aligned_wal_window(&self) -> Option<&[Sample]> {
        self.reference
            .as_ref()
            .filter(|r| r.aligned)
            .map(|r| r.samples.as_slice())
    }

    /// The worst violated objective that still has a lever, and that lever;
    /// without one, every lever passed over and why.
    async fn choose(&self, report: &SlaReport) -> Result<Result<Choice, Vec<Skipped>>, TuneError> {
        let mut passed_over = Vec::new();
        for (goal, symptom) in violations(report)? {
            let Some(symptom) = symptom else {
                passed_over.push(Skipped {
                    lever: "-".into(),
                    reason: format!("{goal} has no symptom in tuner.yaml"),
                });
                continue;
            };
            let (found, mut skipped) =
                choose::candidates(self.cx.catalog, symptom, &self.exhausted, self.cx.backend)
                    .await?;
            passed_over.append(&mut skipped);
            if let Some(candidate) = choose::pick(found) {
                return Ok(Ok(Choice {
                    goal,
                    symptom,
                    candidate,
                    skipped: passed_over,
                }));
            }
        }
        Ok(Err(passed_over))
    }

    /// Runs cycles until the SLA holds, no lever is left, `max_cycles` ran,
    /// or an interrupt. Nothing external changes in a dry run.
    pub async fn run(mut self, shutdown: &mut Shutdown) -> Result<RunReport, TuneError> {
        let unfinished: Vec<String> = self
            .cx
            .ledger
            .changes()?
            .into_iter()
            .filter(|c| c.status() == Status::Unfinished)
            .map(|c| {
                format!(
                    "{} ({})",
                    c.change_id,
                    c.lever.assignment(c.mv.to.as_deref())
                )
            })
            .collect();
        if !unfinished.is_empty() {
            return Err(TuneError::Unfinished(unfinished));
        }

        let mut cycles = Vec::new();
        for cycle in 1..=self.opts.max_cycles {
            self.cx.progress.phase(&format!("cycle {cycle}: measuring"));
            let report = self.measure(&format!("{}-{cycle}", self.run_id)).await?;
            if !report.violated() {
                return Ok(self.settled(cycles, report));
            }
            let choice = match self.choose(&report).await? {
                Ok(choice) => choice,
                Err(passed_over) => {
                    // Say why each lever was passed over: a refused value
                    // (out of range, not in the enum, unsafe) is a catalog
                    // mistake the user must see to fix.
                    let mut message =
                        "SLA violated and no untried lever is left for its symptoms".to_string();
                    for s in &passed_over {
                        message.push_str(&format!("\n  skipped {}: {}", s.lever, s.reason));
                    }
                    not_measured(&mut message, &report);
                    return Ok(self.finish(Outcome::NoLever, cycles, Some(report), message));
                }
            };
            if self.opts.dry_run {
                let c = &choice.candidate;
                let plan = DryRunPlan {
                    goal_metric: choice.goal.clone(),
                    symptom: choice.symptom,
                    lever: c.lever.name.clone(),
                    assignment: c.lever.assignment(c.mv.to.as_deref()),
                    mv: c.mv.clone(),
                    cost: c.cost,
                    plan: c.plan.clone(),
                    windows: windows_plan(choice.symptom, &self.opts.windows),
                    skipped: choice.skipped.clone(),
                };
                let mut message = "dry run: nothing was changed".to_string();
                not_measured(&mut message, &report);
                let mut out = self.finish(Outcome::DryRun, cycles, Some(report), message);
                out.dry_run = Some(plan);
                return Ok(out);
            }
            let done = self.cycle(cycle, &report, choice, shutdown).await?;
            let interrupted = done.verdict.is_none();
            cycles.push(done);
            if interrupted {
                let message = "interrupted: the open change was rolled back".to_string();
                return Ok(self.finish(Outcome::Interrupted, cycles, None, message));
            }
        }
        let report = match self.measure(&format!("{}-end", self.run_id)).await {
            Ok(report) => report,
            // Metrics lost after changes were made and judged: still report
            // those cycles (what was kept, what was rolled back), not only
            // the error, so nobody has to guess what state they left.
            Err(e) if !cycles.is_empty() => {
                let message = format!("cannot measure the SLA after the last cycle: {e}");
                return Ok(self.finish(Outcome::Unmeasured, cycles, None, message));
            }
            Err(e) => return Err(e),
        };
        if report.violated() {
            let mut message = format!("SLA still violated after {} cycle(s)", self.opts.max_cycles);
            not_measured(&mut message, &report);
            Ok(self.finish(Outcome::StillViolated, cycles, Some(report), message))
        } else {
            Ok(self.settled(cycles, report))
        }
    }

    /// Nothing violated: "SLA met" when at least one objective was
    /// measured, naming any that were not; nothing measured is not "met".
    fn settled(&self, cycles: Vec<CycleReport>, report: SlaReport) -> RunReport {
        let mut message = report.summary();
        if report.verdict == Verdict::Unmeasured {
            message.push_str("; fix the metrics or drop their objectives from the profile");
            return self.finish(Outcome::Unmeasured, cycles, Some(report), message);
        }
        if self.aligned_wal_window().is_some() {
            // Right after "SLA met …", before any "; not measured: …".
            let at = message.find(';').unwrap_or(message.len());
            message.insert_str(
                at,
                " (WAL metrics: mean of the last window, which started at a CHECKPOINT)",
            );
        }
        self.finish(Outcome::SlaMet, cycles, Some(report), message)
    }

    fn finish(
        &self,
        outcome: Outcome,
        cycles: Vec<CycleReport>,
        sla: Option<SlaReport>,
        message: String,
    ) -> RunReport {
        RunReport {
            outcome,
            cycles,
            sla,
            dry_run: None,
            backup: self.backup.clone(),
            message,
        }
    }

    /// Backs up settings and every file any lever may touch, once per run,
    /// before the first change.
    async fn ensure_backup(&mut self) -> Result<(), TuneError> {
        if self.backup.is_some() {
            return Ok(());
        }
        let settings = self.cx.backend.settings_snapshot().await?;
        let mut files: Vec<PathBuf> = Vec::new();
        for lever in &self.cx.catalog.levers {
            for f in self.cx.backend.files_touched(lever) {
                if !files.contains(&f) {
                    files.push(f);
                }
            }
        }
        self.backup = Some(backup::create(
            &self.cx.backups_dir,
            Utc::now(),
            &settings,
            &files,
        )?);
        Ok(())
    }

    async fn cycle(
        &mut self,
        cycle: u32,
        report: &SlaReport,
        choice: Choice,
        shutdown: &mut Shutdown,
    ) -> Result<CycleReport, TuneError> {
        let Choice {
            goal,
            symptom,
            candidate,
            skipped,
        } = choice;
        let Candidate {
            lever,
            mut mv,
            plan,
            cost,
            ..
        } = candidate;
        let windows = self.opts.windows;
        let change_id = format!("{}-{cycle}", self.run_id);

        let wal_goal = symptom == Symptom::HighWalRate;

        // Everything that can fail without side effects happens first.
        let firing_before: BTreeSet<String> = self
            .cx
            .observer
            .firing_triggers()
            .await?
            .into_iter()
            .collect();
        let reference = match self.reference.take() {
            // The first window after the last kept change is a stale
            // "before" for WAL (see `reference`): measure afresh, and keep
            // how far the two windows of this setting drifted apart.
            Some(r) if wal_goal && r.aligned && r.after_change => match self
                .window_from_checkpoint(&change_id, &firing_before, shutdown)
                .await?
            {
                Some(fresh) => Some(fresh.with_drift_from(&r, &goal, &self.opts.rule)),
                None => Some(r),
            },
            Some(r) if r.aligned || !wal_goal => Some(r),
            other if wal_goal => match self
                .window_from_checkpoint(&change_id, &firing_before, shutdown)
                .await?
            {
                Some(aligned) => Some(aligned),
                None => other,
            },
            other => other,
        };
        let before = match reference {
            Some(r) => r,
            None => Reference::new(
                self.cx
                    .observer
                    .history(windows.observe, windows.interval)
                    .await?,
                false,
                None,
            ),
        };
        // A window opened by a CHECKPOINT is compared only with another one:
        // its I/O burst would otherwise flatter whatever comes after, WAL
        // goal or not.
        let aligned = before.aligned;
        let drift = before.drift_of(&goal);
        let before_work = before.work;
        let before = before.samples;
        self.ensure_backup().await?;
        // Reconcile: journal the value that is live now, not the one read
        // when the lever was chosen, so a rollback restores what was there.
        let live = self.cx.backend.current(&lever).await?;
        if live != mv.from {
            tracing::warn!(lever = %lever.name, "value changed since planning: {:?} -> {:?}", mv.from, live);
            mv.from = live;
        }

        // An interrupt that arrived while preparing: stop before touching anything.
        if shutdown.count() > 0 {
            return Err(TuneError::Interrupted);
        }
        self.cx.progress.phase(&format!(
            "cycle {cycle}: {}",
            lever.assignment(mv.to.as_deref())
        ));
        self.cx
            .ledger
            .intent(&change_id, Action::Apply, &lever, &mv)?;
        let applied = self.cx.backend.apply(&lever, &mv).await;
        crate::crash::at(crate::crash::Point::Apply);
        self.cx.ledger.outcome(
            &change_id,
            Action::Apply,
            &applied.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        )?;
        if let Err(e) = applied {
            // The outcome is unknown (half-applied?): restore, then stop.
            restore(&self.cx, &change_id, &lever, &mv, shutdown).await?;
            return Err(e.into());
        }

        let checkpoint_timeout = if wal_goal {
            match self
                .cx
                .backend
                .current(&Lever::postgres_probe("checkpoint_timeout"))
                .await
            {
                Ok(v) => v.as_deref().and_then(parse_pg_duration),
                Err(_) => None,
            }
        } else {
            None
        };

        let log = self.cx.tuning_log.clone();
        let id = change_id.clone();
        let observation = observe(
            self.cx.observer,
            &windows,
            opening(aligned, self.cx.backend),
            &firing_before,
            shutdown,
            self.cx.progress,
            |s, work| {
                tuning_log::append(&log, &log_line(s, &id, "observe", work))?;
                crate::crash::at(crate::crash::Point::Observe);
                Ok(())
            },
        )
        .await;
        let observation = match observation {
            Ok(o) => o,
            Err(e) => {
                restore(&self.cx, &change_id, &lever, &mv, shutdown).await?;
                return Err(e);
            }
        };

        let mut out = CycleReport {
            cycle,
            change_id: change_id.clone(),
            goal_metric: goal.clone(),
            symptom,
            lever: lever.name.clone(),
            assignment: lever.assignment(mv.to.as_deref()),
            mv: mv.clone(),
            cost,
            plan,
            verdict: None,
            kept: false,
            reason: String::new(),
            provisional: None,
            evidence: None,
            goal_before: None,
            goal_after: None,
            samples_before: before.len(),
            samples_after: observation.samples.len(),
            skipped,
        };

        if observation.interrupted {
            self.cx.progress.phase("interrupted: rolling back");
            restore(&self.cx, &change_id, &lever, &mv, shutdown).await?;
            out.reason = "interrupted during observation; rolled back".into();
            record::changelog(&self.cx, &out, &lever, None, &windows)?;
            return Ok(out);
        }

        let specs = metric_specs(self.cx.config, report);
        let judgement: Judgement = judge::judge(&JudgeInput {
            goal: &goal,
            metrics: &specs,
            before: &before,
            after: &observation.samples,
            ended: &observation.ended,
            observed: windows.observe,
            wal_goal,
            aligned,
            work: before_work
                .as_deref()
                .zip(observation.work.as_deref())
                .map(|(before, after)| aligned::Work { before, after }),
            drift: if wal_goal && aligned { drift } else { None },
            checkpoint_timeout,
            rule: self.opts.rule,
        });
        self.cx
            .ledger
            .decision(&change_id, judgement.verdict, &judgement.reason)?;
        out.verdict = Some(judgement.verdict);
        out.kept = judgement.verdict.keeps();
        out.reason = judgement.reason.clone();
        out.provisional = judgement.provisional.clone();
        out.evidence = judgement.goal.as_ref().map(judge::describe);
        // Without a full comparison (no data, an alert) still show what was seen.
        let seen = |samples: &[Sample]| {
            let v: Vec<f64> = samples.iter().filter_map(|s| s.get(&goal)).collect();
            median(&v)
        };
        out.goal_before = judgement
            .goal
            .as_ref()
            .map(|g| g.before)
            .or_else(|| seen(&before));
        out.goal_after = judgement
            .goal
            .as_ref()
            .map(|g| g.after)
            .or_else(|| seen(&observation.samples));

        if out.kept {
            // Another lever on the same setting is a fallback for this one
            // (lz4 when zstd costs too much): once a value is kept, moving
            // the setting again would undo a measured win.
            for other in &self.cx.catalog.levers {
                if other.name != lever.name && other.target.same_setting(&lever.target) {
                    self.exhausted.insert(other.name.clone());
                }
            }
            // The observation is the new normal: the next change is judged against it.
            self.reference = Some(Reference {
                after_change: true,
                ..Reference::new(observation.samples, aligned, observation.work)
            });
        } else {
            self.cx
                .progress
                .phase(&format!("rolling back {}", lever.name));
            restore(&self.cx, &change_id, &lever, &mv, shutdown).await?;
            self.exhausted.insert(lever.name.clone());
            // Back where we were, but not back when: load and background work
            // drift, so a window from before this change would judge the next
            // one against stale numbers. Measure afresh (settle, then a full
            // window) when another cycle may follow. After the last one, the
            // window before the change still describes the state restored,
            // and the final SLA reading needs it when it opened at a
            // CHECKPOINT.
            let earlier = Reference::new(before, aligned, before_work);
            self.reference = if cycle < self.opts.max_cycles {
                self.remeasure(&change_id, aligned, shutdown)
                    .await
                    .map(|r| r.with_drift_from(&earlier, &goal, &self.opts.rule))
            } else {
                Some(earlier)
            };
        }
        record::changelog(&self.cx, &out, &lever, Some(&judgement), &windows)?;
        Ok(out)
    }
}

impl Tuner<'_> {
    /// A fresh before-window after a rollback, logged to tuning.log as phase
    /// `remeasure`. `None` (the next cycle then reads Prometheus' history)
    /// when interrupted, when data is missing, or when an alert fires.
    async fn remeasure(
        &self,
        change_id: &str,
        aligned: bool,
        shutdown: &mut Shutdown,
    ) -> Option<Reference> {
        if shutdown.count() > 0 {
            return None;
        }
        self.cx.progress.phase("re-measuring after the rollback");
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
            opening(aligned, self.cx.backend),
            &firing,
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
            .then(|| Reference::new(observation.samples, aligned, observation.work))
    }

    /// A before-window that starts at a CHECKPOINT, for a WAL goal, logged
    /// to tuning.log as phase `before`. `None` when the backend has no
    /// database to checkpoint (the cycle then judges unaligned windows, with
    /// the provisional note); an error when the CHECKPOINT or the metrics
    /// fail, since nothing has changed yet and nothing needs undoing.
    async fn window_from_checkpoint(
        &self,
        change_id: &str,
        firing: &BTreeSet<String>,
        shutdown: &mut Shutdown,
    ) -> Result<Option<Reference>, TuneError> {
        if shutdown.count() > 0 {
            return Err(TuneError::Interrupted);
        }
        self.cx
            .progress
            .phase("measuring WAL from a CHECKPOINT before the change");
        // Sampling starts once the metrics' lookback has passed this
        // CHECKPOINT, as it does after the one `observe` issues for the
        // after-window, so sample i of both sits at the same offset from it.
        if !self.cx.backend.checkpoint().await? {
            return Ok(None);
        }
        let windows = Windows {
            settle: Duration::ZERO,
            ..self.opts.windows
        };
        let log = self.cx.tuning_log.clone();
        let id = change_id.to_string();
        let observation = observe(
            self.cx.observer,
            &windows,
            Opening::AfterCheckpoint(self.cx.backend),
            firing,
            shutdown,
            self.cx.progress,
            |s, work| Ok(tuning_log::append(&log, &log_line(s, &id, "before", work))?),
        )
        .await?;
        if observation.interrupted {
            return Err(TuneError::Interrupted);
        }
        match observation.ended {
            Ended::Complete => Ok(Some(Reference::new(
                observation.samples,
                true,
                observation.work,
            ))),
            Ended::NoData(why) => Err(ObserveError(why).into()),
            Ended::AlertFired(name) => Err(ObserveError(format!(
                "alert {name} started firing before any change was made"
            ))
            .into()),
        }
    }
}

/// How a cycle for this symptom is judged, for `--dry-run`.
fn windows_plan(symptom: Symptom, w: &Windows) -> String {
    let observe = crate::config::units::format_duration(w.observe);
    let settle = crate::config::units::format_duration(w.settle);
    let lookback = crate::config::units::format_duration(w.lookback);
    if symptom == Symptom::HighWalRate {
        format!(
            "CHECKPOINT, wait {lookback} (the WAL query's lookback), observe {observe} (before); apply; settle {settle}; CHECKPOINT, wait {lookback}, observe {observe} (after); WAL compared by window mean, paired by transactions since the CHECKPOINT (by time when the database cannot count them; without a database to checkpoint: the last {observe} from Prometheus, by median); after a kept change or a rollback, the band is at least the drift between two windows of the setting in force"
        )
    } else {
        format!(
            "the last {observe} from Prometheus (before); apply; settle {settle}; observe {observe} (after); compared by median"
        )
    }
}

/// Parses a PostgreSQL duration as `SHOW` prints it (`5min`, `300s`, `1h`)
/// or as `pg_settings.setting` holds it (a bare number of seconds).
pub fn parse_pg_duration(value: &str) -> Option<Duration> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let n: f64 = v[..split].parse().ok()?;
    let secs = match v[split..].trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}
