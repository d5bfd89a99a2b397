//! The same deploy on a Docker Swarm service: Swarm's own rollout does
//! the swap (start-first, one task at a time, rollback on failure), tuner
//! plans it, refuses what it would refuse for a container, journals the
//! intent before the write, follows the tasks and records the outcome.
//! An interrupted run leaves Swarm working; `recover` reads where the
//! service ended and closes the journal entry.

pub mod follow;
pub mod plan;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use serde::Serialize;

use super::analysis::Analysis;
pub use super::analysis::Gate;
use super::record::{Outcome, ServiceJournal};
use super::{DeployError, Phase};
use crate::journal::Events;
use crate::runtime::swarm::{Swarm, Task};
use crate::runtime::Limits;
use follow::{Ending, Follow};
pub use plan::{build, Ask, SwarmPlan};

#[derive(Debug, Clone, Serialize)]
pub struct SwarmReport {
    pub id: String,
    pub service: String,
    pub old: Limits,
    pub new: Limits,
    /// The limits in the service's spec afterwards.
    pub read_back: Limits,
    pub tasks: Vec<Task>,
    pub warnings: Vec<String>,
    pub outcome: Outcome,
    pub seconds: f64,
    /// The promotion gate's measurements, when there is one.
    pub analysis: Option<Analysis>,
}

pub struct SwarmRun<'a> {
    pub swarm: &'a dyn Swarm,
    pub journal: &'a ServiceJournal,
    pub events: &'a dyn Events,
    /// How long Swarm may take for the whole rollout.
    pub timeout: Duration,
    /// Judged once every task runs the new spec; failing it rolls back.
    pub gate: Option<Gate<'a>>,
}

impl SwarmRun<'_> {
    pub async fn run(&self, plan: &SwarmPlan) -> Result<SwarmReport, DeployError> {
        let r = &plan.record;
        let started = Instant::now();
        let phase = if plan.rollback {
            Phase::ServiceRollback
        } else {
            Phase::ServiceUpdate
        };
        self.journal.started(r)?;
        self.journal.phase(&r.id, phase)?;
        let fail = |reason: String, aftermath: String| DeployError::PhaseFailed {
            service: r.service.clone(),
            phase,
            reason,
            aftermath,
        };
        let live = self
            .swarm
            .service(&plan.service_id)
            .await?
            .ok_or_else(|| fail("the service is gone".into(), String::new()))?;
        let warnings = match self
            .swarm
            .update(&live_at(&live, plan), &plan.spec, plan.rollback)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                self.journal
                    .finished(&r.id, Outcome::Failed, Some(phase), Some(e.to_string()))?;
                return Err(fail(
                    e.to_string(),
                    format!("; {} keeps {}", r.service, r.old.describe()),
                ));
            }
        };
        for w in &warnings {
            tracing::info!("Swarm: {w}");
        }
        let (ending, tasks) = self.follow(plan).await?;
        let read_back = self
            .swarm
            .service(&plan.service_id)
            .await?
            .map(|s| s.limits())
            .unwrap_or(r.old);
        let done = |outcome: Outcome, analysis: Option<Analysis>| SwarmReport {
            id: r.id.clone(),
            service: r.service.clone(),
            old: r.old,
            new: r.new,
            read_back,
            tasks: tasks
                .iter()
                .filter(|t| t.desired == "running")
                .cloned()
                .collect(),
            warnings: warnings.clone(),
            outcome,
            seconds: started.elapsed().as_secs_f64(),
            analysis,
        };
        let succeeded = match (&ending, plan.rollback) {
            (Ending::Completed, false) | (Ending::RolledBack(_), true) => {
                read_back.same_size(&r.new)
            }
            _ => false,
        };
        if succeeded {
            let gated = match (self.gate, plan.rollback) {
                (Some(gate), false) => Some(
                    gate.judge(&r.service, self.events, self.journal, &r.id)
                        .await?,
                ),
                _ => None,
            };
            if let Some(a) = gated.as_ref().filter(|a| !a.passed) {
                return Err(self.roll_back_after_gate(plan, a).await?);
            }
            self.journal
                .finished(&r.id, Outcome::Succeeded, None, None)?;
            return Ok(done(Outcome::Succeeded, gated));
        }
        let (reason, aftermath) = match ending {
            Ending::RolledBack(m) if !plan.rollback => (
                format!("a new task did not stay healthy, so Swarm rolled the service back ({m})"),
                format!("; {} is back on {}", r.service, read_back.describe()),
            ),
            Ending::Paused(m) | Ending::RolledBack(m) => (
                format!("Swarm paused it: {m}"),
                format!("; the service spec now has {}: see `tuner deploy status {}`", read_back.describe(), r.service),
            ),
            Ending::TimedOut => (
                format!("Swarm had not finished after {:.0}s", self.timeout.as_secs_f64()),
                format!("; Swarm goes on with it: see `tuner deploy status {}`, or `tuner deploy rollback {}`", r.service, r.service),
            ),
            Ending::Completed => (
                format!("the spec has {} instead of {}", read_back.describe(), r.new.describe()),
                String::new(),
            ),
        };
        self.journal
            .finished(&r.id, Outcome::Failed, Some(phase), Some(reason.clone()))?;
        Err(fail(reason, aftermath))
    }

    /// The new spec failed its gate: Swarm's own rollback returns the
    /// service to the spec before, followed like the update was.
    async fn roll_back_after_gate(
        &self,
        plan: &SwarmPlan,
        a: &Analysis,
    ) -> Result<DeployError, DeployError> {
        let r = &plan.record;
        let reason = format!(
            "the promotion gate failed: {}",
            a.reason.as_deref().unwrap_or("a check failed")
        );
        self.events
            .step(&format!("{reason}; asking Swarm to roll back"));
        self.journal.phase(&r.id, Phase::ServiceRollback)?;
        let fail = |aftermath: String| DeployError::PhaseFailed {
            service: r.service.clone(),
            phase: Phase::ServiceRollback,
            reason: reason.clone(),
            aftermath,
        };
        let Some(live) = self.swarm.service(&plan.service_id).await? else {
            self.journal.finished(
                &r.id,
                Outcome::Failed,
                Some(Phase::ServiceRollback),
                Some(reason.clone()),
            )?;
            return Ok(fail("; the service is gone".into()));
        };
        if let Err(e) = self.swarm.update(&live, &live.spec, true).await {
            self.journal.finished(
                &r.id,
                Outcome::Failed,
                Some(Phase::ServiceRollback),
                Some(reason.clone()),
            )?;
            return Ok(fail(format!(
                "; Swarm refused the rollback ({e}): the service still runs {}; run `tuner deploy rollback {}`",
                r.new.describe(),
                r.service
            )));
        }
        let (ending, _) = Follow {
            swarm: self.swarm,
            events: self.events,
            service: &r.service,
            service_id: &plan.service_id,
            started_before: live.update.as_ref().map(|u| u.started_at.clone()),
            target: r.old,
            replicas: plan.replicas,
            timeout: self.timeout,
        }
        .run()
        .await?;
        let now = self
            .swarm
            .service(&plan.service_id)
            .await?
            .map(|s| s.limits())
            .unwrap_or(r.new);
        self.journal.finished(
            &r.id,
            Outcome::Failed,
            Some(Phase::ServiceRollback),
            Some(reason.clone()),
        )?;
        Ok(fail(if now.same_size(&r.old) {
            format!("; Swarm rolled {} back to {}", r.service, now.describe())
        } else {
            format!(
                "; Swarm's rollback ended {ending:?} with the service on {}: see `tuner deploy status {}`",
                now.describe(),
                r.service
            )
        }))
    }

    async fn follow(&self, plan: &SwarmPlan) -> Result<(Ending, Vec<Task>), DeployError> {
        Follow {
            swarm: self.swarm,
            events: self.events,
            service: &plan.record.service,
            service_id: &plan.service_id,
            started_before: plan.update_started_before.clone(),
            target: plan.record.new,
            replicas: plan.replicas,
            timeout: self.timeout,
        }
        .run()
        .await
    }
}

