//! Finishes or undoes a deploy that was interrupted (`kill -9`, power
//! loss), from the journal and the containers actually there. Safe to run
//! any number of times: it reads the state, then acts on the difference.
//!
//! - blue still running: undo (remove green, restore the override file);
//! - blue stopped, green serving: finish (remove blue, rename green, persist);
//! - blue stopped, green not serving: undo and start blue again;
//! - blue gone: finish with green, whatever its name.

use std::time::Duration;

use serde::Serialize;

use super::record::{DeployRecord, History, Kind, Outcome, ServiceJournal, DEPLOY_ID_LABEL};
use super::router::{Backend, Router};
use super::swap::{self, backend};
use super::{DeployError, Phase};
use crate::journal::Events;
use crate::runtime::find::Found;
use crate::runtime::{Container, Runtime};

/// What recovery acts through, and where it reports its waits.
#[derive(Clone, Copy)]
struct Engines<'a> {
    runtime: &'a dyn Runtime,
    router: &'a dyn Router,
    events: &'a dyn Events,
}

/// `work` reported as one open-ended wait on `events`: starting a
/// container, its health, the router's checks and the drain can each take
/// a while, and recovery runs before the user's own command.
async fn waited<T>(
    events: &dyn Events,
    what: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    events.waiting(what, None);
    let out = work.await;
    events.finished();
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub id: String,
    pub service: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.outcome == Outcome::Completed {
            "finished"
        } else {
            "undid"
        };
        write!(
            f,
            "recovered the interrupted deploy {} of {}: {verb} it ({})",
            self.id, self.service, self.detail
        )
    }
}

/// Recovers the open deploy of a service, if there is one.
pub async fn recover_open(
    runtime: &dyn Runtime,
    router: &dyn Router,
    journal: &ServiceJournal,
    health_timeout: Duration,
    events: &dyn Events,
) -> Result<Option<Recovered>, DeployError> {
    let Some(open) = journal.open()? else {
        return Ok(None);
    };
    let r = open.record.clone();
    let fail = |reason: String| DeployError::Recovery {
        id: r.id.clone(),
        service: r.service.clone(),
        reason,
    };
    // Before its live update an in-place run has changed nothing, and the
    // swap's path undoes that correctly too.
    events.step(&format!(
        "recovering the interrupted deploy {} of {}",
        r.id, r.service
    ));
    let (outcome, detail) = if r.kind == Kind::InPlace || open.live_update {
        in_place(runtime, &open).await.map_err(fail)?
    } else {
        blue_green(runtime, router, journal, &open, health_timeout, events)
            .await
            .map_err(fail)?
    };
    journal.finished(
        &r.id,
        outcome,
        open.last_phase,
        Some(format!("recovered: {detail}")),
    )?;
    Ok(Some(Recovered {
        id: r.id,
        service: r.service,
        outcome,
        detail,
    }))
}

async fn blue_green(
    runtime: &dyn Runtime,
    router: &dyn Router,
    journal: &ServiceJournal,
    open: &History,
    health_timeout: Duration,
    events: &dyn Events,
) -> Result<(Outcome, String), String> {
    let r = &open.record;
    let all = runtime.list().await.map_err(|e| e.to_string())?;
    let green = all
        .iter()
        .find(|c| c.labels.get(DEPLOY_ID_LABEL) == Some(&r.id))
        .cloned();
    let blue = runtime
        .try_inspect(&r.blue_id)
        .await
        .map_err(|e| e.to_string())?;

    let mut green_live = match &green {
        Some(g) => Some(runtime.inspect(&g.id).await.map_err(|e| e.to_string())?),
        None => None,
    };
    // The swap lets green on once its own healthcheck passes through exec,
    // which can be before Docker's first scheduled run says `healthy`: a
    // swap that had committed gives Docker that run before deciding.
    if let (Some(g), Some(live)) = (&green, &green_live) {
        let committed = open.last_phase.is_some_and(|p| p >= Phase::StopBlue);
        if committed && live.running && !live.serving() {
            let _ = swap::wait_serving(runtime, &g.id, health_timeout).await;
            green_live = Some(runtime.inspect(&g.id).await.map_err(|e| e.to_string())?);
        }
    }
    let action = decide(
        open.last_phase,
        seen(blue.as_ref()),
        seen(green_live.as_ref()),
    );
    let blue_exists = blue.is_some();
    let e = Engines {
        runtime,
        router,
        events,
    };
    let serving = |who: &'static str, name: String, id: String| async move {
        let what = format!(
            "waiting up to {}s until {who} {name} serves",
            health_timeout.as_secs()
        );
        waited(
            events,
            &what,
            swap::wait_serving(runtime, &id, health_timeout),
        )
        .await
    };
    match action {
        Action::Undo => undo(e, r, green.as_ref(), "blue was still running; green removed", health_timeout).await,
        Action::StartBlueThenUndo => {
            runtime.start(&r.blue_id).await.map_err(|e| e.to_string())?;
            serving("blue", r.blue_name.clone(), r.blue_id.clone()).await?;
            undo(e, r, green.as_ref(), "blue was stopped and green not healthy; blue started again, green removed", health_timeout).await
        }
        Action::Forward => {
            let g = green.as_ref().ok_or("no green")?;
            serving("green", g.name.clone(), g.id.clone()).await?;
            forward(e, journal, r, &g.id, blue_exists, "green was healthy and blue stopping or gone; swap finished").await
        }
        Action::StartGreenThenForward => {
            let g = green.as_ref().ok_or("no green")?;
            runtime.start(&g.id).await.map_err(|e| e.to_string())?;
            serving("green", g.name.clone(), g.id.clone()).await?;
            forward(e, journal, r, &g.id, blue_exists, "blue was gone; green started again and swap finished").await
        }
        Action::Lost => Err(format!(
            "neither blue {} ({}) nor green {} exists; start the service again (e.g. `docker-compose up -d {}`)",
            r.blue_name,
            crate::runtime::find::short_id(&r.blue_id),
            r.green_name,
            r.service
        )),
    }
}

