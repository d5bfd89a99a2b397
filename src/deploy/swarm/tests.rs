//! The Swarm deploy on the in-memory Swarm: the plan, its refusals, the
//! journal of a success and of Swarm's own rollback.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::config::deploy::DeployConfig;
use crate::deploy::record::Kind;
use crate::deploy::Target;
use crate::journal::events::Silent;
use crate::runtime::swarm::fake::{FakeSwarm, Next};

fn target() -> Target {
    Target {
        cpus: 0.5,
        memory: 128 << 20,
    }
}

async fn plan_for(swarm: &FakeSwarm, ask: Ask) -> Result<SwarmPlan, DeployError> {
    let service = swarm.service("web").await.unwrap().unwrap();
    build(swarm, &service, &ask, &DeployConfig::default()).await
}

fn run<'a>(swarm: &'a FakeSwarm, journal: &'a ServiceJournal) -> SwarmRun<'a> {
    SwarmRun {
        swarm,
        journal,
        events: &Silent,
        timeout: Duration::from_secs(5),
        gate: None,
    }
}

#[tokio::test]
async fn the_plan_writes_nothing_and_shows_the_exact_diff() {
    let swarm = FakeSwarm::with_service("web", 3);
    let plan = plan_for(&swarm, Ask::Resize(target())).await.unwrap();
    assert!(swarm.state.lock().unwrap().writes.is_empty());
    assert_eq!(swarm.service_now().version, 10);
    let lines: Vec<String> = plan.changes.iter().map(|c| c.to_string()).collect();
    assert!(
        lines.contains(
            &"TaskTemplate.Resources.Limits.NanoCPUs: 1000000000 -> 500000000".to_string()
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"UpdateConfig.Order: (unset) -> \"start-first\"".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"UpdateConfig.FailureAction: (unset) -> \"rollback\"".to_string()),
        "{lines:?}"
    );
    assert_eq!(plan.replicas, Some(3));
    assert_eq!(plan.record.kind, Kind::Swarm);
    assert_eq!(plan.monitor_secs, 2.0);
}

#[tokio::test]
async fn an_update_swarm_completes_is_journaled_as_succeeded() {
    let swarm = FakeSwarm::with_service("web", 2);
    let dir = tempfile::tempdir().unwrap();
    let journal = ServiceJournal::new(dir.path(), "web");
    let plan = plan_for(&swarm, Ask::Resize(target())).await.unwrap();
    let report = run(&swarm, &journal).run(&plan).await.unwrap();
    assert!(report.read_back.same_size(&report.new));
    assert_eq!(report.tasks.len(), 2);
    let (written, rollback) = swarm.state.lock().unwrap().writes[0].clone();
    assert!(!rollback);
    assert_eq!(written, plan.spec, "the planned spec is the one written");
    let h = journal.history().unwrap();
    assert_eq!(h[0].outcome, Some(Outcome::Succeeded));
    assert_eq!(h[0].last_phase, Some(Phase::ServiceUpdate));
}

#[tokio::test]
async fn swarms_own_rollback_is_reported_and_journaled_as_failed() {
    let swarm = FakeSwarm::with_service("web", 1);
    swarm.set(|s| s.next = Next::RollBack);
    let dir = tempfile::tempdir().unwrap();
    let journal = ServiceJournal::new(dir.path(), "web");
    let plan = plan_for(&swarm, Ask::Resize(target())).await.unwrap();
    let err = run(&swarm, &journal)
        .run(&plan)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Swarm rolled the service back"), "{err}");
    assert!(
        err.contains("back on 1 CPU, 256.0M") || err.contains("back on 1 CPU"),
        "{err}"
    );
    assert_eq!(journal.history().unwrap()[0].outcome, Some(Outcome::Failed));
}

#[tokio::test]
async fn a_refused_write_changes_nothing_and_says_so() {
    let swarm = FakeSwarm::with_service("web", 1);
    swarm.set(|s| s.next = Next::Refuse);
    let dir = tempfile::tempdir().unwrap();
    let journal = ServiceJournal::new(dir.path(), "web");
    let plan = plan_for(&swarm, Ask::Resize(target())).await.unwrap();
    let err = run(&swarm, &journal)
        .run(&plan)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("keeps 1 CPU"), "{err}");
    assert_eq!(swarm.service_now().version, 10);
    assert!(journal.open().unwrap().is_none(), "closed as failed");
}

#[tokio::test]
async fn stateful_services_and_services_without_a_healthcheck_are_refused() {
    let swarm = FakeSwarm::with_service("web", 1);
    swarm.set(|s| {
        let spec = &mut s.service.as_mut().unwrap().spec;
        spec["TaskTemplate"]["ContainerSpec"]["Mounts"] =
            json!([{"Type": "volume", "Source": "webdata", "Target": "/data"}]);
    });
    let err = plan_for(&swarm, Ask::Resize(target())).await.unwrap_err();
    assert!(err.is_usage());
    assert!(
        err.to_string().contains("named volume webdata at /data"),
        "{err}"
    );

    let swarm = FakeSwarm::with_service("postgres", 1);
    let service = swarm.service("postgres").await.unwrap().unwrap();
    let err = build(
        &swarm,
        &service,
        &Ask::Resize(target()),
        &DeployConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("deploy.stateful"), "{err}");

    let swarm = FakeSwarm::with_service("web", 1);
    swarm.set(|s| {
        let spec = &mut s.service.as_mut().unwrap().spec;
        spec["TaskTemplate"]["ContainerSpec"]["HealthCheck"] = json!(null);
    });
    let err = plan_for(&swarm, Ask::Resize(target())).await.unwrap_err();
    assert!(
        matches!(err, DeployError::SwarmNoHealthcheck { .. }),
        "{err}"
    );
    swarm.set(|s| s.image_healthcheck = true);
    plan_for(&swarm, Ask::Resize(target())).await.unwrap();
}

