//! `tuner deploy` on a real single-node Swarm: an update with new limits,
//! Swarm's own rollback when new tasks never become healthy, a dry run that
//! changes nothing, a stateful service refused, three replicas re-sized
//! with three healthy throughout, and zero failed requests through HAProxy
//! (DNS round robin on the overlay) during an update under load.
//!
//! Ignored in the main run: joining or leaving a swarm disturbs every
//! container's networks, so `make test` runs them apart, one at a time:
//! `TUNER_TEST_LEAVE_SWARM=1 cargo test --test swarm -- --test-threads=1 --include-ignored`.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::docker::WEB_HC;
use support::load::{Load, LoadConfig};
use support::swap::{run_tuner, show};
use support::swarm::{config, SwarmNode, SwarmScope};

const LIMIT: Duration = Duration::from_secs(180);

async fn tuner(cfg: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    run_tuner(
        &support::tuner_bin(),
        &cfg.path().join("tuner.yaml"),
        args,
        &[],
        LIMIT,
    )
    .await
    .expect("tuner ran")
}

#[tokio::test]
#[ignore = "Swarm: run apart with `make test` (see the file's doc)"]
async fn update_with_new_limits_through_swarms_rollout() {
    let _node = SwarmNode::ensure();
    let mut scope = SwarmScope::new();
    let svc = scope.service("web", WEB_HC, 1, &[]);
    let cfg = config("");
    let out = tuner(&cfg, &["deploy", &svc, "0.5", "192M", "--output", "json"]).await;
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(scope.limits(&svc), (500_000_000, 192 << 20));
    // The old task may still be in its stop grace period.
    assert!(
        support::wait_until(Duration::from_secs(20), || scope.running_memory(&svc)
            == vec![192 << 20]),
        "the running task has the new limit: {:?}",
        scope.running_memory(&svc)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json result");
    assert_eq!(json["result"]["outcome"], "succeeded", "{json}");
    assert_eq!(json["result"]["read_back"]["memory"], 192 << 20, "{json}");
    assert!(
        json["plan"]["changes"]
            .to_string()
            .contains("UpdateConfig.Order"),
        "{json}"
    );
    // Task-level progress, as JSON lines on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.contains("\"event\":\"step\"")
            && l.contains(&format!("task {svc}.1"))
            && l.contains("0.5 CPU, 192M: running")),
        "task progress on stderr: {}",
        show(&out)
    );
    let spec = support::docker::docker(&[
        "service",
        "inspect",
        &svc,
        "--format",
        "{{json .Spec.UpdateConfig}}",
    ]);
    assert!(
        spec.contains("\"Order\":\"start-first\"")
            && spec.contains("\"FailureAction\":\"rollback\""),
        "{spec}"
    );

    // The journal knows it: status shows the deploy, rollback returns
    // through Swarm's own rollback.
    let status = tuner(&cfg, &["deploy", "status", &svc]).await;
    assert!(status.status.success(), "{}", show(&status));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("Succeeded") && text.contains("running"),
        "{text}"
    );
    let back = tuner(&cfg, &["deploy", "rollback", &svc]).await;
    assert!(back.status.success(), "{}", show(&back));
    assert_eq!(scope.limits(&svc), (1_000_000_000, 256 << 20));
}

