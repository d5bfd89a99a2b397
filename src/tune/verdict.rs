//! Step 5 of a cycle: judge the observation against the before-window, journal
//! the verdict, keep the change or roll it back, and record it.

use crate::journal::Shutdown;
use crate::judge::reference::Reference;
use crate::judge::stats::median;
use crate::judge::throughput::Counted;
use crate::judge::{self, JudgeInput, Judgement};
use crate::levers::catalog::Symptom;
use crate::metrics::{Sample, SlaReport};

use super::change::Change;
use super::cycle::{metric_specs, per_transaction, throughput_span, Tuner};
use super::observe::Observation;
use super::record;
use super::report::CycleReport;
use super::restore::restore;
use super::TuneError;

impl Tuner<'_> {
    /// Judges `change`, keeps or rolls it back, and writes its changelog
    /// entry. After a rollback the next change gets a fresh before-window
    /// (when another cycle may follow), with the drift between the two
    /// windows of the restored setting.
    pub(super) async fn judge_and_settle(
        &mut self,
        change: Change,
        report: &SlaReport,
        observation: Observation,
        shutdown: &mut Shutdown,
    ) -> Result<CycleReport, TuneError> {
        let Change {
            id,
            cycle,
            kind,
            before,
            choice,
            ..
        } = change;
        let goal = choice.goal.clone();
        let lever = choice.candidate.lever.clone();
        let mv = choice.candidate.mv.clone();
        let windows = self.opts.windows;
        let mut out = CycleReport {
            cycle,
            change_id: id.clone(),
            goal_metric: goal.clone(),
            symptom: choice.symptom,
            lever: lever.name.clone(),
            assignment: lever.assignment(mv.to.as_deref()),
            mv: mv.clone(),
            cost: choice.candidate.cost,
            plan: choice.candidate.plan.clone(),
            verdict: None,
            kept: false,
            reason: String::new(),
            provisional: None,
            evidence: None,
            goal_before: None,
            goal_after: None,
            goal_per_transaction: false,
            throughput: None,
            samples_before: before.samples.len(),
            samples_after: observation.samples.len(),
            skipped: choice.skipped.clone(),
        };

        if observation.interrupted {
            self.cx.progress.step("interrupted: rolling back");
            restore(&self.cx, &id, &lever, &mv, shutdown).await?;
            out.reason = "interrupted during observation; rolled back".into();
            self.cx.landed.landed(&out);
            record::changelog(&self.cx, &out, &lever, None, &windows)?;
            return Ok(out);
        }

        let wal_goal = choice.symptom == Symptom::HighWalRate;
        let specs = metric_specs(self.cx.config, report);
        let counts_span = throughput_span(self.cx.config);
        let counts = Counted {
            before: before.counts.as_ref(),
            after: observation.counts.as_ref(),
            span: counts_span,
            drift: before.throughput_drift,
        };
        let per_goal = per_transaction(self.cx.config, &goal);
        // The drift is in the units the goal is judged in.
        let per_counted = per_goal.is_some() && counts.before.is_some() && counts.after.is_some();
        let judgement: Judgement = judge::judge(&JudgeInput {
            goal: &goal,
            metrics: &specs,
            before: &before.samples,
            after: &observation.samples,
            ended: &observation.ended,
            observed: windows.observe,
            wal_goal,
            aligned: kind.aligned(),
            counts,
            drift: before.drift_of(&goal, per_counted),
            checkpoint_timeout: self.checkpoint_timeout(wal_goal).await,
            interval: windows.interval,
            rule: self.opts.rule,
        });
        self.cx
            .ledger
            .decision(&id, judgement.verdict, &judgement.reason)?;
        crate::crash::at(crate::crash::Point::Verdict);
        out.verdict = Some(judgement.verdict);
        out.kept = judgement.verdict.keeps();
        out.reason = judgement.reason.clone();
        out.provisional = judgement.provisional.clone();
        out.evidence = judgement.goal.as_ref().map(judge::describe);
        out.goal_per_transaction = judgement.goal.as_ref().is_some_and(|g| g.per_transaction);
        out.throughput = judgement.throughput.clone();
        // Without a full comparison (no data, an alert) still show what was seen.
        let seen = |samples: &[Sample]| {
            let v: Vec<f64> = samples.iter().filter_map(|s| s.get(&goal)).collect();
            median(&v)
        };
        out.goal_before = judgement
            .goal
            .as_ref()
            .map(|g| g.before)
            .or_else(|| seen(&before.samples));
        out.goal_after = judgement
            .goal
            .as_ref()
            .map(|g| g.after)
            .or_else(|| seen(&observation.samples));

        if out.kept {
            self.cx.landed.landed(&out);
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
                ..Reference::new(observation.samples, kind.aligned(), observation.counts)
            });
        } else {
            self.cx
                .progress
                .step(&format!("rolling back {}", lever.name));
            restore(&self.cx, &id, &lever, &mv, shutdown).await?;
            // Heard now, not after the fresh window below (settle plus a
            // whole observation) that only serves the next change.
            self.cx.landed.landed(&out);
            self.exhausted.insert(lever.name.clone());
            // Back where we were, but not back when: load and background work
            // drift, so a window from before this change would judge the next
            // one against stale numbers. Measure afresh (settle, then a full
            // window) when another cycle may follow. After the last one, the
            // window before the change still describes the state restored,
            // and the final SLA reading needs it when it opened at a
            // CHECKPOINT.
            let earlier = Reference::new(before.samples, kind.aligned(), before.counts);
            self.reference = if cycle < self.opts.max_cycles {
                self.remeasure(&id, kind, shutdown)
                    .await
                    .map(|r| self.with_drifts(r, &earlier, &goal))
            } else {
                Some(earlier)
            };
        }
        record::changelog(&self.cx, &out, &lever, Some(&judgement), &windows)?;
        Ok(out)
    }
}
