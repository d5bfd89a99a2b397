//! Fixtures for the deploy unit tests: a router that keeps its servers in
//! memory, a rig with one Compose service on the in-memory runtime, and
//! snapshots of the world at every point a crash could hit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;

use super::plan::{Plan, Timings};
use super::prepare::{self, Request, Strategy};
use super::record::{Kind, Outcome, ServiceJournal, DEPLOY_ID_LABEL};
use super::recover::{recover_open, Recovered};
use super::router::{Backend, Router, RouterError};
use super::swap::{Report, Swap};
use super::{DeployError, Phase, Target};
use crate::config::deploy::DeployConfig;
use crate::runtime::fake::{FakeContainer, FakeRuntime, World};
use crate::runtime::find::{COMPOSE_PROJECT, COMPOSE_SERVICE, COMPOSE_WORKING_DIR};
use crate::runtime::ServiceQuery;

pub(super) const BLUE: &str = "demo_web_1";
pub(super) const OVERRIDE_BEFORE: &str =
    "# the user's own override\nservices:\n  other:\n    cpus: 0.5\n";

/// One server as the fake router holds it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Server {
    pub(super) address: String,
    pub(super) weight: u32,
    pub(super) draining: bool,
}

pub(super) type Servers = BTreeMap<String, Server>;

/// A router that keeps its servers in memory, behaves like HAProxy's
/// runtime API where it matters (a missing server cannot be promoted or
/// drained; retiring or removing one is idempotent) and fails on demand.
pub(super) struct FakeRouter {
    pub(super) drains: bool,
    pub(super) servers: Mutex<Servers>,
    /// Actions that fail once when next called.
    pub(super) fail: Mutex<Vec<&'static str>>,
    /// The call (from 0) that fails, whatever it is.
    pub(super) fail_call: Mutex<Option<usize>>,
    pub(super) calls: Mutex<usize>,
    pub(super) hook: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
    /// The servers as last saved for a reload.
    pub(super) saved: Mutex<Option<Servers>>,
}

impl FakeRouter {
    pub(super) fn new(drains: bool, servers: Servers) -> FakeRouter {
        FakeRouter {
            drains,
            servers: Mutex::new(servers),
            fail: Mutex::new(Vec::new()),
            fail_call: Mutex::new(None),
            calls: Mutex::new(0),
            hook: Mutex::new(None),
            saved: Mutex::new(None),
        }
    }

    pub(super) fn servers(&self) -> Servers {
        self.servers.lock().unwrap().clone()
    }

    pub(super) fn fail_once(&self, action: &'static str) {
        self.fail.lock().unwrap().push(action);
    }

    fn enter(
        &self,
        action: &'static str,
    ) -> Result<std::sync::MutexGuard<'_, Servers>, RouterError> {
        let hook = self.hook.lock().unwrap().clone();
        if let Some(hook) = hook {
            hook();
        }
        let call = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls - 1
        };
        let mut fail = self.fail.lock().unwrap();
        let aimed = fail.iter().position(|a| *a == action);
        let by_count = *self.fail_call.lock().unwrap() == Some(call);
        if let Some(i) = aimed {
            fail.remove(i);
        }
        if aimed.is_some() || by_count {
            return Err(RouterError::Failed {
                router: "fake".into(),
                action: action.into(),
                reason: "injected failure".into(),
            });
        }
        Ok(self.servers.lock().unwrap())
    }
}

fn missing(action: &str, name: &str) -> RouterError {
    RouterError::Failed {
        router: "fake".into(),
        action: action.into(),
        reason: format!("no server {name}"),
    }
}

