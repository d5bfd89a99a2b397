//! A service scaled to several containers (`docker-compose up --scale
//! web=3`, or containers sharing its Compose labels) is re-sized one
//! replica at a time, each through the single-container swap: green is
//! healthy (and passed the gate) before its blue goes, so the service never
//! has fewer than its N serving replicas. The rollout is journaled around
//! the swaps; a replica that fails is undone by its swap, and the replicas
//! already re-sized are swapped back, last first, the same way. A rollout
//! a crash left open is undone the same way by the next run (`recover`),
//! from the containers actually there.

use std::time::Instant;

use chrono::Utc;
use serde::Serialize;

use super::analysis::Gate;
use super::plan::Plan;
use super::prepare::{build_for, Request};
use super::record::{new_id, Kind, Outcome, RolloutRecord, ServiceJournal};
use super::recover::recover_open;
use super::router::Router;
use super::swap::{Report, Swap};
use super::{DeployError, Target};
use crate::config::deploy::DeployConfig;
use crate::journal::Events;
use crate::runtime::find::{Found, ServiceQuery, COMPOSE_NUMBER, COMPOSE_PROJECT, COMPOSE_SERVICE};
use crate::runtime::{DockerError, Runtime};

/// The containers of one service in swap order (Compose's container
/// number, then name). Containers of several services or projects that
/// merely share the name are not replicas: that stays ambiguous.
pub fn order(query: &ServiceQuery, mut found: Vec<Found>) -> Result<Vec<Found>, DockerError> {
    if found.len() <= 1 {
        return Ok(found);
    }
    let key = |f: &Found| {
        (
            f.labels.get(COMPOSE_SERVICE).cloned(),
            f.labels.get(COMPOSE_PROJECT).cloned(),
        )
    };
    // ok: at least two elements, checked just above.
    let first = key(&found[0]);
    if first.0.is_none() || found.iter().any(|f| key(f) != first) {
        return Err(DockerError::Ambiguous {
            query: query.to_string(),
            matches: found.iter().map(Found::describe).collect(),
        });
    }
    let number = |f: &Found| {
        f.labels
            .get(COMPOSE_NUMBER)
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    found.sort_by(|a, b| number(a).cmp(&number(b)).then(a.name.cmp(&b.name)));
    Ok(found)
}

#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub id: String,
    pub service: String,
    /// One swap per replica, in order.
    pub replicas: Vec<Report>,
    pub seconds: f64,
}

/// Runs the swaps of a rollout, or undoes one.
pub struct Rollout<'a> {
    pub runtime: &'a dyn Runtime,
    pub router: &'a dyn Router,
    pub journal: &'a ServiceJournal,
    pub config: &'a DeployConfig,
    /// What the user asked for: timings, probe and router choice.
    pub request: &'a Request,
    pub events: &'a dyn Events,
    pub gate: Option<Gate<'a>>,
}

