//! The rollout over replicas on the in-memory runtime: every replica
//! re-sized one at a time with never fewer than N serving, a failure on the
//! second replica swapping the first back, the gate judged per replica, and
//! a rollout a crash left open undone by the next run.

use std::sync::{Arc, Mutex, Weak};

use super::analysis::Gate;
use super::fake_metrics::{Answer, ScriptedMetrics};
use super::fakes::{timings, FakeRouter, Server, Servers};
use super::plan::Plan;
use super::prepare::{build_replicas, Request, Strategy};
use super::record::{Kind, Outcome, ServiceJournal};
use super::replicas::Rollout;
use super::routing::SERVER_LABEL;
use super::swap::Swap;
use super::{DeployError, Target};
use crate::config::deploy::{AnalysisConfig, CheckConfig, DeployConfig};
use crate::journal::Silent;
use crate::runtime::fake::{FakeContainer, FakeRuntime, Op};
use crate::runtime::find::{COMPOSE_NUMBER, COMPOSE_PROJECT, COMPOSE_SERVICE};
use crate::runtime::{Health, ServiceQuery};

const N: usize = 3;

struct Replicas {
    _dir: tempfile::TempDir,
    runtime: Arc<FakeRuntime>,
    router: Arc<FakeRouter>,
    journal: ServiceJournal,
    config: DeployConfig,
    request: Request,
    /// The fewest serving replicas seen before any engine call.
    fewest: Arc<Mutex<usize>>,
    /// The fewest servers taking traffic seen before any router call.
    fewest_servers: Arc<Mutex<usize>>,
}

fn serving(runtime: &FakeRuntime) -> usize {
    runtime
        .world()
        .containers
        .values()
        .filter(|c| c.labels.get(COMPOSE_SERVICE).map(String::as_str) == Some("web"))
        .filter(|c| c.running && c.health == Health::Healthy)
        .count()
}

impl Replicas {
    fn new() -> Replicas {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Arc::new(FakeRuntime::new());
        let mut servers = Servers::new();
        for k in 1..=N {
            let number = k.to_string();
            // Each replica has its own slot in the router.
            let slot = format!("web{k}");
            let id = runtime.add(FakeContainer::serving(
                &format!("demo_web_{k}"),
                &[
                    (COMPOSE_SERVICE, "web"),
                    (COMPOSE_PROJECT, "demo"),
                    (COMPOSE_NUMBER, &number),
                    (SERVER_LABEL, &slot),
                ],
            ));
            let port = runtime.get(&id).unwrap().port;
            servers.insert(
                slot,
                Server {
                    address: format!("127.0.0.1:{port}"),
                    weight: 1,
                    draining: false,
                },
            );
        }
        let router = Arc::new(FakeRouter::new(true, servers));
        let fewest_servers = Arc::new(Mutex::new(usize::MAX));
        let watch_router: Weak<FakeRouter> = Arc::downgrade(&router);
        let seen_servers = fewest_servers.clone();
        *router.hook.lock().unwrap() = Some(Arc::new(move || {
            if let Some(r) = watch_router.upgrade() {
                let now = r
                    .servers()
                    .values()
                    .filter(|s| s.weight > 0 && !s.draining)
                    .count();
                let mut f = seen_servers.lock().unwrap();
                *f = (*f).min(now);
            }
        }));
        let fewest = Arc::new(Mutex::new(usize::MAX));
        let watch: Weak<FakeRuntime> = Arc::downgrade(&runtime);
        let seen = fewest.clone();
        runtime.on_call(move |_, _| {
            if let Some(rt) = watch.upgrade() {
                let now = serving(&rt);
                let mut f = seen.lock().unwrap();
                *f = (*f).min(now);
            }
        });
        let journal = ServiceJournal::new(&dir.path().join("state"), "web");
        Replicas {
            _dir: dir,
            runtime,
            router,
            journal,
            config: DeployConfig::default(),
            request: Request {
                kind: Kind::Deploy,
                query: ServiceQuery {
                    service: "web".into(),
                    project: None,
                },
                target: Target {
                    cpus: 2.0,
                    memory: 512 << 20,
                },
                override_text: None,
                strategy: Strategy::BlueGreen,
                timings: timings(),
                health_path: None,
                health_port: None,
                router_kind: "none",
                router_server: None,
            },
            fewest,
            fewest_servers,
        }
    }