#[async_trait]
impl Router for FakeRouter {
    fn kind(&self) -> &'static str {
        if self.drains {
            "fake"
        } else {
            "none"
        }
    }

    fn drains(&self) -> bool {
        self.drains
    }

    fn checks_green(&self) -> bool {
        true
    }

    async fn add_standby(&self, green: &Backend) -> Result<(), RouterError> {
        let mut s = self.enter("add_standby")?;
        s.insert(
            green.name.clone(),
            Server {
                address: green.address.clone(),
                weight: 0,
                draining: false,
            },
        );
        Ok(())
    }

    async fn wait_healthy(&self, b: &Backend, _timeout: Duration) -> Result<(), RouterError> {
        let s = self.enter("wait_healthy")?;
        s.get(&b.name)
            .map(|_| ())
            .ok_or_else(|| missing("wait_healthy", &b.name))
    }

    async fn promote(&self, b: &Backend) -> Result<(), RouterError> {
        let mut s = self.enter("promote")?;
        let server = s
            .get_mut(&b.name)
            .ok_or_else(|| missing("promote", &b.name))?;
        server.weight = 1;
        server.draining = false;
        Ok(())
    }

    async fn drain(&self, b: &Backend, _timeout: Duration) -> Result<(), RouterError> {
        let mut s = self.enter("drain")?;
        let server = s
            .get_mut(&b.name)
            .ok_or_else(|| missing("drain", &b.name))?;
        server.weight = 0;
        server.draining = true;
        Ok(())
    }

    async fn retire(&self, b: &Backend) -> Result<(), RouterError> {
        self.enter("retire")?.remove(&b.name);
        Ok(())
    }

    async fn remove(&self, b: &Backend) -> Result<(), RouterError> {
        self.enter("remove")?.remove(&b.name);
        Ok(())
    }

    async fn rehome(&self, slot: &Backend, standby: &Backend) -> Result<(), RouterError> {
        let mut s = self.enter("rehome")?;
        if slot.name == standby.name {
            return Ok(());
        }
        // As HAProxy: a slot a reload dropped leaves the standby in charge.
        let Some(server) = s.get_mut(&slot.name) else {
            return Ok(());
        };
        *server = Server {
            address: slot.address.clone(),
            weight: 1,
            draining: false,
        };
        s.remove(&standby.name);
        Ok(())
    }

    async fn save_state(&self) -> Result<Option<String>, RouterError> {
        let s = self.enter("save_state")?;
        *self.saved.lock().unwrap() = Some(s.clone());
        Ok(Some("fake-state".into()))
    }
}

/// A Compose service `web` of project `demo` with one healthy container,
/// a router in front of it, a journal and an override file the user wrote.
pub(super) struct Rig {
    pub(super) dir: tempfile::TempDir,
    pub(super) runtime: Arc<FakeRuntime>,
    pub(super) router: Arc<FakeRouter>,
    pub(super) journal: ServiceJournal,
    pub(super) blue_id: String,
    /// What recovery reported while it waited.
    pub(super) recovery_events: crate::journal::Recorded,
}

pub(super) fn timings() -> Timings {
    Timings {
        health_timeout: Duration::from_secs(5),
        health_interval: Duration::from_millis(100),
        drain: Duration::from_secs(1),
    }
}

