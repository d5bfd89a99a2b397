//! An adjustment of a service configured for blue-green (`watch.blue_green`):
//! the deploy code's plan and swap, so the service is resized the way
//! `tuner deploy SERVICE CPUS MEMORY` would do it (a green clone with the
//! new limits, its health, the router, the override file), under the same
//! service lock and in the same journal, recovered by the same code.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::apply::{Applied, Applier, ApplyError};
use super::policy::Adjustment;
use super::source::Managed;
use crate::config::deploy::DeployConfig;
use crate::deploy::plan::Timings;
use crate::deploy::prepare::{self, Request, Strategy};
use crate::deploy::record::{Kind, ServiceJournal};
use crate::deploy::recover::recover_open;
use crate::deploy::router::Router;
use crate::deploy::swap::Swap;
use crate::deploy::{routing, Target as Limits};
use crate::journal::{Events, JournalError, Target};
use crate::runtime::ServiceQuery;

/// `tuner deploy`'s defaults (`--health-timeout`, `--health-interval`,
/// `--drain`): a swap started by watch waits as one started by hand.
pub const TIMINGS: Timings = Timings {
    health_timeout: Duration::from_secs(120),
    health_interval: Duration::from_secs(5),
    drain: Duration::from_secs(30),
};

/// What a swap needs beyond an in-place update.
pub struct BlueGreen<'a> {
    pub router: &'a dyn Router,
    pub deploy: &'a DeployConfig,
    pub state_dir: PathBuf,
    /// `compose.project`, so the service is found as `tuner deploy` finds it.
    pub project: Option<String>,
    pub events: &'a dyn Events,
}

impl Applier<'_> {
    /// Resizes `m` by a blue-green swap. Refusals the deploy code makes
    /// before anything changes (a stateful service, fixed ports without a
    /// router, no health probe, another service's Compose hash) and a swap
    /// that failed and was undone are `Failed`; the service keeps blue.
    pub async fn swap(
        &self,
        bg: &BlueGreen<'_>,
        m: &Managed,
        adj: &Adjustment,
        now: DateTime<Utc>,
    ) -> Result<Applied, ApplyError> {
        let target = Target::Service(m.service.clone());
        let _lock = match self
            .locks
            .acquire(&target, &format!("watch blue-green swap of {}", m.service))
        {
            Ok(l) => l,
            Err(JournalError::Locked { holder, pid, .. }) => {
                return Ok(Applied::Busy {
                    holder: format!("{holder} (PID {pid})"),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let journal = ServiceJournal::new(&bg.state_dir, &m.service);
        let failed = |id: Option<String>, error: String| Applied::Failed { id, error };
        // A deploy of this service a crash left open is finished or undone
        // first, as `tuner deploy` does, so two swaps never overlap.
        if let Err(e) = recover_open(
            self.runtime,
            bg.router,
            &journal,
            TIMINGS.health_timeout,
            bg.events,
        )
        .await
        {
            return Ok(failed(None, e.to_string()));
        }
        let old = match self.runtime.inspect(&m.container_id).await {
            Ok(c) => c.limits,
            Err(e) => return Ok(failed(None, e.to_string())),
        };
        let wanted = Limits {
            cpus: adj.cpus.map(|c| c.to).unwrap_or(old.cpus),
            memory: adj.memory.map(|c| c.to).unwrap_or(old.memory),
        };
        if wanted.memory < old.memory {
            if let Err(e) = self
                .runtime
                .check_memory_fits(&m.container_id, wanted.memory)
                .await
            {
                return Ok(failed(None, e.to_string()));
            }
        }
        let req = Request {
            kind: Kind::Deploy,
            query: ServiceQuery {
                service: m.service.clone(),
                project: bg.project.clone(),
            },
            target: wanted,
            override_text: None,
            strategy: Strategy::BlueGreen,
            timings: TIMINGS,
            health_path: None,
            health_port: None,
            router_kind: routing::kind_name(&bg.deploy.router),
            router_server: bg.deploy.router.server.clone(),
        };
        let plan = match prepare::build(self.runtime, &req, bg.deploy, bg.router).await {
            Ok(p) => p,
            Err(e) => return Ok(failed(None, format!("blue-green swap refused: {e}"))),
        };
        let id = plan.record.id.clone();
        bg.events.step(&format!(
            "{}: {} by a blue-green swap ({})",
            m.service,
            adj.describe(),
            adj.reason
        ));
        let swap = Swap {
            runtime: self.runtime,
            router: bg.router,
            journal: &journal,
            timings: TIMINGS,
            events: bg.events,
            // A watch adjustment re-sizes the same image for fit; promotion
            // gates judge a `tuner deploy`.
            gate: None,
        };
        match swap.run(&plan).await {
            Ok(report) => {
                self.record(m, adj, &id, &report.old, &report.read_back, now)?;
                Ok(Applied::Done {
                    id,
                    old: report.old,
                    new: report.read_back,
                })
            }
            Err(e) => Ok(failed(Some(id), e.to_string())),
        }
    }
}