/// The plan's read of the service, so the engine refuses the write when
/// anything changed the service since the plan was made.
fn live_at(
    live: &crate::runtime::swarm::Service,
    plan: &SwarmPlan,
) -> crate::runtime::swarm::Service {
    crate::runtime::swarm::Service {
        version: plan.version,
        ..live.clone()
    }
}

/// Closes a Swarm deploy an interrupted run left open: waits while Swarm
/// is still at it, then records where the service ended. Returns what was
/// done, for the user.
pub async fn recover(
    swarm: &dyn Swarm,
    journal: &ServiceJournal,
    events: &dyn Events,
    timeout: Duration,
) -> Result<Option<String>, DeployError> {
    let Some(open) = journal.open()? else {
        return Ok(None);
    };
    let r = &open.record;
    let Some(service) = swarm.service(&r.blue_id).await? else {
        journal.finished(
            &r.id,
            Outcome::Undone,
            open.last_phase,
            Some("the service is gone".into()),
        )?;
        return Ok(Some(format!(
            "the interrupted Swarm deploy {} of {}: the service is gone",
            r.id, r.service
        )));
    };
    if service.update.as_ref().is_some_and(|u| !u.state.is_final()) {
        Follow {
            swarm,
            events,
            service: &r.service,
            service_id: &service.id,
            started_before: None,
            target: r.new,
            replicas: crate::runtime::swarm::spec::replicas(&service.spec),
            timeout,
        }
        .run()
        .await?;
    }
    let now = swarm
        .service(&r.blue_id)
        .await?
        .map(|s| s.limits())
        .unwrap_or(r.old);
    let (outcome, what) = if now.same_size(&r.new) {
        (Outcome::Completed, "finished by Swarm")
    } else {
        (Outcome::Undone, "not applied (or rolled back by Swarm)")
    };
    journal.finished(
        &r.id,
        outcome,
        open.last_phase,
        Some(format!("recovered: {what}")),
    )?;
    Ok(Some(format!(
        "the interrupted Swarm {} {} of {} was {what}: the service has {}",
        r.kind,
        r.id,
        r.service,
        now.describe()
    )))
}
