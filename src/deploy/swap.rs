//! Executes a blue-green plan, phase by phase, each journaled before it
//! starts. A failure before blue is removed removes green and leaves blue
//! as it was; after that point (with a draining router blue is removed in
//! `stop-blue` already) the swap can only go forward: the journal stays
//! open and `recover` finishes it.

use std::time::{Duration, Instant};

use super::analysis::{Analysis, Gate};
use super::crash;
use super::health::{self, HealthFailure};
use super::plan::{Plan, Timings};
use super::record::{DeployRecord, Outcome, ServiceJournal};
use super::report::Clock;
pub use super::report::{PhaseTime, Report, RouterOutcome};
use super::router::{Backend, Router};
use super::routing;
use super::{DeployError, Phase};
use crate::journal::Events;
use crate::runtime::{Limits, OverrideFile, Runtime};

pub struct Swap<'a> {
    pub runtime: &'a dyn Runtime,
    pub router: &'a dyn Router,
    pub journal: &'a ServiceJournal,
    pub timings: Timings,
    /// Each phase as a step, and the waits (green's health, blue's stop).
    pub events: &'a dyn Events,
    /// Judged once green serves beside blue; failing it removes green.
    pub gate: Option<Gate<'a>>,
}

impl Swap<'_> {
    pub async fn run(&self, plan: &Plan) -> Result<Report, DeployError> {
        let r = &plan.record;
        let mut clock = Clock::new();
        self.journal.started(r)?;
        let mut green_id: Option<String> = None;
        let mut phase = Phase::Prepare;
        let mut blue_gone = false;
        let mut analysis = None;
        let result = self
            .forward_until_blue_removed(
                plan,
                &mut phase,
                &mut green_id,
                &mut blue_gone,
                &mut clock,
                &mut analysis,
            )
            .await;
        if let Err(reason) = result {
            if blue_gone {
                // Undoing would remove the only container left: the journal
                // stays open and recovery finishes the swap with green.
                return Err(DeployError::PhaseFailed {
                    service: r.service.clone(),
                    phase,
                    reason,
                    aftermath: forward_only(r),
                });
            }
            let aftermath = self.undo(r, phase, green_id.as_deref()).await;
            self.journal
                .finished(&r.id, Outcome::Failed, Some(phase), Some(reason.clone()))?;
            return Err(DeployError::PhaseFailed {
                service: r.service.clone(),
                phase,
                reason,
                aftermath,
            });
        }
        let green_id = green_id.unwrap_or_default();
        clock.enter(Phase::Rename);
        match finish(self.runtime, self.router, self.journal, r, &green_id).await {
            Ok(read_back) => {
                self.journal
                    .finished(&r.id, Outcome::Succeeded, None, None)?;
                let phases = clock.phases(Instant::now());
                let drain = phases
                    .iter()
                    .find(|p| p.phase == Phase::Drain)
                    .map(|p| p.seconds)
                    .unwrap_or(0.0);
                let router = router_outcome(self.runtime, self.router, r, &green_id).await;
                Ok(Report {
                    id: r.id.clone(),
                    service: r.service.clone(),
                    container: r.blue_name.clone(),
                    container_id: green_id,
                    old: r.old,
                    new: r.new,
                    read_back,
                    seconds: clock.started.elapsed().as_secs_f64(),
                    outcome: Outcome::Succeeded,
                    drain_seconds: drain,
                    // Green serves from the end of `switch`: beside blue
                    // while a gate measures it, alone from the drain.
                    seconds_to_green: clock
                        .until(Phase::Analysis)
                        .or_else(|| clock.until(Phase::Drain))
                        .unwrap_or(0.0),
                    phases,
                    router,
                    analysis,
                })
            }
            Err((phase, reason)) => Err(DeployError::PhaseFailed {
                service: r.service.clone(),
                phase,
                reason,
                aftermath: forward_only(r),
            }),
        }
    }

    async fn forward_until_blue_removed(
        &self,
        plan: &Plan,
        phase: &mut Phase,
        green_id: &mut Option<String>,
        blue_gone: &mut bool,
        clock: &mut Clock,
        gated: &mut Option<Analysis>,
    ) -> Result<(), String> {
        let r = &plan.record;
        let j = |p: Phase| {
            self.events.step(&format!("deploy {}: {p}", r.service));
            self.journal.phase(&r.id, p).map_err(|e| e.to_string())
        };
        let spec = plan.green.as_ref().ok_or("the plan has no green spec")?;
        let probe = plan.probe.as_ref().ok_or("the plan has no health probe")?;

        *phase = Phase::Prepare;
        clock.enter(*phase);
        j(*phase)?;
        let blue = self
            .runtime
            .inspect(&r.blue_id)
            .await
            .map_err(|e| e.to_string())?;
        if !blue.running {
            return Err(format!(
                "blue {} is {}, not running",
                r.blue_name, blue.state
            ));
        }
        crash::after(*phase);

        *phase = Phase::CreateGreen;
        clock.enter(*phase);
        j(*phase)?;
        let id = self
            .runtime
            .create_clone(&r.green_name, spec)
            .await
            .map_err(|e| e.to_string())?;
        *green_id = Some(id.clone());
        self.runtime.start(&id).await.map_err(|e| e.to_string())?;
        crash::after(*phase);

        *phase = Phase::Health;
        clock.enter(*phase);
        j(*phase)?;
        // Register green with the router now, at weight 0 (no traffic), so
        // the router's own checks run while Docker's do: the switch then
        // does not wait for a first router check.
        let green = backend(self.runtime, &id, r.router_green.as_deref())
            .await
            .map_err(|e| format!("green {}: {e}", r.green_name))?;
        self.router
            .add_standby(&green)
            .await
            .map_err(|e| e.to_string())?;
        health::wait_ready(
            self.runtime,
            &id,
            probe,
            self.router.checks_green(),
            self.timings.health_timeout,
            self.timings.health_interval,
            self.events,
        )
        .await
        .map_err(|e: HealthFailure| e.to_string())?;
        crash::after(*phase);

        *phase = Phase::Switch;
        clock.enter(*phase);
        j(*phase)?;
        self.events.waiting(
            &format!(
                "waiting until router {} sees green {} healthy",
                self.router.kind(),
                r.green_name
            ),
            None,
        );
        let seen = self
            .router
            .wait_healthy(&green, self.timings.health_timeout)
            .await;
        self.events.finished();
        seen.map_err(|e| e.to_string())?;
        self.router
            .promote(&green)
            .await
            .map_err(|e| e.to_string())?;
        crash::after(*phase);

        if let Some(gate) = self.gate {
            *phase = Phase::Analysis;
            clock.enter(*phase);
            j(*phase)?;
            let analysis = gate
                .judge(&r.green_name, self.events, self.journal, &r.id)
                .await
                .map_err(|e| e.to_string())?;
            *gated = Some(analysis.clone());
            if !analysis.passed {
                return Err(format!(
                    "the promotion gate failed: {}",
                    analysis.reason.as_deref().unwrap_or("a check failed")
                ));
            }
            crash::after(*phase);
        }

        *phase = Phase::Drain;
        clock.enter(*phase);
        j(*phase)?;
        let blue_backend = backend(self.runtime, &r.blue_id, r.router_blue.as_deref())
            .await
            .map_err(|e| format!("blue {}: {e}", r.blue_name))?;
        self.events.waiting(
            &format!(
                "draining blue {}: its in-flight requests finish (up to {})",
                r.blue_name,
                crate::config::units::format_duration(self.timings.drain)
            ),
            None,
        );
        let drained = self.router.drain(&blue_backend, self.timings.drain).await;
        self.events.finished();
        drained.map_err(|e| e.to_string())?;
        crash::after(*phase);

        *phase = Phase::StopBlue;
        clock.enter(*phase);
        j(*phase)?;
        self.green_still_serving(r, &id).await?;
        if self.router.drains() {
            // Drained and in maintenance: no session left and no new one
            // can come. A graceful stop would only wait for the stop
            // timeout of a process that ignores its stop signal (busybox
            // httpd as PID 1 ignores SIGTERM: 10 s by default).
            self.runtime
                .remove(&r.blue_id, true)
                .await
                .map_err(|e| format!("removing the drained blue {}: {e}", r.blue_name))?;
            *blue_gone = true;
        } else {
            // No router drained blue: its stop signal is what lets it finish
            // in-flight requests, so give it its own stop timeout.
            self.events
                .waiting(&format!("stopping blue {} gracefully", r.blue_name), None);
            let stopped = self.runtime.stop(&r.blue_id, None).await;
            self.events.finished();
            stopped.map_err(|e| e.to_string())?;
        }
        crash::after(*phase);

        *phase = Phase::RemoveBlue;
        clock.enter(*phase);
        j(*phase)?;
        self.runtime
            .remove(&r.blue_id, true)
            .await
            .map_err(|e| e.to_string())?;
        *blue_gone = true;
        // The service keeps its own server in the router (the one a reload
        // finds in the router's config): it now points at green.
        let slot = Backend {
            name: blue_backend.name.clone(),
            address: green.address.clone(),
        };
        self.router
            .rehome(&slot, &green)
            .await
            .map_err(|e| e.to_string())?;
        crash::after(*phase);
        Ok(())
    }

    async fn green_still_serving(&self, r: &DeployRecord, green_id: &str) -> Result<(), String> {
        let still = self
            .runtime
            .inspect(green_id)
            .await
            .map_err(|e| e.to_string())?;
        // Docker may still say `starting`: green's own healthcheck, run
        // through exec, proved it before Docker's first scheduled run.
        if still.running && still.health != crate::runtime::Health::Unhealthy {
            Ok(())
        } else {
            Err(format!(
                "green {} stopped serving ({}, {}) before blue was stopped",
                r.green_name, still.state, still.health
            ))
        }
    }

    /// Puts things back as they were before the swap; returns what was done
    /// for the error message. Never fails: problems are reported in the text.
    async fn undo(&self, r: &DeployRecord, phase: Phase, green_id: Option<&str>) -> String {
        let mut problems = Vec::new();
        let green_ref = green_id.unwrap_or(&r.green_name);
        // Blue first: running, then taking traffic again and seen healthy by
        // the router, and only then green goes. Removing green first would
        // leave the backend with nobody to serve.
        if phase >= Phase::StopBlue {
            match self.runtime.inspect(&r.blue_id).await {
                Ok(b) if !b.running => {
                    if let Err(e) = self.runtime.start(&r.blue_id).await {
                        problems.push(format!("could not restart blue: {e}"));
                    } else if let Err(e) =
                        wait_serving(self.runtime, &r.blue_id, self.timings.health_timeout).await
                    {
                        problems.push(format!("blue restarted but is not serving: {e}"));
                    }
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("could not inspect blue: {e}")),
            }
        }
        if phase >= Phase::Drain {
            match backend(self.runtime, &r.blue_id, r.router_blue.as_deref()).await {
                Ok(blue) => {
                    if let Err(e) = self.router.promote(&blue).await {
                        problems.push(format!("router could not give blue its traffic back: {e}"));
                    } else if let Err(e) = self
                        .router
                        .wait_healthy(&blue, self.timings.health_timeout)
                        .await
                    {
                        problems.push(format!("router does not see blue healthy again: {e}"));
                    }
                }
                Err(e) => problems.push(format!("could not inspect blue: {e}")),
            }
        }
        if phase >= Phase::Health {
            // Only the name matters to remove it: fine if the container is gone.
            let green = backend(self.runtime, green_ref, r.router_green.as_deref())
                .await
                .unwrap_or_else(|_| Backend {
                    name: r
                        .router_green
                        .clone()
                        .unwrap_or_else(|| r.green_name.clone()),
                    address: String::new(),
                });
            if let Err(e) = self.router.remove(&green).await {
                problems.push(format!("router could not remove green: {e}"));
            }
        }
        if let Err(e) = self.runtime.remove(green_ref, true).await {
            problems.push(format!("could not remove green {}: {e}", r.green_name));
        }
        if phase >= Phase::Health {
            if let Err(e) = self.router.save_state().await {
                tracing::warn!("router state not saved after the undo: {e}");
            }
        }
        if problems.is_empty() {
            format!(
                "; green {} removed, blue {} left as it was",
                r.green_name, r.blue_name
            )
        } else {
            format!("; undo was incomplete: {}", problems.join("; "))
        }
    }
}