impl Rig {
    pub(super) fn new(drains: bool) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            project.join("docker-compose.yml"),
            "version: '2.4'\nservices:\n  web:\n    image: local/web\n    cpus: 1.0\n    mem_limit: 256m\n",
        )
        .unwrap();
        std::fs::write(project.join("docker-compose.override.yml"), OVERRIDE_BEFORE).unwrap();
        let runtime = Arc::new(FakeRuntime::new());
        let working_dir = project.display().to_string();
        let blue_id = runtime.add(FakeContainer::serving(
            BLUE,
            &[
                (COMPOSE_SERVICE, "web"),
                (COMPOSE_PROJECT, "demo"),
                (COMPOSE_WORKING_DIR, &working_dir),
            ],
        ));
        let address = format!("127.0.0.1:{}", runtime.get(&blue_id).unwrap().port);
        let router = Arc::new(FakeRouter::new(
            drains,
            Servers::from([(
                "web".to_string(),
                Server {
                    address,
                    weight: 1,
                    draining: false,
                },
            )]),
        ));
        let journal = ServiceJournal::new(&dir.path().join("state"), "web");
        Rig {
            dir,
            runtime,
            router,
            journal,
            blue_id,
            recovery_events: Default::default(),
        }
    }

    pub(super) fn override_path(&self) -> PathBuf {
        self.dir
            .path()
            .join("project")
            .join("docker-compose.override.yml")
    }

    pub(super) fn override_text(&self) -> Option<String> {
        std::fs::read_to_string(self.override_path()).ok()
    }

    pub(super) fn request(&self, strategy: Strategy, cpus: f64, memory: u64) -> Request {
        Request {
            kind: Kind::Deploy,
            query: ServiceQuery {
                service: "web".into(),
                project: None,
            },
            target: Target { cpus, memory },
            override_text: None,
            strategy,
            timings: timings(),
            health_path: None,
            health_port: None,
            router_kind: self.router.kind(),
            router_server: None,
        }
    }

    pub(super) async fn plan(&self, strategy: Strategy, cpus: f64, memory: u64) -> Plan {
        self.plan_for(&self.request(strategy, cpus, memory)).await
    }

    pub(super) async fn plan_for(&self, request: &Request) -> Plan {
        prepare::build(
            self.runtime.as_ref(),
            request,
            &DeployConfig::default(),
            self.router.as_ref(),
        )
        .await
        .expect("plan")
    }

    /// The usual deploy: twice the CPU and memory.
    pub(super) async fn swap_plan(&self) -> Plan {
        self.plan(Strategy::BlueGreen, 2.0, 512 << 20).await
    }

    pub(super) async fn swap(&self, plan: &Plan) -> Result<Report, DeployError> {
        self.swap_reporting(plan, &crate::journal::Silent).await
    }

    pub(super) async fn swap_reporting(
        &self,
        plan: &Plan,
        events: &dyn crate::journal::Events,
    ) -> Result<Report, DeployError> {
        Swap {
            runtime: self.runtime.as_ref(),
            router: self.router.as_ref(),
            journal: &self.journal,
            timings: timings(),
            events,
            gate: None,
        }
        .run(plan)
        .await
    }

    pub(super) async fn recover(&self) -> Option<Recovered> {
        recover_open(
            self.runtime.as_ref(),
            self.router.as_ref(),
            &self.journal,
            timings().health_timeout,
            &self.recovery_events,
        )
        .await
        .expect("recovery")
    }

    pub(super) fn last_outcome(&self) -> Option<(Outcome, Option<Phase>)> {
        self.journal
            .history()
            .unwrap()
            .last()
            .and_then(|h| h.outcome.map(|o| (o, h.failed_phase)))
    }

    /// Blue serves under its own name with its old limits; no green is
    /// left, in the engine or the router; the override file is the
    /// user's; nothing is open in the journal.
    pub(super) fn assert_blue_kept(&self, plan: &Plan, context: &str) {
        let all = self.runtime.names();
        assert_eq!(all, vec![BLUE.to_string()], "{context}: containers {all:?}");
        let blue = self.runtime.get(BLUE).unwrap();
        assert_eq!(blue.id, self.blue_id, "{context}: blue is the original");
        assert!(blue.view().serving(), "{context}: blue serves: {blue:?}");
        assert_eq!(blue.limits, plan.old, "{context}: blue keeps its limits");
        let servers = self.router.servers();
        assert_eq!(
            servers.keys().collect::<Vec<_>>(),
            vec!["web"],
            "{context}: router {servers:?}"
        );
        assert_eq!(
            (servers["web"].weight, servers["web"].draining),
            (1, false),
            "{context}: blue takes traffic"
        );
        assert_eq!(
            self.override_text().as_deref(),
            Some(OVERRIDE_BEFORE),
            "{context}: override restored byte for byte"
        );
        assert!(
            self.journal.open().unwrap().is_none(),
            "{context}: journal closed"
        );
    }

    /// Green serves under blue's name with the new limits; blue is gone,
    /// in the engine and the router; the override file has the new limits.
    pub(super) fn assert_green_kept(&self, plan: &Plan, context: &str) {
        let all = self.runtime.names();
        assert_eq!(all, vec![BLUE.to_string()], "{context}: containers {all:?}");
        let green = self.runtime.get(BLUE).unwrap();
        assert_ne!(green.id, self.blue_id, "{context}: green took blue's name");
        assert_eq!(
            green.labels.get(DEPLOY_ID_LABEL),
            Some(&plan.record.id),
            "{context}"
        );
        assert!(green.view().serving(), "{context}: green serves: {green:?}");
        assert!(
            green.limits.same_size(&plan.new),
            "{context}: {:?}",
            green.limits
        );
        // The service keeps its one server, now at green's address; the
        // standby green was checked under is gone.
        let servers = self.router.servers();
        let address = format!("127.0.0.1:{}", green.port);
        assert_eq!(
            servers,
            Servers::from([(
                "web".to_string(),
                Server {
                    address,
                    weight: 1,
                    draining: false
                }
            )]),
            "{context}: router"
        );
        assert_eq!(
            green
                .labels
                .get(super::routing::SERVER_LABEL)
                .map(String::as_str),
            Some("web"),
            "{context}: the next deploy finds the server by label"
        );
        assert_eq!(
            self.override_text(),
            plan.record.override_after,
            "{context}: override has the new limits"
        );
        assert!(
            self.journal.open().unwrap().is_none(),
            "{context}: journal closed"
        );
    }
}

