//! `tuner deploy` on a service with three replicas, on the real engine: a
//! Compose service scaled with `docker-compose up --scale web=3` is
//! re-sized one replica at a time with at least three healthy replicas
//! throughout (polled during the deploy), `--dry-run` shows each replica's
//! plan and changes nothing, `deploy rollback` takes them all back, and a
//! failure on the second replica swaps the first back.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::docker::{docker, facts, wait_healthy, Scope, WEB_HC};

const FAST: [&str; 6] = [
    "--health-timeout",
    "30s",
    "--health-interval",
    "1s",
    "--drain",
    "1s",
];

fn tuner(cfg: &Path, args: &[&str]) -> Output {
    Command::new(support::tuner_bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env_remove("TUNER_DEPLOY_CRASH_AFTER")
        .output()
        .expect("run tuner")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tuner.yaml");
    std::fs::write(&path, "paths:\n  state_dir: state\n").expect("config");
    path
}

/// Running containers of `service` in Compose project `project`, healthy
/// ones only when `healthy`.
fn containers(project: &str, service: &str, healthy: bool) -> Vec<String> {
    let mut args = vec![
        "ps".to_string(),
        "-q".into(),
        "--no-trunc".into(),
        "--filter".into(),
        format!("label=com.docker.compose.project={project}"),
        "--filter".into(),
        format!("label=com.docker.compose.service={service}"),
    ];
    if healthy {
        args.extend(["--filter".into(), "health=healthy".into()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ids: Vec<String> = docker(&refs)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

/// Counts the healthy replicas every 200 ms until dropped; keeps the fewest.
struct HealthyWatch {
    stop: Arc<AtomicBool>,
    fewest: Arc<AtomicUsize>,
    polls: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HealthyWatch {
    fn start(project: &str, service: &str) -> HealthyWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let fewest = Arc::new(AtomicUsize::new(usize::MAX));
        let polls = Arc::new(AtomicUsize::new(0));
        let (s, f, p) = (stop.clone(), fewest.clone(), polls.clone());
        let (project, service) = (project.to_string(), service.to_string());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let n = containers(&project, &service, true).len();
                f.fetch_min(n, Ordering::SeqCst);
                p.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        HealthyWatch {
            stop,
            fewest,
            polls,
            thread: Some(thread),
        }
    }

    /// (fewest healthy seen, number of polls).
    fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.fewest.load(Ordering::SeqCst),
            self.polls.load(Ordering::SeqCst),
        )
    }
}

fn compose(dir: &Path, project: &str, args: &[&str]) -> String {
    let out = Command::new("docker-compose")
        .current_dir(dir)
        .arg("-p")
        .arg(project)
        .args(args)
        .output()
        .expect("docker-compose");
    assert!(
        out.status.success(),
        "docker-compose {args:?}: {}",
        show(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn three_compose_replicas_are_resized_one_at_a_time_never_fewer_than_three_healthy() {
    let mut scope = Scope::new();
    let project = scope.prefix.clone();
    let dir = tempfile::Builder::new()
        .prefix("tuner-test-replicas-")
        .tempdir()
        .expect("temp dir");
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!("version: \"2.4\"\nservices:\n  web:\n    image: {WEB_HC}\n    init: true\n    cpus: 0.5\n    mem_limit: 128m\n"),
    )
    .expect("compose file");
    scope.track_compose(dir.path(), &project);
    compose(dir.path(), &project, &["up", "-d", "--scale", "web=3"]);
    let blues = containers(&project, "web", false);
    assert_eq!(blues.len(), 3, "{blues:?}");
    for id in &blues {
        assert!(wait_healthy(id, Duration::from_secs(60)), "{:?}", facts(id));
    }
    let cfg_dir = tempfile::tempdir().expect("cfg dir");
    let cfg = config(cfg_dir.path());
    let mut args = vec!["deploy", "web", "0.75", "192M", "--project", &project];
    args.extend(FAST);

    // Dry run: every replica's plan, nothing changed.
    let mut dry = args.clone();
    dry.push("--dry-run");
    let out = tuner(&cfg, &dry);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for k in 1..=3 {
        assert!(
            text.contains(&format!("replica {k}/3: {project}_web_{k}")),
            "{}",
            show(&out)
        );
    }
    assert!(text.contains("Dry run: nothing was changed."), "{text}");
    assert_eq!(
        containers(&project, "web", false),
        blues,
        "dry run changed nothing"
    );
    assert!(!dir.path().join("docker-compose.override.yml").exists());

    let watch = HealthyWatch::start(&project, "web");
    let out = tuner(&cfg, &args);
    let (fewest, polls) = watch.finish();
    assert!(out.status.success(), "{}", show(&out));
    assert!(polls >= 5, "the watch polled during the deploy ({polls})");
    assert!(
        fewest >= 3,
        "never fewer than 3 healthy replicas: saw {fewest}"
    );
    let greens = containers(&project, "web", false);
    assert_eq!(greens.len(), 3, "{greens:?}");
    for id in &greens {
        assert!(!blues.contains(id), "every replica was swapped");
        let f = facts(id);
        assert_eq!((f.nano_cpus, f.memory), (750_000_000, 192 << 20), "{f:?}");
    }
    let mut names: Vec<String> = greens.iter().map(|id| facts(id).name).collect();
    names.sort();
    assert_eq!(
        names,
        (1..=3)
            .map(|k| format!("{project}_web_{k}"))
            .collect::<Vec<_>>(),
        "each green took its blue's name"
    );
    let override_text =
        std::fs::read_to_string(dir.path().join("docker-compose.override.yml")).expect("override");
    assert!(override_text.contains("0.75"), "{override_text}");

    // `deploy rollback` takes every replica back, one at a time too.
    let mut back = vec!["deploy", "rollback", "web", "--project", &project];
    back.extend(FAST);
    let watch = HealthyWatch::start(&project, "web");
    let out = tuner(&cfg, &back);
    let (fewest, _) = watch.finish();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        fewest >= 3,
        "never fewer than 3 healthy replicas: saw {fewest}"
    );
    let after = containers(&project, "web", false);
    assert_eq!(after.len(), 3, "{after:?}");
    for id in &after {
        let f = facts(id);
        assert_eq!((f.nano_cpus, f.memory), (500_000_000, 128 << 20), "{f:?}");
    }
    assert!(
        !dir.path().join("docker-compose.override.yml").exists(),
        "the override file is gone again, as before the deploy"
    );
}

#[test]
fn a_failure_on_the_second_replica_swaps_the_first_back() {
    let scope = Scope::new();
    let net = scope.network();
    let project = format!("{}-p", scope.prefix);
    // Replica 2's clone fails at once when it gets the new memory limit;
    // replicas 1 and 3 (and every blue) are fine.
    let new_memory = (192u64 << 20).to_string();
    let mut blues = Vec::new();
    for k in 1..=3 {
        let number = format!("com.docker.compose.container-number={k}");
        let mut extra = vec!["--label", &number];
        let fail_env = format!("FAIL_WHEN_MEM={new_memory}");
        if k == 2 {
            extra.extend(["-e", &fail_env, "-e", "FAIL_MODE=exit"]);
        }
        let id = scope.run(&scope.name(&format!("web{k}")), "web", WEB_HC, &net, &extra);
        blues.push(id);
    }
    for id in &blues {
        assert!(wait_healthy(id, Duration::from_secs(60)), "{:?}", facts(id));
    }
    let cfg_dir = tempfile::tempdir().expect("cfg dir");
    let cfg = config(cfg_dir.path());
    let mut args = vec!["deploy", "web", "0.75", "192M", "--project", &project];
    args.extend(FAST);

    let watch = HealthyWatch::start(&project, "web");
    let out = tuner(&cfg, &args);
    let (fewest, polls) = watch.finish();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("replica 2 of 3") && err.contains("swapped back to 1 CPU"),
        "{}",
        show(&out)
    );
    assert!(polls >= 5, "the watch polled during the deploy ({polls})");
    assert!(
        fewest >= 3,
        "never fewer than 3 healthy replicas: saw {fewest}"
    );

    let now = containers(&project, "web", false);
    assert_eq!(now.len(), 3, "no green left behind: {now:?}");
    for id in &now {
        let f = facts(id);
        assert_eq!((f.nano_cpus, f.memory), (1_000_000_000, 128 << 20), "{f:?}");
    }
    assert!(now.contains(&blues[1]), "replica 2 kept its blue");
    assert!(now.contains(&blues[2]), "replica 3 was never touched");
    assert!(
        !now.contains(&blues[0]),
        "replica 1 was swapped, then swapped back"
    );

    // Nothing is left for `deploy rollback`: the failed rollout kept nothing.
    let out = tuner(&cfg, &["deploy", "rollback", "web", "--project", &project]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to roll back"),
        "{}",
        show(&out)
    );
}

/// Three replicas behind a real HAProxy, each its own server: each
/// replica's server is swapped in turn under steady load, with no failed
/// request, and HAProxy ends with three healthy servers, all greens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_behind_haproxy_swap_their_servers_in_turn_without_a_failed_request() {
    use support::haproxy::HaproxyServer;
    use support::load::{Load, LoadConfig};
    use tuner::deploy::router::haproxy::{HaproxyConfig, HaproxyRouter};
    use tuner::deploy::router::{Backend, Router};

    support::swap::ensure_image();
    let scope = Scope::new();
    let project = format!("{}-p", scope.prefix);
    let mut replicas = Vec::new();
    for k in 1..=3 {
        let name = scope.name(&format!("web{k}"));
        let port = support::free_publish_port();
        docker(&[
            "run",
            "-d",
            "--init",
            "--name",
            &name,
            "--cpus",
            "1",
            "--memory",
            "128m",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            "-e",
            &format!("MARKER=web{k}"),
            "--label",
            "com.docker.compose.service=web",
            "--label",
            &format!("com.docker.compose.project={project}"),
            "--label",
            &format!("com.docker.compose.container-number={k}"),
            support::swap::IMAGE,
        ]);
        replicas.push((format!("web{k}"), format!("127.0.0.1:{port}"), name));
    }
    let servers: Vec<(&str, String)> = replicas
        .iter()
        .map(|(s, a, _)| (s.as_str(), a.clone()))
        .collect();
    let haproxy = HaproxyServer::start(&servers);
    let router =
        HaproxyRouter::new(HaproxyConfig::new(haproxy.socket(), "app")).expect("HAProxy router");
    for (server, address, name) in &replicas {
        assert!(wait_healthy(name, Duration::from_secs(60)), "{name}");
        let b = Backend {
            name: server.clone(),
            address: address.clone(),
        };
        router
            .wait_healthy(&b, Duration::from_secs(30))
            .await
            .expect("blue healthy in HAProxy");
    }
    let config = support::swap::TunerConfig::haproxy(&haproxy.socket(), "app");

    let mut load = LoadConfig::new(haproxy.frontend_port, "/id");
    load.rate = 150.0;
    load.workers = 16;
    load.max_duration = Duration::from_secs(120);
    load.max_requests = 30_000;
    let load = Load::start(load);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cfg = config.path();
    let project_arg = project.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut args = vec!["deploy", "web", "0.75", "192M", "--project", &project_arg];
        args.extend(FAST);
        tuner(&cfg, &args)
    })
    .await
    .expect("tuner thread");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.finish().await;
    assert!(out.status.success(), "{}\n{}", show(&out), haproxy.log());
    assert_eq!(report.failed(), 0, "{}", report.summary());
    assert!(report.sent > 500, "{}", report.summary());

    let now = containers(&project, "web", false);
    assert_eq!(now.len(), 3, "{now:?}");
    for id in &now {
        let f = facts(id);
        assert_eq!((f.nano_cpus, f.memory), (750_000_000, 192 << 20), "{f:?}");
    }
    let live = router.servers().await.expect("servers");
    assert_eq!(live.len(), 3, "{live:?}");
    // Each replica's own server (the name haproxy.cfg gives it, so a reload
    // keeps it) now points at its green, healthy.
    for (server, blue_address, _) in &replicas {
        let s = live
            .iter()
            .find(|s| &s.name == server)
            .unwrap_or_else(|| panic!("{server} kept its name: {live:?}"));
        assert!(s.is_healthy(), "{live:?}");
        assert_ne!(
            &s.addr, blue_address,
            "{server} points at its green: {live:?}"
        );
    }
}