/// Where the router sends the service now, and whether a reload of the
/// router keeps it (its state saved, or why not). `None` without a router.
pub async fn router_outcome(
    runtime: &dyn Runtime,
    router: &dyn Router,
    r: &DeployRecord,
    green_id: &str,
) -> Option<RouterOutcome> {
    if router.kind() == "none" {
        return None;
    }
    let server = match runtime.inspect(green_id).await {
        Ok(g) => format!(
            "{} {}",
            r.router_blue.as_deref().unwrap_or(&r.blue_name),
            routing::address(&g)
        ),
        Err(_) => r.router_blue.clone().unwrap_or_default(),
    };
    let (state_file, warning) = match router.save_state().await {
        Ok(Some(path)) => (Some(path), None),
        Ok(None) => (None, Some(format!("the router's state is not saved (no `state_file` for router {}): a reload of the router goes back to its config file; see README, \"Reloads\"", router.kind()))),
        Err(e) => (None, Some(format!("could not save the router's state, so a reload of the router goes back to its config file: {e}"))),
    };
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    Some(RouterOutcome {
        server,
        state_file,
        warning,
    })
}

/// What a failure leaves once blue is removed: the swap can only go forward.
fn forward_only(r: &DeployRecord) -> String {
    format!(
        "; blue is already removed and green {} keeps serving: run `tuner deploy status {}` to finish the swap",
        r.green_name, r.service
    )
}

