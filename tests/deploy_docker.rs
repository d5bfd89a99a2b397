//! The `docker` wrapper the deploy and tune engines share, against the real
//! engine: connect errors, live limit updates through the container's own
//! CPU knob, memory usage, restart.

mod support;

use std::time::Duration;

use support::docker::{facts, Scope, WEB_HC};
use tuner::runtime::{CpuKnob, DockerClient};

async fn client() -> DockerClient {
    DockerClient::connect(None)
        .await
        .expect("Docker engine reachable")
}

#[tokio::test]
async fn unreachable_engine_names_the_socket() {
    let err = DockerClient::connect(Some("unix:///nonexistent/tuner-test.sock"))
        .await
        .err()
        .expect("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/tuner-test.sock")
            && msg.contains("cannot reach the Docker engine"),
        "{msg}"
    );
}

#[tokio::test]
async fn update_limits_uses_nano_cpus_and_moves_memory_with_swap() {
    let scope = Scope::new();
    let net = scope.network();
    let id = scope.run(&scope.name("nano"), &scope.name("nano"), WEB_HC, &net, &[]);
    let docker = client().await;
    let before = docker.limits(&id).await.expect("limits");
    assert_eq!(
        (before.cpus, before.memory, before.knob),
        (1.0, 128 << 20, CpuKnob::NanoCpus)
    );
    // 512M is above the stored MemorySwap (256M): only accepted with swap together.
    let after = docker
        .update_limits(&id, Some(0.5), Some(512 << 20))
        .await
        .expect("update");
    assert_eq!(
        (after.cpus, after.memory, after.memory_swap),
        (0.5, 512 << 20, 1024 << 20)
    );
    let f = facts(&id);
    assert_eq!((f.nano_cpus, f.memory), (500_000_000, 512 << 20));
    let only_cpu = docker
        .update_limits(&id, Some(0.75), None)
        .await
        .expect("cpu only");
    assert_eq!((only_cpu.cpus, only_cpu.memory), (0.75, 512 << 20));
}

#[tokio::test]
async fn update_limits_keeps_a_quota_container_on_its_quota() {
    let scope = Scope::new();
    let net = scope.network();
    let name = scope.name("quota");
    let out = support::docker::docker(&[
        "run",
        "-d",
        "--init",
        "--name",
        &name,
        "--network",
        &net,
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--memory",
        "128m",
        WEB_HC,
    ]);
    let docker = client().await;
    let before = docker.limits(&out).await.expect("limits");
    assert_eq!(
        (before.cpus, before.knob),
        (0.5, CpuKnob::Quota { period: 100_000 })
    );
    let after = docker
        .update_limits(&out, Some(1.25), Some(96 << 20))
        .await
        .expect("update through quota");
    assert_eq!((after.cpus, after.memory), (1.25, 96 << 20));
    let v: serde_json::Value =
        serde_json::from_str(&support::docker::docker(&["inspect", &out])).expect("json");
    assert_eq!(v[0]["HostConfig"]["CpuQuota"], 125_000);
    assert_eq!(v[0]["HostConfig"]["NanoCpus"], 0);
}

#[tokio::test]
async fn memory_usage_and_restart() {
    let scope = Scope::new();
    let net = scope.network();
    let id = scope.run(
        &scope.name("usage"),
        &scope.name("usage"),
        WEB_HC,
        &net,
        &[],
    );
    let docker = client().await;
    let usage = docker.memory_usage(&id).await.expect("stats");
    assert!(
        usage.usage > 0 && usage.working_set() <= usage.usage,
        "{usage:?}"
    );
    assert_eq!(usage.limit, 128 << 20);
    let started = |id: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&support::docker::docker(&["inspect", id])).expect("json");
        v[0]["State"]["StartedAt"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let first = started(&id);
    docker
        .restart(&id, Some(Duration::from_secs(1)))
        .await
        .expect("restart");
    assert_ne!(started(&id), first, "restarted");
    assert!(facts(&id).running);
    let err = docker
        .check_memory_fits(&id, 1 << 20)
        .await
        .expect_err("1M is below any usage");
    assert!(err.to_string().contains("below its current usage"), "{err}");
}