impl Rollout<'_> {
    fn swap<'s>(&'s self, gate: Option<Gate<'s>>) -> Swap<'s> {
        Swap {
            runtime: self.runtime,
            router: self.router,
            journal: self.journal,
            timings: self.request.timings,
            events: self.events,
            gate,
        }
    }

    /// Swaps each replica in turn; the first failure swaps back those done.
    pub async fn run(&self, plans: &[Plan]) -> Result<RolloutReport, DeployError> {
        let started = Instant::now();
        let Some(first) = plans.first() else {
            return Err(DeployError::InvalidLimit("no replica to deploy".into()));
        };
        let record = RolloutRecord {
            id: new_id(),
            kind: self.request.kind,
            service: first.service.clone(),
            replicas: plans.iter().map(|p| p.blue_name.clone()).collect(),
            old: first.old,
            new: first.new,
            override_before: first.record.override_before.clone(),
            health_path: self.request.health_path.clone(),
            health_port: self.request.health_port,
            started_at: Utc::now(),
        };
        self.journal.rollout_started(&record)?;
        let n = plans.len();
        let mut done = Vec::with_capacity(n);
        for (k, plan) in plans.iter().enumerate() {
            self.events.step(&format!(
                "replica {}/{n} of {}: {}",
                k + 1,
                record.service,
                plan.blue_name
            ));
            match self.swap(self.gate).run(plan).await {
                Ok(report) => done.push(report),
                Err(e) => {
                    let reason = e.to_string();
                    let aftermath = self.undo(&record).await;
                    self.journal.rollout_finished(
                        &record.id,
                        Outcome::Failed,
                        Some(format!("replica {}/{n}: {reason}", k + 1)),
                    )?;
                    return Err(DeployError::ReplicaFailed {
                        service: record.service.clone(),
                        replica: k + 1,
                        replicas: n,
                        container: plan.blue_name.clone(),
                        reason,
                        aftermath,
                    });
                }
            }
        }
        self.journal
            .rollout_finished(&record.id, Outcome::Succeeded, None)?;
        Ok(RolloutReport {
            id: record.id,
            service: record.service,
            replicas: done,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Puts every replica of `record` back on its old limits, last first,
    /// each through a swap (so N replicas keep serving). Reads what is
    /// there, so it is right after a failure and after a crash alike.
    /// Never fails: what could not be done is in the text returned.
    async fn undo(&self, record: &RolloutRecord) -> String {
        let mut problems = Vec::new();
        // A swap the failure or a crash left open is finished or undone
        // first, as `tuner deploy` would.
        if let Err(e) = recover_open(
            self.runtime,
            self.router,
            self.journal,
            self.request.timings.health_timeout,
            self.events,
        )
        .await
        {
            problems.push(e.to_string());
        }
        let mut swapped_back = Vec::new();
        for name in record.replicas.iter().rev() {
            match self.swap_back(record, name).await {
                Ok(true) => swapped_back.push(name.clone()),
                Ok(false) => {}
                Err(e) => problems.push(format!("{name}: {e}")),
            }
        }
        let back = if swapped_back.is_empty() {
            "no replica had been re-sized yet".to_string()
        } else {
            format!(
                "swapped back to {}: {}",
                record.old.describe(),
                swapped_back.join(", ")
            )
        };
        if problems.is_empty() {
            format!("; {back}")
        } else {
            format!(
                "; {back}; undo was incomplete: {}; run `tuner deploy rollback {}`",
                problems.join("; "),
                record.service
            )
        }
    }

    /// Swaps replica `name` back to the rollout's old limits if it has the
    /// new ones; `Ok(false)` when there was nothing to do.
    async fn swap_back(&self, record: &RolloutRecord, name: &str) -> Result<bool, DeployError> {
        let Some(live) = self.runtime.try_inspect(name).await? else {
            return Ok(false);
        };
        if live.limits.same_size(&record.old) || !live.limits.same_size(&record.new) {
            return Ok(false);
        }
        let found = self
            .runtime
            .list()
            .await?
            .into_iter()
            .find(|f| f.id == live.id)
            .ok_or_else(|| DockerError::NoMatch {
                query: name.to_string(),
                found: Vec::new(),
            })?;
        let back = Request {
            kind: Kind::Rollback,
            target: Target {
                cpus: record.old.cpus,
                memory: record.old.memory,
            },
            override_text: Some(record.override_before.clone()),
            health_path: record.health_path.clone(),
            health_port: record.health_port,
            ..self.request.clone()
        };
        let plan = build_for(
            self.runtime,
            &back,
            self.config,
            self.router,
            found,
            new_id(),
        )
        .await?;
        self.events.step(&format!(
            "swapping {name} back to {}",
            record.old.describe()
        ));
        // Going back to what served before is not judged again.
        self.swap(None).run(&plan).await?;
        Ok(true)
    }

    /// Undoes the rollout a crash left open, if any; says what was done.
    pub async fn recover(&self) -> Result<Option<String>, DeployError> {
        let Some(open) = self.journal.open_rollout()? else {
            return Ok(None);
        };
        let r = &open.record;
        let said = self.undo(r).await;
        self.journal
            .rollout_finished(&r.id, Outcome::Undone, Some(format!("recovered{said}")))?;
        Ok(Some(format!(
            "recovered the interrupted rollout {} of {} over {} replicas: undid it{said}",
            r.id,
            r.service,
            r.replicas.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn found(name: &str, project: &str, number: &str) -> Found {
        Found {
            id: format!("{name}-id"),
            name: name.into(),
            state: "running".into(),
            labels: HashMap::from([
                (COMPOSE_SERVICE.to_string(), "web".to_string()),
                (COMPOSE_PROJECT.to_string(), project.to_string()),
                (COMPOSE_NUMBER.to_string(), number.to_string()),
            ]),
        }
    }

    fn query() -> ServiceQuery {
        ServiceQuery {
            service: "web".into(),
            project: None,
        }
    }

    #[test]
    fn replicas_go_in_compose_number_order() {
        let all = vec![
            found("p_web_10", "p", "10"),
            found("p_web_2", "p", "2"),
            found("p_web_1", "p", "1"),
        ];
        let names: Vec<String> = order(&query(), all)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["p_web_1", "p_web_2", "p_web_10"]);
    }

    #[test]
    fn the_same_service_name_in_two_projects_is_ambiguous() {
        let all = vec![found("a_web_1", "a", "1"), found("b_web_1", "b", "1")];
        let err = order(&query(), all).unwrap_err();
        assert!(matches!(err, DockerError::Ambiguous { .. }), "{err}");
    }
}