/// The router's view of a container.
pub async fn backend(
    runtime: &dyn Runtime,
    container: &str,
    name: Option<&str>,
) -> Result<Backend, DeployError> {
    let c = runtime.inspect(container).await?;
    Ok(Backend {
        name: name.unwrap_or(container).to_string(),
        address: routing::address(&c),
    })
}

/// The forward-only tail of a swap, also used by recovery: rename green to
/// blue's name, write the override file, read the limits back. Idempotent.
pub async fn finish(
    runtime: &dyn Runtime,
    _router: &dyn Router,
    journal: &ServiceJournal,
    r: &DeployRecord,
    green_id: &str,
) -> Result<Limits, (Phase, String)> {
    let fail = |p: Phase| move |e: String| (p, e);
    journal
        .phase(&r.id, Phase::Rename)
        .map_err(|e| (Phase::Rename, e.to_string()))?;
    let green = runtime
        .inspect(green_id)
        .await
        .map_err(|e| (Phase::Rename, e.to_string()))?;
    if green.name != r.blue_name {
        runtime
            .rename(green_id, &r.blue_name)
            .await
            .map_err(|e| (Phase::Rename, e.to_string()))?;
    }
    crash::after(Phase::Rename);

    journal
        .phase(&r.id, Phase::Persist)
        .map_err(|e| (Phase::Persist, e.to_string()))?;
    persist(r, r.override_after.as_deref()).map_err(fail(Phase::Persist))?;
    crash::after(Phase::Persist);

    journal
        .phase(&r.id, Phase::Verify)
        .map_err(|e| (Phase::Verify, e.to_string()))?;
    let live = runtime
        .inspect(&r.blue_name)
        .await
        .map_err(|e| (Phase::Verify, e.to_string()))?;
    if !live.limits.same_size(&r.new) {
        return Err((
            Phase::Verify,
            format!(
                "{} has {} instead of {}",
                r.blue_name,
                live.limits.describe(),
                r.new.describe()
            ),
        ));
    }
    crash::after(Phase::Verify);
    Ok(live.limits)
}

/// Writes the override text recorded for this deploy (`None` removes it).
pub fn persist(r: &DeployRecord, text: Option<&str>) -> Result<(), String> {
    let Some(path) = &r.override_path else {
        return Ok(());
    };
    let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    OverrideFile::in_dir(&dir)
        .write(text)
        .map_err(|e| e.to_string())
}

/// Waits for a container to serve, for recovery's forward path.
pub async fn wait_serving(
    runtime: &dyn Runtime,
    container: &str,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let live = runtime
            .inspect(container)
            .await
            .map_err(|e| e.to_string())?;
        if live.serving() {
            return Ok(());
        }
        if !live.running || tokio::time::Instant::now() >= deadline {
            return Err(format!("{} is {} ({})", live.name, live.state, live.health));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