async fn forward(
    e: Engines<'_>,
    journal: &ServiceJournal,
    r: &DeployRecord,
    green_id: &str,
    blue_exists: bool,
    why: &str,
) -> Result<(Outcome, String), String> {
    let Engines {
        runtime,
        router,
        events,
    } = e;
    // The router may not have switched yet: give green the traffic first.
    let green_backend = backend(runtime, green_id, r.router_green.as_deref())
        .await
        .ok();
    if let Some(g) = &green_backend {
        if let Err(e) = router.promote(g).await {
            tracing::warn!("router could not promote green during recovery: {e}");
        }
    }
    // Blue's server is retired even when its container is already gone
    // (the swap removed it just before the crash): only its name matters.
    let blue_backend = if blue_exists {
        backend(runtime, &r.blue_id, r.router_blue.as_deref())
            .await
            .ok()
    } else {
        None
    }
    .or_else(|| Some(by_name(r.router_blue.as_deref(), &r.blue_id)));
    if let Some(b) = blue_backend.as_ref().filter(|_| blue_exists) {
        // Drained already if the swap got that far (blue's container goes
        // only after its drain); otherwise let blue's in-flight requests
        // finish before it is removed.
        if router.drains() {
            let what = format!("draining blue {} (up to 30s)", b.name);
            if let Err(e) = waited(events, &what, router.drain(b, Duration::from_secs(30))).await {
                tracing::warn!("router could not drain blue during recovery: {e}");
            }
        }
    }
    if blue_exists {
        runtime
            .remove(&r.blue_id, true)
            .await
            .map_err(|e| e.to_string())?;
    }
    // Blue's own server points at green, whatever point the crash hit
    // (re-pointing twice is harmless); until then the recovery is not done.
    if let (Some(b), Some(g)) = (&blue_backend, &green_backend) {
        let slot = Backend {
            name: b.name.clone(),
            address: g.address.clone(),
        };
        router
            .rehome(&slot, g)
            .await
            .map_err(|e| format!("router: {e}"))?;
    }
    let read = swap::finish(runtime, router, journal, r, green_id)
        .await
        .map_err(|(p, e)| format!("{p}: {e}"))?;
    if let Err(e) = router.save_state().await {
        tracing::warn!("router state not saved after the recovery: {e}");
    }
    Ok((
        Outcome::Completed,
        format!("{why}; {} now has {}", r.blue_name, read.describe()),
    ))
}

/// A router server known only by name (its container is gone).
fn by_name(name: Option<&str>, fallback: &str) -> Backend {
    Backend {
        name: name.unwrap_or(fallback).to_string(),
        address: String::new(),
    }
}

/// What recovery sees of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Absent,
    Stopped,
    /// Running but not (yet) healthy.
    Running,
    Serving,
}

