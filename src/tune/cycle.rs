//! The closed loop. Each cycle is a reconcile step, in five steps:
//!
//! 1. measure the live SLA (`measure`); stop when it holds;
//! 2. choose the cheapest untried lever for the worst violated objective's
//!    symptom (`choose`);
//! 3. journal the intent and apply it, holding the lever's target
//!    (`journal_and_apply`);
//! 4. settle and observe (`observe_change`), in windows of one kind, plain
//!    or aligned to a CHECKPOINT (`windows`);
//! 5. judge, then keep or roll back, and record (`verdict`).
//!
//! Restartability: the run first finishes what a crashed run left open (its
//! unfinished changes are restored through the same journaled path as
//! `tuner rollback`), every external change is journaled before it happens,
//! and the before-window of the first change is read from Prometheus'
//! history, so no state lives only in this process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use super::change::Change;
use super::ledger::{Ledger, Status};
use super::observe::Windows;
use super::ports::{Landed, Observer};
use super::report::{CycleReport, DryRunPlan, Outcome, RunReport};
use super::rollback::{rollback_reporting, Scope, Undo};
use super::windows::{windows_plan, WindowKind};
use super::TuneError;
use crate::config::Config;
use crate::journal::Events;
use crate::journal::{tuning_log, Locks, Shutdown};
use crate::judge::reference::Reference;
use crate::judge::{MetricSpec, Rule};
use crate::levers::catalog::{Catalog, Symptom};
use crate::levers::choose::{self, Candidate, Skipped};
use crate::levers::port::LeverBackend;
use crate::metrics::{measure, Baseline, Sample, SlaReport, State, Verdict, WalWindow};

/// Everything a run reads from and writes to.
pub struct Context<'a> {
    pub config: &'a Config,
    pub baseline: Option<&'a Baseline>,
    pub catalog: &'a Catalog,
    pub backend: &'a dyn LeverBackend,
    pub observer: &'a dyn Observer,
    pub progress: &'a dyn Events,
    /// Told of each change as soon as it is kept or rolled back.
    pub landed: &'a dyn Landed,
    pub ledger: Ledger,
    /// Every change holds its lever's target (a service, PostgreSQL) from
    /// its intent until it is kept or undone.
    pub locks: Locks,
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
    /// Whether levers whose plan restarts PostgreSQL may be chosen. The edge
    /// decides (a yes on a terminal, `--yes`, `tune.allow_restart`); when
    /// false they are passed over with that reason, as any refused lever.
    pub allow_restart: bool,
}

/// The SLA metrics the judge protects, with their limits.
pub(super) fn metric_specs(config: &Config, report: &SlaReport) -> Vec<MetricSpec> {
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
            per_transaction: per_transaction(config, &m.name),
            lookback: config
                .metrics
                .get(&m.name)
                .map(|d| crate::metrics::lookback::lookback(&d.query))
                .unwrap_or_default(),
        })
        .collect()
}

/// How many samples apart the goal's readings share no data (`judge::blocks`).
pub(super) fn goal_stride(config: &Config, goal: &str, interval: Duration) -> usize {
    let lookback = config
        .metrics
        .get(goal)
        .map(|d| crate::metrics::lookback::lookback(&d.query))
        .unwrap_or_default();
    crate::judge::blocks::stride(lookback, interval)
}

/// For a metric marked `per: transaction`, the span its query averages over
/// (its lookback): the judge divides it by the throughput over that span.
pub(super) fn per_transaction(config: &Config, name: &str) -> Option<Duration> {
    let def = config.metrics.get(name)?;
    def.per
        .map(|_| crate::metrics::lookback::lookback(&def.query))
}