    async fn plans(&self) -> Vec<Plan> {
        build_replicas(
            self.runtime.as_ref(),
            &self.request,
            &self.config,
            self.router.as_ref(),
        )
        .await
        .expect("plans")
    }

    fn rollout<'a>(&'a self, gate: Option<Gate<'a>>) -> Rollout<'a> {
        Rollout {
            runtime: self.runtime.as_ref(),
            router: self.router.as_ref(),
            journal: &self.journal,
            config: &self.config,
            request: &self.request,
            events: &Silent,
            gate,
        }
    }

    /// Every replica's (name, cpus), in name order.
    fn sizes(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .runtime
            .world()
            .containers
            .values()
            .map(|c| (c.name.clone(), c.limits.cpus))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn all_at(&self, cpus: f64) -> bool {
        let sizes = self.sizes();
        sizes.len() == N && sizes.iter().all(|(_, c)| *c == cpus)
    }
}

#[tokio::test(start_paused = true)]
async fn planning_every_replica_changes_nothing() {
    let rig = Replicas::new();
    let plans = rig.plans().await;
    let names: Vec<&str> = plans.iter().map(|p| p.blue_name.as_str()).collect();
    assert_eq!(names, ["demo_web_1", "demo_web_2", "demo_web_3"]);
    let ids: std::collections::BTreeSet<&str> =
        plans.iter().map(|p| p.record.id.as_str()).collect();
    assert_eq!(ids.len(), N, "each replica its own deploy id");
    assert!(rig.all_at(1.0));
    assert!(rig
        .runtime
        .calls()
        .iter()
        .all(|(op, _)| !matches!(op, Op::CreateClone | Op::Start | Op::Remove)));
}

#[tokio::test(start_paused = true)]
async fn every_replica_is_resized_one_at_a_time_never_below_n() {
    let rig = Replicas::new();
    let plans = rig.plans().await;
    let report = rig.rollout(None).run(&plans).await.expect("rollout");
    assert_eq!(report.replicas.len(), N);
    assert!(rig.all_at(2.0), "{:?}", rig.sizes());
    assert_eq!(*rig.fewest.lock().unwrap(), N, "never fewer than N serving");
    assert_eq!(*rig.fewest_servers.lock().unwrap(), N, "nor taking traffic");
    // Each replica's slot was swapped in turn and kept its name (a reload
    // of the router's config keeps it): each now points at its green.
    let servers = rig.router.servers();
    assert_eq!(servers.len(), N, "{servers:?}");
    for k in 1..=N {
        let port = rig
            .runtime
            .world()
            .containers
            .values()
            .find(|c| c.name == format!("demo_web_{k}"))
            .map(|c| c.port)
            .expect("replica renamed back");
        let slot = &servers[&format!("web{k}")];
        assert_eq!(slot.address, format!("127.0.0.1:{port}"), "{servers:?}");
        assert_eq!(slot.weight, 1, "{servers:?}");
    }
    let rollouts = rig.journal.rollouts().unwrap();
    assert_eq!(rollouts[0].outcome, Some(Outcome::Succeeded));
    assert_eq!(rollouts[0].members.len(), N);
    assert_eq!(
        rig.journal.last_kept().unwrap().unwrap().record.blue_name,
        "demo_web_3"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_on_the_second_replica_swaps_the_first_back() {
    let rig = Replicas::new();
    let plans = rig.plans().await;
    // The second green never becomes healthy.
    rig.runtime.fail_after(Op::CreateClone, None, 1);
    let err = rig.rollout(None).run(&plans).await.unwrap_err();
    assert!(matches!(err, DeployError::ReplicaFailed { replica: 2, .. }));
    let text = err.to_string();
    assert!(
        text.contains("replica 2 of 3")
            && text.contains("swapped back to 1 CPU")
            && text.contains("demo_web_1"),
        "{text}"
    );
    assert!(rig.all_at(1.0), "{:?}", rig.sizes());
    assert_eq!(*rig.fewest.lock().unwrap(), N);
    assert_eq!(*rig.fewest_servers.lock().unwrap(), N);
    assert!(rig.journal.open().unwrap().is_none());
    let rollouts = rig.journal.rollouts().unwrap();
    assert_eq!(rollouts[0].outcome, Some(Outcome::Failed));
    assert!(
        rig.journal.last_kept().unwrap().is_none(),
        "a failed rollout leaves nothing for `deploy rollback`"
    );
}

#[tokio::test(start_paused = true)]
async fn a_gate_failing_on_a_replica_rolls_the_rollout_back_with_the_value() {
    let rig = Replicas::new();
    let plans = rig.plans().await;
    // The first replica's gate passes, the second's fails.
    let metrics = ScriptedMetrics::script("error_rate", &[Some(0.0), Some(0.4)]);
    let config = AnalysisConfig {
        interval: std::time::Duration::ZERO,
        count: 1,
        failure_limit: 0,
        error_limit: 0,
        checks: vec![CheckConfig {
            name: "error_rate".into(),
            query: "x".into(),
            max: Some(0.05),
            min: None,
        }],
    };
    let gate = Gate {
        metrics: &metrics,
        config: &config,
    };
    let text = rig
        .rollout(Some(gate))
        .run(&plans)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("phase analysis") && text.contains("0.4") && text.contains("<= 0.05"),
        "{text}"
    );
    assert!(rig.all_at(1.0), "{:?}", rig.sizes());
    let journal = std::fs::read_to_string(rig.journal.path()).unwrap();
    assert_eq!(journal.matches("\"measured\"").count(), 2, "{journal}");
    // Fail closed: an unreachable Prometheus stops the first replica.
    let rig = Replicas::new();
    let plans = rig.plans().await;
    let down = ScriptedMetrics::always(Answer::Unreachable);
    let gate = Gate {
        metrics: &down,
        config: &config,
    };
    let err = rig.rollout(Some(gate)).run(&plans).await.unwrap_err();
    assert!(matches!(err, DeployError::ReplicaFailed { replica: 1, .. }));
    assert!(err.to_string().contains("failing closed"), "{err}");
    assert!(rig.all_at(1.0));
}

#[tokio::test(start_paused = true)]
async fn a_rollout_left_open_by_a_crash_is_undone_by_the_next_run() {
    let rig = Replicas::new();
    let plans = rig.plans().await;
    // What a crash in the second swap leaves: the rollout and the first
    // swap journaled, the first replica re-sized, the second swap open.
    let record = super::record::RolloutRecord {
        id: "r1".into(),
        kind: Kind::Deploy,
        service: "web".into(),
        replicas: plans.iter().map(|p| p.blue_name.clone()).collect(),
        old: plans[0].old,
        new: plans[0].new,
        override_before: None,
        health_path: None,
        health_port: None,
        started_at: chrono::Utc::now(),
    };
    rig.journal.rollout_started(&record).unwrap();
    Swap {
        runtime: rig.runtime.as_ref(),
        router: rig.router.as_ref(),
        journal: &rig.journal,
        timings: timings(),
        events: &Silent,
        gate: None,
    }
    .run(&plans[0])
    .await
    .unwrap();
    rig.journal.started(&plans[1].record).unwrap();
    rig.journal
        .phase(&plans[1].record.id, super::Phase::Prepare)
        .unwrap();
    assert!(!rig.all_at(1.0));

    let said = rig.rollout(None).recover().await.unwrap().unwrap();
    assert!(said.contains("demo_web_1"), "{said}");
    assert!(rig.all_at(1.0), "{:?}", rig.sizes());
    assert!(rig.journal.open_rollout().unwrap().is_none());
    assert!(rig.journal.open().unwrap().is_none());
    assert!(rig.rollout(None).recover().await.unwrap().is_none());
}