/// What a crash at one point leaves behind: the engine, the router, the
/// journal file and the override file.
#[derive(Clone)]
pub(super) struct Snapshot {
    pub(super) world: World,
    pub(super) servers: Servers,
    pub(super) journal: String,
    pub(super) override_text: Option<String>,
}

/// Runs `run` on a rig whose every engine and router call first records
/// the world as a crash right then would leave it.
pub(super) async fn snapshots<F, Fut>(rig: &Rig, run: F) -> Vec<Snapshot>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let taken: Arc<Mutex<Vec<Snapshot>>> = Arc::default();
    let take = {
        let runtime: Weak<FakeRuntime> = Arc::downgrade(&rig.runtime);
        let router: Weak<FakeRouter> = Arc::downgrade(&rig.router);
        let journal = rig.journal.path().to_path_buf();
        let override_path = rig.override_path();
        let taken = taken.clone();
        Arc::new(move || {
            let (Some(runtime), Some(router)) = (runtime.upgrade(), router.upgrade()) else {
                return;
            };
            taken.lock().unwrap().push(Snapshot {
                world: runtime.world().clone(),
                servers: router.servers(),
                journal: std::fs::read_to_string(&journal).unwrap_or_default(),
                override_text: std::fs::read_to_string(&override_path).ok(),
            });
        })
    };
    let for_engine = take.clone();
    rig.runtime.on_call(move |_, _| for_engine());
    *rig.router.hook.lock().unwrap() = Some(take);
    run().await;
    let out = taken.lock().unwrap().clone();
    out
}

/// Every crash point of a run, each once as the run left it and, when a
/// journal entry was written just before, once more without that entry (a
/// crash between finishing one phase and journaling the next).
pub(super) fn crash_points(taken: Vec<Snapshot>) -> Vec<Snapshot> {
    let mut out: Vec<Snapshot> = Vec::new();
    let mut previous = String::new();
    for s in taken {
        // Before the first entry nothing happened; after the last the run
        // is done (the router hint only reads).
        if s.journal.is_empty() || s.journal.contains("\"event\":\"finished\"") {
            continue;
        }
        if s.journal != previous {
            let lines: Vec<&str> = s.journal.lines().collect();
            if lines.len() > 1 && lines[lines.len() - 1].contains("\"event\":\"phase\"") {
                let mut earlier = s.clone();
                earlier.journal = lines[..lines.len() - 1].join("\n") + "\n";
                out.push(earlier);
            }
            previous = s.journal.clone();
        }
        out.push(s);
    }
    out
}

/// Puts the rig in the state of a crash and recovers it; returns the last
/// journaled phase and the outcome.
pub(super) async fn crash_and_recover(
    rig: &mut Rig,
    at: &Snapshot,
    drains: bool,
) -> (Option<Phase>, Outcome) {
    rig.runtime = Arc::new(FakeRuntime::from_world(at.world.clone()));
    rig.router = Arc::new(FakeRouter::new(drains, at.servers.clone()));
    std::fs::write(rig.journal.path(), &at.journal).unwrap();
    match &at.override_text {
        Some(t) => std::fs::write(rig.override_path(), t).unwrap(),
        None => {
            let _ = std::fs::remove_file(rig.override_path());
        }
    }
    let last = rig
        .journal
        .open()
        .unwrap()
        .expect("an open deploy")
        .last_phase;
    let recovered = rig.recover().await.expect("something to recover");
    assert!(rig.recover().await.is_none(), "recovery is done once");
    (last, recovered.outcome)
}