#[tokio::test]
async fn more_cpus_than_any_node_is_refused() {
    let swarm = FakeSwarm::with_service("web", 1);
    let err = plan_for(
        &swarm,
        Ask::Resize(Target {
            cpus: 4.0,
            memory: 128 << 20,
        }),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("2 CPUs"), "{err}");
}

#[tokio::test]
async fn rollback_uses_swarms_rollback_and_needs_a_journaled_update() {
    let swarm = FakeSwarm::with_service("web", 1);
    let err = plan_for(&swarm, Ask::Rollback { previous: None })
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::NothingToRollBack { .. }));
    let dir = tempfile::tempdir().unwrap();
    let journal = ServiceJournal::new(dir.path(), "web");
    let plan = plan_for(&swarm, Ask::Resize(target())).await.unwrap();
    let old = plan.record.old;
    run(&swarm, &journal).run(&plan).await.unwrap();
    let back = plan_for(
        &swarm,
        Ask::Rollback {
            previous: Some(old),
        },
    )
    .await
    .unwrap();
    assert_eq!(back.record.kind, Kind::SwarmRollback);
    let report = run(&swarm, &journal).run(&back).await.unwrap();
    assert!(report.read_back.same_size(&old));
    assert!(
        swarm.state.lock().unwrap().writes[1].1,
        "a rollback request"
    );
}

#[tokio::test]
async fn recovery_closes_an_open_swarm_deploy_by_where_the_service_is() {
    let swarm = FakeSwarm::with_service("web", 1);
    let dir = tempfile::tempdir().unwrap();
    let journal = ServiceJournal::new(dir.path(), "web");
    let plan = plan_for(&swarm, Ask::Resize(target())).await.unwrap();
    // Journaled, then killed before the write: nothing happened.
    journal.started(&plan.record).unwrap();
    journal
        .phase(&plan.record.id, Phase::ServiceUpdate)
        .unwrap();
    let said = recover(&swarm, &journal, &Silent, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert!(said.contains("not applied"), "{said}");
    assert_eq!(journal.history().unwrap()[0].outcome, Some(Outcome::Undone));
    assert!(recover(&swarm, &journal, &Silent, Duration::from_secs(1))
        .await
        .unwrap()
        .is_none());
}

mod gated {
    use super::*;
    use crate::config::deploy::{AnalysisConfig, CheckConfig};
    use crate::deploy::fake_metrics::{Answer, ScriptedMetrics};

    fn analysis() -> AnalysisConfig {
        AnalysisConfig {
            interval: Duration::ZERO,
            count: 2,
            failure_limit: 0,
            error_limit: 0,
            checks: vec![CheckConfig {
                name: "error_rate".into(),
                query: "sum(rate(errors_total[10s]))".into(),
                max: Some(0.05),
                min: None,
            }],
        }
    }

    async fn gated_run(answer: Answer) -> (FakeSwarm, Result<SwarmReport, DeployError>, String) {
        let swarm = FakeSwarm::with_service("web", 2);
        let dir = tempfile::tempdir().unwrap();
        let journal = ServiceJournal::new(dir.path(), "web");
        let plan = plan_for(&swarm, Ask::Resize(target())).await.unwrap();
        let metrics = ScriptedMetrics::always(answer);
        let config = analysis();
        let result = SwarmRun {
            gate: Some(Gate {
                metrics: &metrics,
                config: &config,
            }),
            ..run(&swarm, &journal)
        }
        .run(&plan)
        .await;
        let text = std::fs::read_to_string(journal.path()).unwrap();
        (swarm, result, text)
    }

    #[tokio::test]
    async fn a_passing_gate_promotes_and_reports_its_values() {
        let (swarm, result, journal) = gated_run(Answer::Value(0.0)).await;
        let report = result.unwrap();
        let a = report.analysis.unwrap();
        assert!(a.passed && a.measurements.len() == 2);
        assert_eq!(swarm.state.lock().unwrap().writes.len(), 1, "no rollback");
        assert_eq!(journal.matches("\"measured\"").count(), 2);
    }

    #[tokio::test]
    async fn a_failing_gate_rolls_back_through_swarm_with_the_value_shown() {
        let (swarm, result, _) = gated_run(Answer::Value(0.4)).await;
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("promotion gate failed") && err.contains("0.4"),
            "{err}"
        );
        assert!(err.contains("rolled web back to 1 CPU"), "{err}");
        let writes = swarm.state.lock().unwrap().writes.clone();
        assert_eq!(writes.len(), 2);
        assert!(writes[1].1, "Swarm's rollback was asked for");
        assert_eq!(swarm.service_now().limits().cpus, 1.0);
    }

    #[tokio::test]
    async fn no_data_or_no_prometheus_fails_closed() {
        for answer in [Answer::NoData, Answer::Unreachable] {
            let (swarm, result, _) = gated_run(answer).await;
            let err = result.unwrap_err().to_string();
            assert!(err.contains("failing closed"), "{err}");
            assert_eq!(swarm.service_now().limits().cpus, 1.0);
        }
    }
}
