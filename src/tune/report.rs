//! What a tuning run returns: data only. `render` turns it into tables,
//! `--output json` prints it as is.

use std::path::PathBuf;

use serde::Serialize;

use crate::judge::{Shift, Verdict};
use crate::levers::catalog::{Cost, Symptom};
use crate::levers::choose::Skipped;
use crate::levers::port::{Move, Plan};
use crate::metrics::SlaReport;

use super::rollback::Undo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every objective holds.
    SlaMet,
    /// Cycles ran out with an objective still violated.
    StillViolated,
    /// No lever is left for any violated objective.
    NoLever,
    /// `--dry-run`: the first cycle's plan was printed, nothing changed.
    DryRun,
    /// Ctrl-C: the open change was rolled back and the run stopped.
    Interrupted,
    /// Nothing is violated, but some objective has no data or no baseline:
    /// "SLA met" cannot be claimed (fail closed).
    Unmeasured,
}

#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    pub cycle: u32,
    pub change_id: String,
    pub goal_metric: String,
    pub symptom: Symptom,
    pub lever: String,
    /// `max_wal_size=4GB`.
    pub assignment: String,
    pub mv: Move,
    pub cost: Cost,
    pub plan: Plan,
    /// `None` when the run was interrupted before a verdict.
    pub verdict: Option<Verdict>,
    pub kept: bool,
    pub reason: String,
    pub provisional: Option<String>,
    /// The goal's numbers behind the verdict: medians, noise band, p-value.
    pub evidence: Option<String>,
    pub goal_before: Option<f64>,
    pub goal_after: Option<f64>,
    /// The goal was judged per transaction (`per: transaction`): its
    /// before/after are per transaction, not per second.
    pub goal_per_transaction: bool,
    /// Throughput (transactions/s) before and after, with its noise band:
    /// `None` when the database could not count transactions in both windows.
    pub throughput: Option<Shift>,
    pub samples_before: usize,
    pub samples_after: usize,
    pub skipped: Vec<Skipped>,
}

/// What the first cycle would do, for `--dry-run`.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunPlan {
    pub goal_metric: String,
    pub symptom: Symptom,
    pub lever: String,
    pub assignment: String,
    pub mv: Move,
    pub cost: Cost,
    pub plan: Plan,
    /// How the change will be judged: which windows, opened how.
    pub windows: String,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub outcome: Outcome,
    pub cycles: Vec<CycleReport>,
    /// The last SLA measurement.
    pub sla: Option<SlaReport>,
    pub dry_run: Option<DryRunPlan>,
    pub backup: Option<PathBuf>,
    /// Changes an interrupted run left open, restored before the first cycle.
    pub recovered: Vec<Undo>,
    /// Why the run stopped, for humans.
    pub message: String,
}
