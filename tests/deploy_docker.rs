//! `DockerRuntime`, the one `Runtime` the deploy, tune and health commands
//! share, against the real engine: connect errors, finding and inspecting,
//! live limit updates through the container's own CPU knob, usage and OOM
//! events, restart, copy-in, and a clone created, started, renamed and
//! removed the way a swap does it.

mod support;

use std::time::Duration;

use support::docker::{facts, Scope, WEB_HC, WEB_NOHC};
use tuner::runtime::{CpuKnob, DockerRuntime, FileIn, Health, Runtime, ServiceQuery};

async fn client() -> DockerRuntime {
    DockerRuntime::connect(None)
        .await
        .expect("Docker engine reachable")
}

#[tokio::test]
async fn unreachable_engine_names_the_socket() {
    let err = DockerRuntime::connect(Some("unix:///nonexistent/tuner-test.sock"))
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
    let before = docker.inspect(&id).await.expect("inspect").limits;
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
    let before = docker.inspect(&out).await.expect("inspect").limits;
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
    let usage = docker.usage(&id, None).await.expect("stats").memory;
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

/// A config with no `docker.host` unless `host` is given, for the binary.
fn config_with_docker_host(host: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tuner-test-runtime-cfg-")
        .tempdir()
        .expect("temp dir");
    let docker = host
        .map(|h| format!("docker:\n  host: {h}\n"))
        .unwrap_or_default();
    let text = format!(
        "prometheus:\n  url: http://127.0.0.1:9\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\nprofile: development\npaths:\n  state_dir: state\nmetrics:\n  io_wait:\n    query: up\n    unit: percent\n    window: 1m\nprofiles:\n  development:\n    io_wait: \"< 25%\"\n{docker}"
    );
    std::fs::write(dir.path().join("tuner.yaml"), text).expect("write config");
    dir
}

/// `deploy` and `status --health` reach the engine the same way: the
/// config's `docker.host`, overridden by `DOCKER_HOST` (README).
#[test]
fn every_command_connects_through_docker_host_and_the_config() {
    let run = |dir: &tempfile::TempDir, env: Option<&str>, args: &[&str]| {
        let mut cmd = std::process::Command::new(support::tuner_bin());
        cmd.arg("--config")
            .arg(dir.path().join("tuner.yaml"))
            .args(args)
            .env_remove("DOCKER_HOST");
        if let Some(host) = env {
            cmd.env("DOCKER_HOST", host);
        }
        let out = cmd.output().expect("run tuner");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let commands = [
        &["deploy", "status", "web"][..],
        &["--output", "json", "status", "--health"][..],
    ];
    let env = "unix:///nonexistent/tuner-env.sock";
    let from_config = config_with_docker_host(Some("unix:///nonexistent/tuner-cfg.sock"));
    let no_host = config_with_docker_host(None);
    for args in commands {
        let text = run(&from_config, None, args);
        assert!(
            text.contains("unix:///nonexistent/tuner-cfg.sock"),
            "{args:?}: {text}"
        );
        for dir in [&from_config, &no_host] {
            let text = run(dir, Some(env), args);
            assert!(
                text.contains(env) && !text.contains("tuner-cfg"),
                "{args:?}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn finds_and_inspects_a_service_in_tuners_terms() {
    let scope = Scope::new();
    let net = scope.network();
    let service = scope.name("find");
    let id = scope.run(
        &scope.name("find-1"),
        &service,
        WEB_HC,
        &net,
        &[
            "-p",
            "127.0.0.1::8080",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "7",
        ],
    );
    let rt = client().await;
    let engine = rt.engine().await.expect("engine");
    assert!(engine.cpus >= 1 && !engine.version.is_empty(), "{engine:?}");
    let found = rt
        .find_one(&ServiceQuery {
            service: service.clone(),
            project: Some(format!("{}-p", scope.prefix)),
        })
        .await
        .expect("find by Compose labels");
    assert_eq!(
        (found.id.as_str(), found.state.as_str()),
        (id.as_str(), "running")
    );
    let err = rt
        .find_one(&ServiceQuery {
            service: scope.name("nothing"),
            project: None,
        })
        .await
        .expect_err("no such service");
    assert!(err.to_string().contains("no container found"), "{err}");

    let c = rt.inspect(&found.name).await.expect("inspect");
    assert_eq!((c.image.as_str(), c.running), (WEB_HC, true));
    assert!(c.has_healthcheck);
    assert_eq!(c.labels["com.docker.compose.service"], service);
    assert_eq!(c.exposed, vec!["8080/tcp".to_string()]);
    assert_eq!(c.published.len(), 1, "{:?}", c.published);
    assert_eq!(
        (
            c.published[0].port.as_str(),
            c.published[0].host_ip.as_str()
        ),
        ("8080/tcp", "127.0.0.1")
    );
    assert!(c.published[0].host_port.parse::<u16>().is_ok());
    assert!(c
        .networks
        .iter()
        .any(|n| n.network == net && !n.ip.is_empty()));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(c.stop_timeout, Some(7));
    assert_eq!(c.limits.memory, 128 << 20);
    assert!(rt
        .try_inspect(&scope.name("gone"))
        .await
        .expect("a missing container is not an error")
        .is_none());
}

#[tokio::test]
async fn a_clone_is_created_started_renamed_and_removed_as_a_swap_does() {
    let scope = Scope::new();
    let net = scope.network();
    let blue_name = scope.name("web");
    let port = support::free_publish_port();
    let blue = scope.run(
        &blue_name,
        &scope.name("svc"),
        WEB_HC,
        &net,
        &["-p", &format!("127.0.0.1:{port}:8080")],
    );
    let rt = client().await;
    let old = rt.inspect(&blue).await.expect("inspect blue").limits;
    let new = old.resized(0.5, 96 << 20);
    let spec = rt
        .clone_spec(&blue, &new, &[("tuner.test".into(), "green".into())])
        .await
        .expect("clone spec");
    assert_eq!(
        spec.moved_ports,
        vec![format!("8080/tcp -> 127.0.0.1:{port}")]
    );
    let green_at = spec.address.clone().expect("green's port is chosen now");
    assert!(green_at.starts_with("127.0.0.1:") && !green_at.ends_with(&format!(":{port}")));

    let green_name = scope.name("web-green");
    let green = rt.create_clone(&green_name, &spec).await.expect("create");
    let created = rt.inspect(&green).await.expect("inspect green");
    assert_eq!(
        (created.state.as_str(), created.running),
        ("created", false)
    );
    assert!(created.limits.same_size(&new), "{:?}", created.limits);
    assert_eq!(created.labels["tuner.test"], "green");
    assert_eq!(
        created.labels["com.docker.compose.service"],
        scope.name("svc")
    );
    rt.start(&green).await.expect("start");
    assert!(
        support::wait_until(Duration::from_secs(30), || facts(&green).health
            == "healthy"),
        "green never became healthy"
    );
    let started = rt.inspect(&green).await.expect("inspect green");
    assert_eq!(started.health, Health::Healthy);
    assert_eq!(
        format!("127.0.0.1:{}", started.published[0].host_port),
        green_at
    );

    let err = rt
        .rename(&green, &blue_name)
        .await
        .expect_err("the name is blue's");
    assert!(err.to_string().contains("rename container"), "{err}");
    rt.stop(&blue, Some(Duration::from_secs(1)))
        .await
        .expect("stop");
    rt.stop(&blue, Some(Duration::from_secs(1)))
        .await
        .expect("stopping a stopped container is fine");
    assert!(!rt.inspect(&blue).await.expect("inspect").running);
    rt.remove(&blue, false).await.expect("remove stopped blue");
    rt.rename(&green, &blue_name).await.expect("rename");
    assert_eq!(rt.inspect(&blue_name).await.expect("by name").id, green);
    rt.remove(&green, true).await.expect("remove");
    rt.remove(&green, true)
        .await
        .expect("removing a removed container is fine");
}

#[tokio::test]
async fn copy_in_writes_a_file_into_a_stopped_container() {
    let scope = Scope::new();
    let net = scope.network();
    let id = scope.run(
        &scope.name("copy"),
        &scope.name("copy"),
        WEB_NOHC,
        &net,
        &[],
    );
    let rt = client().await;
    rt.stop(&id, Some(Duration::from_secs(1)))
        .await
        .expect("stop");
    let file = FileIn {
        name: "tuner.conf",
        contents: b"limit = 1\n",
        mode: 0o640,
        uid: 65534,
        gid: 65534,
    };
    rt.copy_in(&id, "/tmp", file).await.expect("copy in");
    rt.start(&id).await.expect("start");
    assert_eq!(
        support::docker::docker(&["exec", &id, "cat", "/tmp/tuner.conf"]),
        "limit = 1"
    );
    let listing = support::docker::docker(&["exec", &id, "ls", "-ln", "/tmp/tuner.conf"]);
    let fields: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(
        (fields[0], fields[2], fields[3]),
        ("-rw-r-----", "65534", "65534"),
        "{listing}"
    );
    let err = rt
        .copy_in(
            &id,
            "/tmp",
            FileIn {
                name: "../x",
                ..file
            },
        )
        .await
        .expect_err("a path is not a file name");
    assert!(err.to_string().contains("../x"), "{err}");
}

#[tokio::test]
async fn usage_reads_cpu_memory_and_oom_kills() {
    let scope = Scope::new();
    let net = scope.network();
    let id = scope.run(
        &scope.name("oom"),
        &scope.name("oom"),
        WEB_NOHC,
        &net,
        &["--memory", "24m", "--memory-swap", "24m"],
    );
    let rt = client().await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(2);
    let calm = rt.usage(&id, Some(since)).await.expect("usage");
    assert_eq!(calm.oom_events, Some(0));
    assert_eq!(calm.memory.limit, 24 << 20);
    assert!(calm.cpu_seconds > 0.0, "{calm:?}");
    assert!((chrono::Utc::now() - calm.read_at).num_seconds().abs() < 60);

    // A shell that reads an endless `yes` into a variable grows until the
    // kernel kills it inside the container's cgroup (the shell drops NUL
    // bytes, so /dev/zero would never fill it).
    let out = support::docker::docker_try(&["exec", &id, "sh", "-c", "x=$(/bin/busybox yes)"]);
    assert!(!out.status.success(), "the hog was not killed");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let u = rt.usage(&id, Some(since)).await.expect("usage");
        if u.oom_events.unwrap_or(0) >= 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no OOM event: {u:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        rt.usage(&id, None).await.expect("usage").oom_events,
        None,
        "not asked"
    );
}

/// Green's health is proved by running its own healthcheck through `exec`
/// (what a deploy does every 100 ms): the command comes from inspect as
/// Docker would run it, passes on a serving container, fails with its exit
/// code and output when the checked file is gone, and a container without
/// a healthcheck has none to run.
#[tokio::test]
async fn its_own_healthcheck_runs_through_exec() {
    let scope = Scope::new();
    let net = scope.network();
    let id = scope.run(
        &scope.name("exec-1"),
        &scope.name("exec"),
        WEB_HC,
        &net,
        &[],
    );
    let plain = scope.run(
        &scope.name("exec-2"),
        &scope.name("exec2"),
        WEB_NOHC,
        &net,
        &[],
    );
    let rt = client().await;
    let live = rt.inspect(&id).await.expect("inspect");
    let check = live.healthcheck.expect("a healthcheck to run");
    assert_eq!(
        check.argv,
        [
            "/bin/wget",
            "-q",
            "-O",
            "/dev/null",
            "http://127.0.0.1:8080/healthz"
        ]
    );
    assert_eq!(check.timeout, Duration::from_secs(2));
    assert!(rt.inspect(&plain).await.unwrap().healthcheck.is_none());

    let mut last = None;
    for _ in 0..100 {
        let run = rt.exec(&id, &check.argv, check.timeout).await.unwrap();
        if run.exit_code == 0 {
            break;
        }
        last = Some(run);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = rt.exec(&id, &check.argv, check.timeout).await.unwrap();
    assert_eq!(run.exit_code, 0, "{run:?} (before: {last:?})");

    // The same check against a path httpd does not serve: its exit code
    // and what it printed, as Docker would record them.
    let mut wrong = check.argv.clone();
    wrong[4] = "http://127.0.0.1:8080/nope".into();
    let failed = rt.exec(&id, &wrong, check.timeout).await.unwrap();
    assert_ne!(failed.exit_code, 0, "{failed:?}");
    assert!(failed.output.contains("404"), "{failed:?}");

    rt.stop(&id, Some(Duration::from_secs(1))).await.unwrap();
    let err = rt
        .exec(&id, &check.argv, check.timeout)
        .await
        .expect_err("no exec in a stopped container");
    assert!(
        err.to_string().contains("run a command in container"),
        "{err}"
    );
}