/// The span throughput is read over for its guard: the longest lookback of
/// the metrics' queries, so it is as smooth as what it sits beside (the
/// counter is flushed about once a second, too coarse for one interval).
pub(super) fn throughput_span(config: &Config) -> Duration {
    config
        .metrics
        .values()
        .map(|d| crate::metrics::lookback::lookback(&d.query))
        .max()
        .unwrap_or_default()
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

/// The SLA metrics a change must not lose: tracked by an objective and
/// present in most of the before-window (a metric that never had data is
/// the SLA reading's problem, already reported, not the change's).
fn required_metrics(report: &SlaReport, before: &Reference) -> Vec<String> {
    report
        .metrics
        .iter()
        .filter(|m| m.state != State::Untracked)
        .filter(|m| {
            let present = before
                .samples
                .iter()
                .filter(|s| s.get(&m.name).is_some())
                .count();
            present * 2 > before.samples.len()
        })
        .map(|m| m.name.clone())
        .collect()
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

pub(super) struct Choice {
    pub goal: String,
    pub symptom: Symptom,
    pub candidate: Candidate,
    pub skipped: Vec<Skipped>,
}

pub struct Tuner<'a> {
    pub(super) cx: Context<'a>,
    pub(super) opts: Options,
    run_id: String,
    /// Levers tried without effect (or harmfully) in this run.
    pub(super) exhausted: BTreeSet<String>,
    /// The window describing the current state, the "before" of the next change.
    pub(super) reference: Option<Reference>,
    pub(super) backup: Option<PathBuf>,
    /// Changes a crashed run left open, restored before the first cycle.
    recovered: Vec<Undo>,
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
            recovered: Vec::new(),
        }
    }

    /// Finishes what a crashed run left open: every unfinished change is
    /// restored first, through the journaled path `tuner rollback` takes.
    /// A dry run changes nothing, so it names them and stops instead.
    async fn recover(&mut self) -> Result<(), TuneError> {
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
        if unfinished.is_empty() {
            return Ok(());
        }
        if self.opts.dry_run {
            return Err(TuneError::Unfinished(unfinished));
        }
        self.cx
            .progress
            .step("restoring the unfinished changes of an interrupted run");
        let report = rollback_reporting(
            &self.cx.ledger,
            &self.cx.locks,
            self.cx.backend,
            &self.cx.changelog,
            &Scope::Unfinished,
            false,
            self.cx.progress,
        )
        .await?;
        self.recovered = report.undone;
        Ok(())
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
            let found = if self.opts.allow_restart {
                found
            } else {
                let (found, mut held) = choose::hold_back_restarts(found);
                passed_over.append(&mut held);
                found
            };
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
        self.recover().await?;
        let mut cycles = Vec::new();
        for cycle in 1..=self.opts.max_cycles {
            self.cx.progress.step(&format!("cycle {cycle}: measuring"));
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
            recovered: self.recovered.clone(),
            message,
        }
    }

    /// One change, as the loop's steps 3-5 (`run` measured the SLA and
    /// chose the lever): journal and apply, observe, then judge and keep or
    /// roll back.
    async fn cycle(
        &mut self,
        cycle: u32,
        report: &SlaReport,
        choice: Choice,
        shutdown: &mut Shutdown,
    ) -> Result<CycleReport, TuneError> {
        let id = format!("{}-{cycle}", self.run_id);
        let wal_goal = choice.symptom == Symptom::HighWalRate;
        // Everything that can fail without side effects happens first.
        let firing_before: BTreeSet<String> = self
            .cx
            .observer
            .firing_triggers()
            .await?
            .into_iter()
            .collect();
        let before = self
            .before_window(&id, &choice.goal, wal_goal, &firing_before, shutdown)
            .await?;
        let required = required_metrics(report, &before);
        let mut change = Change {
            id,
            cycle,
            kind: WindowKind::of(&before),
            before,
            choice,
            required,
        };
        let _held = self.journal_and_apply(&mut change, shutdown).await?;
        let observation = self
            .observe_change(&change, &firing_before, shutdown)
            .await?;
        self.judge_and_settle(change, report, observation, shutdown)
            .await
    }
}
