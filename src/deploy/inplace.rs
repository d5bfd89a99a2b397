//! `--strategy in-place`: a live limit update of the running container,
//! no restart, allowed for stateful services. Memory and MemorySwap change
//! together; shrinking below the working set plus a margin is refused
//! before anything is touched.

use std::time::Instant;

use super::plan::Plan;
use super::record::{Outcome, ServiceJournal};
use super::swap::{persist, Report};
use super::{crash, DeployError, Phase};
use crate::runtime::Runtime;

pub async fn run(
    runtime: &dyn Runtime,
    journal: &ServiceJournal,
    plan: &Plan,
) -> Result<Report, DeployError> {
    let r = &plan.record;
    let started = Instant::now();
    if r.new.memory < r.old.memory || r.old.memory == 0 {
        runtime.check_memory_fits(&r.blue_id, r.new.memory).await?;
    }
    journal.started(r)?;
    journal.phase(&r.id, Phase::Prepare)?;
    crash::after(Phase::Prepare);

    let fail = |phase: Phase, reason: String, aftermath: &str| DeployError::PhaseFailed {
        service: r.service.clone(),
        phase,
        reason,
        aftermath: aftermath.to_string(),
    };
    journal.phase(&r.id, Phase::LiveUpdate)?;
    if let Err(e) = runtime
        .update_limits(&r.blue_id, Some(r.new.cpus), Some(r.new.memory))
        .await
    {
        journal.finished(
            &r.id,
            Outcome::Failed,
            Some(Phase::LiveUpdate),
            Some(e.to_string()),
        )?;
        return Err(fail(
            Phase::LiveUpdate,
            e.to_string(),
            &format!("; {} keeps {}", r.blue_name, r.old.describe()),
        ));
    }
    crash::after(Phase::LiveUpdate);

    journal.phase(&r.id, Phase::Persist)?;
    persist(r, r.override_after.as_deref()).map_err(|e| {
        fail(
            Phase::Persist,
            e,
            "; the live limits are already changed: run `tuner deploy status` to retry",
        )
    })?;
    crash::after(Phase::Persist);

    journal.phase(&r.id, Phase::Verify)?;
    let read_back = runtime.inspect(&r.blue_id).await?.limits;
    if !read_back.same_size(&r.new) {
        let reason = format!(
            "{} has {} instead of {}",
            r.blue_name,
            read_back.describe(),
            r.new.describe()
        );
        journal.finished(
            &r.id,
            Outcome::Failed,
            Some(Phase::Verify),
            Some(reason.clone()),
        )?;
        return Err(fail(Phase::Verify, reason, ""));
    }
    journal.finished(&r.id, Outcome::Succeeded, None, None)?;
    Ok(Report {
        id: r.id.clone(),
        service: r.service.clone(),
        container: r.blue_name.clone(),
        container_id: r.blue_id.clone(),
        old: r.old,
        new: r.new,
        read_back,
        seconds: started.elapsed().as_secs_f64(),
        outcome: Outcome::Succeeded,
        phases: Vec::new(),
        drain_seconds: 0.0,
        seconds_to_green: 0.0,
        router: None,
        analysis: None,
    })
}