/// A crash in the middle of a rollout (after the first replica's swap,
/// before the rollout is closed) is undone by `tuner deploy rollback`:
/// the first replica goes back, the others were never touched.
#[test]
fn a_rollout_killed_after_the_first_replica_is_undone_by_rollback() {
    let scope = Scope::new();
    let net = scope.network();
    let project = format!("{}-p", scope.prefix);
    let mut blues = Vec::new();
    for k in 1..=3 {
        let number = format!("com.docker.compose.container-number={k}");
        let id = scope.run(
            &scope.name(&format!("web{k}")),
            "web",
            WEB_HC,
            &net,
            &["--label", &number],
        );
        blues.push(id);
    }
    for id in &blues {
        assert!(wait_healthy(id, Duration::from_secs(60)), "{:?}", facts(id));
    }
    let cfg_dir = tempfile::tempdir().expect("cfg dir");
    let cfg = config(cfg_dir.path());
    let mut args = vec!["deploy", "web", "0.75", "192M", "--project", &project];
    args.extend(FAST);
    // Killed right after the first replica's swap read its limits back.
    let out = Command::new(support::tuner_bin())
        .arg("--config")
        .arg(&cfg)
        .args(&args)
        .env("TUNER_DEPLOY_CRASH_AFTER", "verify")
        .output()
        .expect("run tuner");
    assert!(!out.status.success(), "{}", show(&out));
    let sizes = |ids: &[String]| -> Vec<(i64, i64)> {
        ids.iter()
            .map(|id| {
                let f = facts(id);
                (f.nano_cpus, f.memory)
            })
            .collect()
    };
    let now = containers(&project, "web", false);
    assert_eq!(now.len(), 3, "{now:?}");
    let mut seen = sizes(&now);
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (750_000_000, 192 << 20),
            (1_000_000_000, 128 << 20),
            (1_000_000_000, 128 << 20)
        ],
        "the crash left one replica re-sized"
    );

    let mut back = vec!["deploy", "rollback", "web", "--project", &project];
    back.extend(FAST);
    let watch = HealthyWatch::start(&project, "web");
    let out = tuner(&cfg, &back);
    let (fewest, _) = watch.finish();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted rollout"),
        "{}",
        show(&out)
    );
    assert!(
        fewest >= 3,
        "never fewer than 3 healthy replicas: saw {fewest}"
    );
    let now = containers(&project, "web", false);
    assert_eq!(now.len(), 3, "{now:?}");
    assert!(
        sizes(&now).iter().all(|s| *s == (1_000_000_000, 128 << 20)),
        "{:?}",
        sizes(&now)
    );
    assert!(now.contains(&blues[1]) && now.contains(&blues[2]));
    // Nothing is open any more: a second rollback has nothing to do.
    let out = tuner(&cfg, &back);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}