fn seen(c: Option<&Container>) -> Seen {
    match c {
        None => Seen::Absent,
        Some(c) if c.serving() => Seen::Serving,
        Some(c) if c.running => Seen::Running,
        Some(_) => Seen::Stopped,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep blue: remove green, restore the override.
    Undo,
    /// Blue was being stopped and green is no good: start blue, then undo.
    StartBlueThenUndo,
    /// Keep green: remove blue if still there, rename, persist, verify.
    Forward,
    /// Blue is gone and green stopped: start green, then forward.
    StartGreenThenForward,
    /// Nothing left to run.
    Lost,
}

/// The recovery decision. Blue, the original, is kept unless the swap had
/// reached `stop-blue` or blue can no longer serve while green can.
pub fn decide(last: Option<Phase>, blue: Seen, green: Seen) -> Action {
    let committed = last.is_some_and(|p| p >= Phase::StopBlue);
    match (blue, green) {
        (Seen::Absent, Seen::Absent) => Action::Lost,
        (Seen::Absent, Seen::Stopped) => Action::StartGreenThenForward,
        (Seen::Absent, _) => Action::Forward,
        (_, Seen::Serving) if committed || blue != Seen::Serving => Action::Forward,
        (Seen::Serving | Seen::Running, _) => Action::Undo,
        (Seen::Stopped, _) => Action::StartBlueThenUndo,
    }
}

async fn undo(
    e: Engines<'_>,
    r: &DeployRecord,
    green: Option<&Found>,
    why: &str,
    health_timeout: Duration,
) -> Result<(Outcome, String), String> {
    let Engines {
        runtime,
        router,
        events,
    } = e;
    // Blue gets its traffic back, and the router sees it healthy, before
    // green leaves the router: never a backend with nobody serving.
    if let Ok(b) = backend(runtime, &r.blue_id, r.router_blue.as_deref()).await {
        match router.promote(&b).await {
            Ok(()) => {
                let what = format!(
                    "waiting up to {}s until router {} sees blue {} healthy",
                    health_timeout.as_secs(),
                    router.kind(),
                    b.name
                );
                if let Err(e) = waited(events, &what, router.wait_healthy(&b, health_timeout)).await
                {
                    tracing::warn!("router does not see blue healthy again: {e}");
                }
            }
            Err(e) => tracing::warn!("router could not give blue its traffic back: {e}"),
        }
    }
    // Green may be registered with the router even if its container is
    // gone; removing a server that is not there is a no-op.
    let green_backend = match green {
        Some(g) => backend(runtime, &g.id, r.router_green.as_deref())
            .await
            .ok(),
        None => None,
    }
    .unwrap_or_else(|| by_name(r.router_green.as_deref(), &r.green_name));
    if let Err(e) = router.remove(&green_backend).await {
        tracing::warn!("router could not remove green: {e}");
    }
    if let Some(g) = green {
        runtime
            .remove(&g.id, true)
            .await
            .map_err(|e| e.to_string())?;
    }
    if let Err(e) = router.save_state().await {
        tracing::warn!("router state not saved after the undo: {e}");
    }
    restore_override(r)?;
    Ok((Outcome::Undone, why.to_string()))
}

async fn in_place(runtime: &dyn Runtime, open: &History) -> Result<(Outcome, String), String> {
    let r = &open.record;
    let live = runtime
        .inspect(&r.blue_id)
        .await
        .map_err(|e| e.to_string())?;
    if live.limits.same_size(&r.new) {
        swap::persist(r, r.override_after.as_deref())?;
        Ok((
            Outcome::Completed,
            format!(
                "the live update had happened; {} has {}",
                r.blue_name,
                live.limits.describe()
            ),
        ))
    } else {
        restore_override(r)?;
        Ok((
            Outcome::Undone,
            format!(
                "the live update had not happened; {} keeps {}",
                r.blue_name,
                live.limits.describe()
            ),
        ))
    }
}

/// Puts the override text back as it was before the deploy, if the deploy
/// had changed it.
fn restore_override(r: &DeployRecord) -> Result<(), String> {
    let Some(path) = &r.override_path else {
        return Ok(());
    };
    let now = std::fs::read_to_string(path).ok();
    if now != r.override_before {
        swap::persist(r, r.override_before.as_deref())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blue_is_kept_until_the_swap_commits() {
        use Seen::*;
        assert_eq!(decide(Some(Phase::Health), Serving, Running), Action::Undo);
        assert_eq!(decide(Some(Phase::Drain), Serving, Serving), Action::Undo);
        assert_eq!(
            decide(Some(Phase::CreateGreen), Serving, Absent),
            Action::Undo
        );
        assert_eq!(
            decide(Some(Phase::StopBlue), Serving, Serving),
            Action::Forward,
            "blue is being stopped"
        );
        assert_eq!(
            decide(Some(Phase::StopBlue), Stopped, Serving),
            Action::Forward
        );
        assert_eq!(
            decide(Some(Phase::StopBlue), Stopped, Running),
            Action::StartBlueThenUndo
        );
        assert_eq!(
            decide(Some(Phase::Health), Running, Serving),
            Action::Forward,
            "the healthy one wins"
        );
        assert_eq!(
            decide(Some(Phase::RemoveBlue), Absent, Serving),
            Action::Forward
        );
        assert_eq!(
            decide(Some(Phase::Rename), Absent, Stopped),
            Action::StartGreenThenForward
        );
        assert_eq!(decide(Some(Phase::Rename), Absent, Absent), Action::Lost);
        assert_eq!(decide(None, Stopped, Absent), Action::StartBlueThenUndo);
    }
}