#[tokio::test]
#[ignore = "Swarm: run apart with `make test` (see the file's doc)"]
async fn new_tasks_never_healthy_are_rolled_back_by_swarm() {
    let _node = SwarmNode::ensure();
    let mut scope = SwarmScope::new();
    let fail_at = (160u64 << 20).to_string();
    let env1 = format!("FAIL_WHEN_MEM={fail_at}");
    let svc = scope.service(
        "bad",
        WEB_HC,
        1,
        &["--env", &env1, "--env", "FAIL_MODE=unhealthy"],
    );
    let cfg = config("");
    let out = tuner(&cfg, &["deploy", &svc, "0.5", "160M"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Swarm rolled the service back"),
        "{}",
        show(&out)
    );
    assert_eq!(
        scope.limits(&svc),
        (1_000_000_000, 256 << 20),
        "back on the old spec"
    );
    let status = tuner(&cfg, &["deploy", "status", &svc, "--output", "json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(json["deploys"][0]["outcome"], "failed", "{json}");
}

#[tokio::test]
#[ignore = "Swarm: run apart with `make test` (see the file's doc)"]
async fn dry_run_prints_the_spec_diff_and_changes_nothing() {
    let _node = SwarmNode::ensure();
    let mut scope = SwarmScope::new();
    let svc = scope.service("dry", WEB_HC, 1, &[]);
    let before = scope.version(&svc);
    let cfg = config("");
    let out = tuner(&cfg, &["deploy", &svc, "0.5", "128M", "--dry-run"]).await;
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("TaskTemplate.Resources.Limits.NanoCPUs: 1000000000 -> 500000000")
            && stdout.contains("TaskTemplate.Resources.Limits.MemoryBytes: 268435456 -> 134217728")
            && stdout.contains("nothing was changed"),
        "{}",
        show(&out)
    );
    assert_eq!(scope.version(&svc), before, "service version unchanged");
    assert!(
        !cfg.path().join("state/journal.jsonl").exists()
            || std::fs::read_to_string(cfg.path().join("state/journal.jsonl"))
                .unwrap_or_default()
                .is_empty()
    );
}

#[tokio::test]
#[ignore = "Swarm: run apart with `make test` (see the file's doc)"]
async fn a_stateful_service_is_refused() {
    let _node = SwarmNode::ensure();
    let mut scope = SwarmScope::new();
    let vol = scope.volume("data");
    let mount = format!("type=volume,source={vol},target=/data");
    let svc = scope.service("db", WEB_HC, 1, &["--mount", &mount]);
    let before = scope.version(&svc);
    let cfg = config("");
    let out = tuner(&cfg, &["deploy", &svc, "0.5", "128M"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stateful") && stderr.contains(&vol),
        "{}",
        show(&out)
    );
    assert_eq!(scope.version(&svc), before);
}

#[tokio::test]
#[ignore = "Swarm: run apart with `make test` (see the file's doc)"]
async fn three_replicas_are_resized_with_three_healthy_throughout() {
    let _node = SwarmNode::ensure();
    let mut scope = SwarmScope::new();
    let svc = scope.service("three", WEB_HC, 3, &[]);
    assert!(support::wait_until(Duration::from_secs(30), || scope
        .healthy(&svc)
        == 3));
    let stop = Arc::new(AtomicBool::new(false));
    let least = Arc::new(AtomicUsize::new(usize::MAX));
    let samples = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, least, samples, svc) =
            (stop.clone(), least.clone(), samples.clone(), svc.clone());
        let probe = SwarmScope::probe();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                least.fetch_min(probe.healthy(&svc), Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let cfg = config("");
    let out = tuner(&cfg, &["deploy", &svc, "0.5", "192M"]).await;
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    assert!(out.status.success(), "{}", show(&out));
    assert!(samples.load(Ordering::Relaxed) > 10);
    assert!(
        least.load(Ordering::Relaxed) >= 3,
        "healthy fell to {}",
        least.load(Ordering::Relaxed)
    );
    assert!(support::wait_until(Duration::from_secs(20), || {
        scope.running_memory(&svc) == vec![192 << 20; 3]
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "Swarm: run apart with `make test` (see the file's doc)"]
async fn no_failed_request_through_haproxy_during_a_swarm_update() {
    let _node = SwarmNode::ensure();
    let mut scope = SwarmScope::new();
    let svc = scope.service("lb", WEB_HC, 2, &[]);
    let port = support::free_publish_port();
    let _cfg_dir = scope.haproxy(&svc, port);
    assert!(
        support::wait_until(Duration::from_secs(30), || {
            support::haproxy::http_get(port, "/index.html").is_ok_and(|(code, _)| code == 200)
        }),
        "HAProxy serves the tasks"
    );
    let mut load_cfg = LoadConfig::new(port, "/index.html");
    load_cfg.rate = 300.0;
    load_cfg.workers = 48;
    load_cfg.max_duration = Duration::from_secs(90);
    let load = Load::start(load_cfg);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cfg = config("");
    let out = tuner(&cfg, &["deploy", &svc, "0.5", "192M"]).await;
    // The old tasks stop after the rollout; keep the load on past that.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let report = load.finish().await;
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(scope.limits(&svc), (500_000_000, 192 << 20));
    assert_eq!(report.failed(), 0, "{}", report.summary());
    assert!(report.rate() >= 200.0, "{}", report.summary());
}

/// A web service whose tasks report `app_error_ratio` on /metrics: 0.5
/// when their memory limit is `bad_memory`, else 0 (the new tasks of a
/// deploy to that limit "serve errors").
fn reporting_service(scope: &mut SwarmScope, what: &str, bad_memory: u64) -> String {
    let script = format!(
        "/bin/busybox mkdir -p /tmp/www && /bin/busybox cp /www/healthz /www/index.html /tmp/www/ && lim=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
         if [ \"$lim\" = {bad_memory} ]; then r=0.5; else r=0; fi; \
         echo \"app_error_ratio $r\" > /tmp/www/metrics; exec /bin/httpd -f -p 8080 -h /tmp/www"
    );
    scope.service_cmd(
        what,
        WEB_HC,
        1,
        &["--entrypoint", "/bin/sh"],
        &["-c", &script],
    )
}

const GATE: &str = "deploy:\n  analysis:\n    interval: 1s\n    count: 3\n    checks:\n      - name: error_ratio\n        query: max(app_error_ratio)\n        max: 0.05\n";

async fn gated_deploy(bad_memory: u64, memory: &str) -> (std::process::Output, (i64, i64)) {
    let _node = SwarmNode::ensure();
    let mut scope = SwarmScope::new();
    let svc = reporting_service(&mut scope, "gated", bad_memory);
    let port = support::free_publish_port();
    let _lb = scope.haproxy(&svc, port);
    let prom = support::swarm::Scraper::start(&format!("127.0.0.1:{port}"));
    assert!(
        support::wait_until(Duration::from_secs(40), || prom
            .instant("max(app_error_ratio)")
            == Some(0.0)),
        "Prometheus scrapes the service through HAProxy"
    );
    let cfg = config(GATE);
    let text = std::fs::read_to_string(cfg.path().join("tuner.yaml")).expect("read cfg");
    let text = text.replace("url: http://127.0.0.1:9", &format!("url: {}", prom.url));
    std::fs::write(cfg.path().join("tuner.yaml"), text).expect("write cfg");
    let out = tuner(&cfg, &["deploy", &svc, "0.5", memory, "--output", "json"]).await;
    let limits = scope.limits(&svc);
    (out, limits)
}

#[tokio::test]
#[ignore = "Swarm: run apart with `make test` (see the file's doc)"]
async fn a_gate_whose_check_fails_rolls_back_with_the_value_shown() {
    let (out, limits) = gated_deploy(192 << 20, "192M").await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("promotion gate failed") && stderr.contains("0.5"),
        "{}",
        show(&out)
    );
    assert_eq!(limits, (1_000_000_000, 256 << 20), "rolled back by Swarm");
}

#[tokio::test]
#[ignore = "Swarm: run apart with `make test` (see the file's doc)"]
async fn a_gate_whose_checks_pass_promotes() {
    let (out, limits) = gated_deploy(100 << 20, "192M").await;
    assert!(out.status.success(), "{}", show(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["result"]["analysis"]["passed"], true, "{json}");
    assert_eq!(
        json["result"]["analysis"]["measurements"][0]["value"], 0.0,
        "{json}"
    );
    assert_eq!(limits, (500_000_000, 192 << 20));
}
