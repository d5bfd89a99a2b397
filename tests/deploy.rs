//! `tuner deploy` against the real Docker engine, run as a user would run
//! the binary. Every container and network is named
//! `tuner-test-deploy-<pid>-<n>-…` and removed by `Scope` on drop.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use support::docker::{
    docker, facts, service_containers, wait_healthy, Scope, WEB_HC, WEB_NOHC, WEB_SLOW,
};

/// A temp dir with a minimal valid tuner.yaml whose state lives beside it.
struct Cfg {
    dir: tempfile::TempDir,
}

impl Cfg {
    fn new(deploy_section: &str) -> Cfg {
        let dir = tempfile::Builder::new()
            .prefix("tuner-test-deploy-cfg-")
            .tempdir()
            .expect("temp dir");
        let text = format!(
            "prometheus:\n  url: http://127.0.0.1:9\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\nprofile: development\npaths:\n  state_dir: state\nmetrics:\n  io_wait:\n    query: up\n    unit: percent\n    window: 1m\nprofiles:\n  development:\n    io_wait: \"< 25%\"\ndeploy:\n  metrics_textfile_dir: textfile\n{deploy_section}"
        );
        std::fs::write(dir.path().join("tuner.yaml"), text).expect("write config");
        Cfg { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("tuner.yaml")
    }

    fn tuner(&self, args: &[&str]) -> Output {
        self.tuner_env(args, &[])
    }

    fn tuner_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(support::tuner_bin());
        cmd.arg("--config")
            .arg(self.path())
            .args(args)
            .env_remove("TUNER_DEPLOY_CRASH_AFTER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run tuner")
    }

    fn textfile(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("textfile/tuner_deploy.prom"))
            .unwrap_or_default()
    }
}

/// A deployed container's facts once Docker's own healthcheck has run: the
/// deploy returns as soon as green's healthcheck passed through exec, which
/// may be before Docker's first scheduled run marks it `healthy`.
fn settled(id: &str) -> support::docker::Facts {
    support::wait_until(Duration::from_secs(15), || facts(id).health == "healthy");
    facts(id)
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fast() -> [&'static str; 6] {
    [
        "--health-timeout",
        "20s",
        "--health-interval",
        "1s",
        "--drain",
        "1s",
    ]
}

/// A blue container of service `svc` on its own network, healthy.
fn blue(scope: &Scope, svc: &str, image: &str, extra: &[&str]) -> String {
    let net = scope.network();
    let id = scope.run(&scope.name(svc), svc, image, &net, extra);
    if image != WEB_NOHC {
        assert!(
            wait_healthy(&id, Duration::from_secs(30)),
            "blue never healthy: {:?}",
            facts(&id)
        );
    }
    id
}

fn deploy_args<'a>(svc: &'a str, cpus: &'a str, mem: &'a str) -> Vec<&'a str> {
    let mut v = vec!["deploy", svc, cpus, mem];
    v.extend(fast());
    v
}

#[test]
fn blue_green_success_keeps_name_and_reads_limits_back() {
    let scope = Scope::new();
    let svc = scope.name("ok");
    let blue_id = blue(&scope, &svc, WEB_HC, &[]);
    let before = facts(&blue_id);
    let cfg = Cfg::new("");
    let out = cfg.tuner(&deploy_args(&svc, "0.5", "96M"));
    assert!(out.status.success(), "{}", show(&out));
    let ids = service_containers(&svc);
    assert_eq!(ids.len(), 1, "exactly one container: {ids:?}");
    let after = settled(&ids[0]);
    assert_ne!(after.id, before.id, "a new container");
    assert_eq!(after.name, before.name, "blue's name kept");
    assert!(after.running && after.health == "healthy", "{after:?}");
    assert_eq!(after.nano_cpus, 500_000_000);
    assert_eq!(after.memory, 96 << 20);
    assert_eq!(after.memory_swap, 192 << 20, "swap ratio kept (2x)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Deployed") && stdout.contains("0.5 CPU, 96M"),
        "{stdout}"
    );
    assert!(
        cfg.textfile().contains(&format!(
            "tuner_deploy_successful_total{{service=\"{svc}\"}} 1"
        )),
        "{}",
        cfg.textfile()
    );

    let status = cfg.tuner(&["--output", "json", "deploy", "status", &svc]);
    assert!(status.status.success(), "{}", show(&status));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json status");
    assert_eq!(v["containers"].as_array().map(|a| a.len()), Some(1));
    assert_eq!(v["deploys"][0]["outcome"], "succeeded");
}

/// Blue as it was, and nothing else of the service left behind.
fn assert_blue_untouched(svc: &str, before: &support::docker::Facts) {
    let ids = service_containers(svc);
    assert_eq!(ids, vec![before.id.clone()], "only blue remains");
    let now = facts(&before.id);
    assert_eq!(&now, before, "blue unchanged");
}

fn failing_green(image: &str, mode: &str, timeout: &str, expect: &str) {
    let scope = Scope::new();
    let svc = scope.name("fail");
    // The test image misbehaves when its memory limit is exactly 96M: green only.
    let env_mem = format!("FAIL_WHEN_MEM={}", 96u64 << 20);
    let env_mode = format!("FAIL_MODE={mode}");
    let blue_id = blue(&scope, &svc, image, &["-e", &env_mem, "-e", &env_mode]);
    let before = facts(&blue_id);
    let cfg = Cfg::new("");
    let out = cfg.tuner(&[
        "deploy",
        &svc,
        "0.5",
        "96M",
        "--health-timeout",
        timeout,
        "--health-interval",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed in phase health") && err.contains(expect),
        "{}",
        show(&out)
    );
    assert!(err.contains("left as it was"), "{}", show(&out));
    assert_blue_untouched(&svc, &before);
    assert!(
        cfg.textfile()
            .contains(&format!("tuner_deploy_failed_total{{service=\"{svc}\"}} 1")),
        "{}",
        cfg.textfile()
    );
}

#[test]
fn green_never_healthy_times_out_and_blue_is_untouched() {
    failing_green(WEB_SLOW, "unhealthy", "4s", "not healthy in time");
}

#[test]
fn green_unhealthy_fails_and_blue_is_untouched() {
    failing_green(WEB_HC, "unhealthy", "30s", "reported unhealthy");
}

#[test]
fn green_that_fails_to_start_fails_and_blue_is_untouched() {
    failing_green(WEB_HC, "exit", "30s", "exited with code 3");
}

#[test]
fn stateful_services_are_refused_but_in_place_works() {
    let scope = Scope::new();
    let svc = scope.name("db");
    let blue_id = blue(&scope, &svc, WEB_HC, &[]);
    let before = facts(&blue_id);
    let cfg = Cfg::new(&format!("  stateful: [\"{svc}\"]\n"));
    let out = cfg.tuner(&deploy_args(&svc, "0.5", "96M"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stateful")
            && err.contains("--strategy in-place")
            && err.contains("maintenance window"),
        "{err}"
    );
    assert_blue_untouched(&svc, &before);

    let out = cfg.tuner(&["deploy", &svc, "0.5", "96M", "--strategy", "in-place"]);
    assert!(out.status.success(), "{}", show(&out));
    let after = facts(&blue_id);
    assert_eq!(after.id, before.id, "no new container");
    assert!(after.running);
    assert_eq!(
        (after.nano_cpus, after.memory, after.memory_swap),
        (500_000_000, 96 << 20, 192 << 20)
    );
}

#[test]
fn named_volume_is_stateful_unless_marked_stateless() {
    let scope = Scope::new();
    let svc = scope.name("vol");
    let volume = format!("{}:/data", scope.name("data"));
    let blue_id = blue(&scope, &svc, WEB_HC, &["-v", &volume]);
    let before = facts(&blue_id);
    let out = Cfg::new("").tuner(&deploy_args(&svc, "0.5", "96M"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("named volume"),
        "{}",
        show(&out)
    );
    assert_blue_untouched(&svc, &before);
    let mut args = deploy_args(&svc, "0.5", "96M");
    args.push("--dry-run");
    let out = Cfg::new(&format!("  stateless: [\"{svc}\"]\n")).tuner(&args);
    assert!(out.status.success(), "{}", show(&out));
}

#[test]
fn in_place_refuses_memory_below_usage() {
    let scope = Scope::new();
    let svc = scope.name("full");
    let blue_id = blue(&scope, &svc, WEB_HC, &[]);
    docker(&[
        "exec",
        &blue_id,
        "/bin/busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/shm/fill",
        "bs=1M",
        "count=60",
    ]);
    let out = Cfg::new("").tuner(&["deploy", &svc, "0.5", "64M", "--strategy", "in-place"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("below its current usage"),
        "{}",
        show(&out)
    );
    assert_eq!(facts(&blue_id).memory, 128 << 20);
}

#[test]
fn ambiguous_and_unknown_services_list_what_was_found() {
    let scope = Scope::new();
    let svc = scope.name("twin");
    let net = scope.network();
    scope.run(&scope.name("twin-a"), &svc, WEB_HC, &net, &[]);
    // The same service name in another project: not a replica of twin-a
    // (two containers of one service and project are replicas, re-sized
    // one at a time), so without --project it is ambiguous.
    let other = format!("com.docker.compose.project={}-q", scope.prefix);
    scope.run(
        &scope.name("twin-b"),
        &svc,
        WEB_HC,
        &net,
        &["--label", &other],
    );
    let cfg = Cfg::new("");
    let out = cfg.tuner(&deploy_args(&svc, "0.5", "96M"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("matches 2 containers")
            && err.contains(&scope.name("twin-a"))
            && err.contains(&scope.name("twin-b")),
        "{err}"
    );
    let out = cfg.tuner(&deploy_args(&scope.name("nothing"), "0.5", "96M"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no container found") && err.contains(&scope.name("twin-a")),
        "{err}"
    );
}

#[test]
fn bad_cpu_and_memory_strings_show_accepted_forms() {
    let cfg = Cfg::new("");
    for (cpus, mem) in [
        ("lots", "768M"),
        ("0.05", "768M"),
        ("17", "768M"),
        ("1", "768X"),
        ("1", "32M"),
        ("1", "64G"),
        ("1", "1.5"),
    ] {
        let out = cfg.tuner(&["deploy", "grafana", cpus, mem]);
        assert_eq!(out.status.code(), Some(2), "{cpus} {mem}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("accepted:"), "{cpus} {mem}: {err}");
    }
    let out = cfg.tuner(&["deploy", "grafana", "1", "1G", "--health-timeout", "10"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn cpus_above_the_host_are_refused() {
    let scope = Scope::new();
    let svc = scope.name("cpus");
    blue(&scope, &svc, WEB_HC, &[]);
    let out = Cfg::new("").tuner(&deploy_args(&svc, "16", "96M"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CPUs of this Docker host"),
        "{}",
        show(&out)
    );
}

#[test]
fn dry_run_changes_nothing_and_prints_the_whole_plan() {
    let scope = Scope::new();
    let svc = scope.name("dry");
    let blue_id = blue(&scope, &svc, WEB_HC, &["-p", "127.0.0.1::8080"]);
    let before = facts(&blue_id);
    // Only this test's names: other tests create containers in parallel.
    let ours = format!("name={svc}");
    let all_before = docker(&["ps", "-aq", "--no-trunc", "--filter", &ours]);
    let cfg = Cfg::new("");
    let mut args = deploy_args(&svc, "1.5", "768M");
    args.push("--dry-run");
    let out = cfg.tuner(&args);
    assert!(out.status.success(), "{}", show(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    for want in [
        "1 CPU, 128M  ->  1.5 CPU, 768M",
        "HostConfig.NanoCpus",
        "create-green",
        "health",
        "switch",
        "drain",
        "stop-blue",
        "remove-blue",
        "rename",
        "verify",
        "Dry run",
    ] {
        assert!(plan.contains(want), "missing {want:?} in\n{plan}");
    }
    assert_eq!(facts(&blue_id), before);
    assert_eq!(
        docker(&["ps", "-aq", "--no-trunc", "--filter", &ours]),
        all_before,
        "no container created or removed"
    );
    assert!(
        !cfg.dir.path().join("state/deploy").exists(),
        "nothing journaled"
    );

    let mut args = vec!["--output", "json"];
    args.extend(deploy_args(&svc, "1.5", "768M"));
    args.push("--dry-run");
    let out = cfg.tuner(&args);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["plan"]["new"]["memory"], 768u64 << 20);
    assert_eq!(v["plan"]["steps"].as_array().map(|s| s.len()), Some(10));
    assert_eq!(facts(&blue_id), before);
}

#[test]
fn http_probe_from_labels_or_refusal_without_any_probe() {
    let scope = Scope::new();
    let svc = scope.name("nohc");
    let blue_id = blue(&scope, &svc, WEB_NOHC, &[]);
    let before = facts(&blue_id);
    let cfg = Cfg::new("");
    let out = cfg.tuner(&deploy_args(&svc, "0.5", "96M"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no health check"),
        "{}",
        show(&out)
    );
    assert_blue_untouched(&svc, &before);

    let svc2 = scope.name("nohc-labelled");
    let blue2 = blue(
        &scope,
        &svc2,
        WEB_NOHC,
        &[
            "--label",
            "tuner.health.path=/healthz",
            "--label",
            "tuner.health.port=8080",
        ],
    );
    let name = facts(&blue2).name;
    let out = cfg.tuner(&deploy_args(&svc2, "0.5", "96M"));
    assert!(out.status.success(), "{}", show(&out));
    let ids = service_containers(&svc2);
    assert_eq!(ids.len(), 1);
    let after = facts(&ids[0]);
    assert_eq!(
        (after.name.as_str(), after.memory),
        (name.as_str(), 96 << 20)
    );
}

/// Aborts a deploy right after `phase`, then checks that `tuner deploy
/// status` leaves exactly one healthy container with blue's name and either
/// the old or the new limits (the new ones once blue was stopped).
fn crash_then_recover(phases: &[&str]) {
    for phase in phases {
        let scope = Scope::new();
        let svc = scope.name("crash");
        let blue_id = blue(&scope, &svc, WEB_HC, &[]);
        let before = facts(&blue_id);
        let cfg = Cfg::new("");
        let out = cfg.tuner_env(
            &deploy_args(&svc, "0.5", "96M"),
            &[("TUNER_DEPLOY_CRASH_AFTER", phase)],
        );
        assert!(
            !out.status.success(),
            "{phase}: the hook did not fire: {}",
            show(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("aborting as asked"),
            "{phase}: {}",
            show(&out)
        );
        let status = cfg.tuner(&["deploy", "status", &svc]);
        assert!(status.status.success(), "{phase}: {}", show(&status));
        assert!(
            String::from_utf8_lossy(&status.stdout).contains("recovered the interrupted deploy"),
            "{phase}: {}",
            show(&status)
        );
        let ids = service_containers(&svc);
        assert_eq!(ids.len(), 1, "{phase}: exactly one container: {ids:?}");
        let f = settled(&ids[0]);
        assert!(f.running && f.health == "healthy", "{phase}: {f:?}");
        assert_eq!(f.name, before.name, "{phase}");
        let forward = matches!(
            *phase,
            "journal-stop-blue" | "stop-blue" | "remove-blue" | "rename" | "persist"
        );
        if forward {
            assert_eq!(f.memory, 96 << 20, "{phase}: finished with the new limits");
        } else {
            assert_eq!(f, before, "{phase}: undone, blue as it was");
        }
        // Idempotent: a second status recovers nothing and changes nothing.
        let again = cfg.tuner(&["deploy", "status", &svc]);
        assert!(
            again.status.success()
                && !String::from_utf8_lossy(&again.stdout).contains("recovered the interrupted"),
            "{phase}: {}",
            show(&again)
        );
        assert_eq!(facts(&ids[0]), f, "{phase}");
    }
}

#[test]
fn kill_during_early_phases_is_undone_by_status() {
    crash_then_recover(&["journal-prepare", "prepare", "create-green", "health"]);
}

#[test]
fn kill_during_switch_phases_is_undone_by_status() {
    crash_then_recover(&["switch", "drain"]);
}

#[test]
fn kill_after_blue_stopped_is_finished_by_status() {
    crash_then_recover(&[
        "journal-stop-blue",
        "stop-blue",
        "remove-blue",
        "rename",
        "persist",
    ]);
}

/// What the JSON events on stderr said was waited for; each wait ended.
fn recovery_waits(out: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let waits: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "waiting")
        .filter_map(|e| e["what"].as_str().map(str::to_string))
        .collect();
    let finished = events.iter().filter(|e| e["event"] == "finished").count();
    assert_eq!(waits.len(), finished, "every wait ends:\n{stderr}");
    waits
}

#[test]
fn recovery_that_finishes_a_swap_reports_its_waits_as_json_events() {
    let scope = Scope::new();
    let svc = scope.name("waits");
    blue(&scope, &svc, WEB_HC, &[]);
    let cfg = Cfg::new("");
    let out = cfg.tuner_env(
        &deploy_args(&svc, "0.5", "96M"),
        &[("TUNER_DEPLOY_CRASH_AFTER", "stop-blue")],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let status = cfg.tuner(&["--output", "json", "deploy", "status", &svc]);
    assert!(status.status.success(), "{}", show(&status));
    let waits = recovery_waits(&status);
    assert!(
        waits
            .iter()
            .any(|w| w.contains("until green") && w.contains("serves")),
        "{waits:?}\n{}",
        show(&status)
    );
    let ids = service_containers(&svc);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(facts(&ids[0]).memory, 96 << 20, "finished");
}

#[test]
fn next_deploy_recovers_an_interrupted_one_first() {
    let scope = Scope::new();
    let svc = scope.name("redeploy");
    blue(&scope, &svc, WEB_HC, &[]);
    let cfg = Cfg::new("");
    let out = cfg.tuner_env(
        &deploy_args(&svc, "0.5", "96M"),
        &[("TUNER_DEPLOY_CRASH_AFTER", "health")],
    );
    assert!(!out.status.success(), "{}", show(&out));
    let mut args = vec!["--output", "json"];
    args.extend(deploy_args(&svc, "0.75", "112M"));
    let out = cfg.tuner(&args);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("recovered the interrupted deploy"),
        "{}",
        show(&out)
    );
    // Undone (blue was still running): the wait for blue back in the
    // router is an event, as every wait of the recovery.
    assert!(
        recovery_waits(&out)
            .iter()
            .any(|w| w.contains(" sees blue ")),
        "{}",
        show(&out)
    );
    let ids = service_containers(&svc);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(facts(&ids[0]).memory, 112 << 20);
}

fn compose(dir: &std::path::Path, project: &str, args: &[&str]) -> String {
    support::docker::sh(
        Command::new("docker-compose")
            .current_dir(dir)
            .arg("-p")
            .arg(project)
            .args(args),
    )
}

#[test]
fn compose_service_keeps_new_limits_across_up_and_rollback_restores_the_override() {
    let mut scope = Scope::new();
    let project = scope.prefix.clone();
    let dir = tempfile::Builder::new()
        .prefix("tuner-test-deploy-compose-")
        .tempdir()
        .expect("temp dir");
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!("version: \"2.4\"\nservices:\n  web:\n    image: {WEB_HC}\n    init: true\n    cpus: 0.5\n    mem_limit: 128m\n"),
    )
    .expect("compose file");
    let original_override =
        "version: '2.4'\nservices:\n  web:\n    environment:\n      KEEP: \"1\"\n";
    std::fs::write(
        dir.path().join("docker-compose.override.yml"),
        original_override,
    )
    .expect("override");
    scope.track_compose(dir.path(), &project);
    compose(dir.path(), &project, &["up", "-d"]);
    let first = compose(dir.path(), &project, &["ps", "-q", "web"]);
    assert!(
        wait_healthy(&first, Duration::from_secs(30)),
        "{:?}",
        facts(&first)
    );

    let cfg = Cfg::new("");
    let mut args = deploy_args("web", "0.75", "192M");
    args.extend(["--project", project.as_str()]);
    let out = cfg.tuner(&args);
    assert!(out.status.success(), "{}", show(&out));
    let ids: Vec<String> = compose(dir.path(), &project, &["ps", "-q", "web"])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "docker-compose ps shows one container: {ids:?}"
    );
    let green = settled(&ids[0]);
    assert!(green.running && green.health == "healthy", "{green:?}");
    assert_eq!((green.nano_cpus, green.memory), (750_000_000, 192 << 20));
    let written =
        std::fs::read_to_string(dir.path().join("docker-compose.override.yml")).expect("override");
    assert!(
        written.contains("cpus: 0.75")
            && written.contains("mem_limit: 192m")
            && written.contains("KEEP"),
        "{written}"
    );

    compose(dir.path(), &project, &["up", "-d"]);
    let ids: Vec<String> = compose(dir.path(), &project, &["ps", "-q", "web"])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let after_up = facts(&ids[0]);
    assert_eq!(
        (after_up.nano_cpus, after_up.memory),
        (750_000_000, 192 << 20),
        "up -d keeps the new limits"
    );
    assert_eq!(
        after_up.id, green.id,
        "green's config hash matches the files: up -d leaves it alone"
    );

    let mut args = vec!["deploy", "rollback", "web", "--project", project.as_str()];
    args.extend(fast());
    let out = cfg.tuner(&args);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("docker-compose.override.yml")).expect("override"),
        original_override,
        "override restored"
    );
    compose(dir.path(), &project, &["up", "-d"]);
    let ids: Vec<String> = compose(dir.path(), &project, &["ps", "-q", "web"])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let back = facts(&ids[0]);
    assert_eq!(
        (back.nano_cpus, back.memory),
        (500_000_000, 128 << 20),
        "rolled back and kept by up -d"
    );
    let status = cfg.tuner(&[
        "--output",
        "json",
        "deploy",
        "status",
        "web",
        "--project",
        &project,
    ]);
    let v: serde_json::Value =
        serde_json::from_slice(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&status)));
    assert_eq!(v["deploys"][0]["record"]["kind"], "rollback");
    assert!(
        cfg.textfile()
            .contains("tuner_deploy_rollbacks_total{service=\"web\"} 1"),
        "{}",
        cfg.textfile()
    );

    // kill -9 (the crash hook) mid-deploy of the Compose service, then the
    // next command recovers it: before the switch it is undone and the
    // override file is the user's, byte for byte; once the override was
    // written it is finished, the file carrying the new limits and the
    // user's keys, and `up -d` agrees with it.
    let override_path = dir.path().join("docker-compose.override.yml");
    let current = || -> Vec<String> {
        compose(dir.path(), &project, &["ps", "-q", "web"])
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    for (phase, forward) in [("health", false), ("persist", true)] {
        let mut args = deploy_args("web", "0.25", "160M");
        args.extend(["--project", project.as_str()]);
        let out = cfg.tuner_env(&args, &[("TUNER_DEPLOY_CRASH_AFTER", phase)]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("aborting as asked"),
            "{phase}: {}",
            show(&out)
        );
        let status = cfg.tuner(&["deploy", "status", "web", "--project", &project]);
        assert!(status.status.success(), "{phase}: {}", show(&status));
        let ids = current();
        assert_eq!(ids.len(), 1, "{phase}: {ids:?}");
        let f = facts(&ids[0]);
        let written = std::fs::read_to_string(&override_path).expect("override");
        if forward {
            assert_eq!((f.nano_cpus, f.memory), (250_000_000, 160 << 20), "{phase}");
            assert!(
                written.contains("cpus: 0.25") && written.contains("KEEP"),
                "{phase}: {written}"
            );
            compose(dir.path(), &project, &["up", "-d"]);
            assert_eq!(
                current(),
                ids,
                "{phase}: up -d leaves the recovered service alone"
            );
        } else {
            assert_eq!((f.nano_cpus, f.memory), (500_000_000, 128 << 20), "{phase}");
            assert_eq!(written, original_override, "{phase}: override restored");
        }
    }
}

/// A service publishing a fixed host port with router `none`: a blue-green
/// swap would leave the published port dead (green answers elsewhere), so it
/// is refused with nothing changed and the way out named; in-place resizes
/// the same container, whose port keeps answering.
#[test]
fn fixed_port_without_router_refuses_blue_green_and_in_place_keeps_the_port() {
    let mut scope = Scope::new();
    let project = scope.prefix.clone();
    let port = support::free_publish_port();
    let dir = tempfile::Builder::new()
        .prefix("tuner-test-deploy-compose-")
        .tempdir()
        .expect("temp dir");
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!("version: \"2.4\"\nservices:\n  web:\n    image: {WEB_HC}\n    init: true\n    cpus: 0.5\n    mem_limit: 128m\n    ports: [\"127.0.0.1:{port}:8080\"]\n"),
    )
    .expect("compose file");
    scope.track_compose(dir.path(), &project);
    compose(dir.path(), &project, &["up", "-d"]);
    let first = compose(dir.path(), &project, &["ps", "-q", "web"]);
    assert!(
        wait_healthy(&first, Duration::from_secs(30)),
        "{:?}",
        facts(&first)
    );

    let cfg = Cfg::new("");
    let mut args = deploy_args("web", "0.75", "192M");
    args.extend(["--project", project.as_str()]);
    let out = cfg.tuner(&args);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fixed host ports")
            && err.contains(&port.to_string())
            && err.contains("--strategy in-place")
            && err.contains("haproxy"),
        "{err}"
    );
    assert_eq!(compose(dir.path(), &project, &["ps", "-q", "web"]), first);
    assert_eq!(facts(&first).memory, 128 << 20, "nothing changed");
    assert!(!dir.path().join("docker-compose.override.yml").exists());

    args.extend(["--strategy", "in-place"]);
    let out = cfg.tuner(&args);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(compose(dir.path(), &project, &["ps", "-q", "web"]), first);
    let resized = facts(&first);
    assert!(resized.running, "{resized:?}");
    assert_eq!(
        (resized.nano_cpus, resized.memory),
        (750_000_000, 192 << 20)
    );
    let published = docker(&["port", &first, "8080"]);
    assert!(
        published.contains(&format!("127.0.0.1:{port}")),
        "{published}"
    );
}

#[test]
fn ctrl_c_during_health_wait_undoes_the_swap() {
    let scope = Scope::new();
    let svc = scope.name("int");
    let env_mem = format!("FAIL_WHEN_MEM={}", 96u64 << 20);
    let blue_id = blue(
        &scope,
        &svc,
        WEB_SLOW,
        &["-e", &env_mem, "-e", "FAIL_MODE=unhealthy"],
    );
    let before = facts(&blue_id);
    let cfg = Cfg::new("");
    let child = Command::new(support::tuner_bin())
        .arg("--config")
        .arg(cfg.path())
        .args([
            "deploy",
            &svc,
            "0.5",
            "96M",
            "--health-timeout",
            "60s",
            "--health-interval",
            "1s",
        ])
        .env_remove("TUNER_DEPLOY_CRASH_AFTER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tuner");
    let green = format!("{}_tuner_green", before.name);
    let started = support::wait_until(Duration::from_secs(30), || {
        support::docker::docker_try(&["inspect", &green])
            .status
            .success()
    });
    assert!(started, "green never created");
    std::thread::sleep(Duration::from_millis(500));
    support::docker::sh(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let out = child.wait_with_output().expect("wait tuner");
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted by Ctrl-C"),
        "{}",
        show(&out)
    );
    assert_blue_untouched(&svc, &before);
}

#[test]
fn a_second_deploy_of_the_same_service_is_refused_while_one_runs() {
    let scope = Scope::new();
    let svc = scope.name("lock");
    let env_mem = format!("FAIL_WHEN_MEM={}", 96u64 << 20);
    let blue_id = blue(
        &scope,
        &svc,
        WEB_SLOW,
        &["-e", &env_mem, "-e", "FAIL_MODE=unhealthy"],
    );
    let before = facts(&blue_id);
    let cfg = Cfg::new("");
    let child = Command::new(support::tuner_bin())
        .arg("--config")
        .arg(cfg.path())
        .args([
            "deploy",
            &svc,
            "0.5",
            "96M",
            "--health-timeout",
            "60s",
            "--health-interval",
            "1s",
        ])
        .env_remove("TUNER_DEPLOY_CRASH_AFTER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tuner");
    let green = format!("{}_tuner_green", before.name);
    assert!(
        support::wait_until(Duration::from_secs(30), || support::docker::docker_try(&[
            "inspect", &green
        ])
        .status
        .success()),
        "green never created"
    );
    let second = cfg.tuner(&deploy_args(&svc, "0.75", "112M"));
    assert_eq!(second.status.code(), Some(1), "{}", show(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains(&format!("locked by PID {}", child.id())),
        "{}",
        show(&second)
    );
    let status = cfg.tuner(&["deploy", "status", &svc]);
    assert!(status.status.success(), "{}", show(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("is running (PID"),
        "{}",
        show(&status)
    );
    support::docker::sh(Command::new("kill").args(["-INT", &child.id().to_string()]));
    let out = child.wait_with_output().expect("wait tuner");
    assert!(!out.status.success(), "{}", show(&out));
    assert_blue_untouched(&svc, &before);
}

#[test]
fn real_kill_9_during_health_wait_is_recovered_by_status() {
    let scope = Scope::new();
    let svc = scope.name("kill9");
    let env_mem = format!("FAIL_WHEN_MEM={}", 96u64 << 20);
    let blue_id = blue(
        &scope,
        &svc,
        WEB_SLOW,
        &["-e", &env_mem, "-e", "FAIL_MODE=unhealthy"],
    );
    let before = facts(&blue_id);
    let cfg = Cfg::new("");
    let mut child = Command::new(support::tuner_bin())
        .arg("--config")
        .arg(cfg.path())
        .args([
            "deploy",
            &svc,
            "0.5",
            "96M",
            "--health-timeout",
            "60s",
            "--health-interval",
            "1s",
        ])
        .env_remove("TUNER_DEPLOY_CRASH_AFTER")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn tuner");
    let green = format!("{}_tuner_green", before.name);
    assert!(
        support::wait_until(Duration::from_secs(30), || support::docker::docker_try(&[
            "inspect", &green
        ])
        .status
        .success()),
        "green never created"
    );
    std::thread::sleep(Duration::from_millis(500));
    child.kill().expect("SIGKILL tuner");
    let _ = child.wait();
    assert_eq!(
        service_containers(&svc).len(),
        2,
        "blue and green both left behind by the kill"
    );
    let status = cfg.tuner(&["deploy", "status", &svc]);
    assert!(status.status.success(), "{}", show(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("recovered the interrupted deploy"),
        "{}",
        show(&status)
    );
    assert_blue_untouched(&svc, &before);
}

#[test]
fn a_stopped_service_is_refused_and_left_stopped() {
    let scope = Scope::new();
    let svc = scope.name("stopped");
    let blue_id = blue(&scope, &svc, WEB_HC, &[]);
    docker(&["stop", "-t", "1", &blue_id]);
    let before = facts(&blue_id);
    let out = Cfg::new("").tuner(&deploy_args(&svc, "0.5", "96M"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not running"),
        "{}",
        show(&out)
    );
    assert_blue_untouched(&svc, &before);
}

#[test]
fn haproxy_router_config_errors_are_located_and_exit_2() {
    let cases: [(&str, &[&str]); 4] = [
        (
            "  router:\n    kind: haproxy\n",
            &["tuner.yaml:", "deploy.router.kind", "no `haproxy:` section"],
        ),
        (
            "  router:\n    kind: haproxy\n    haproxy:\n      socket: /run/x.sock\n      backend: \"a b\"\n      weight: 0\n",
            &[
                "tuner.yaml:22:7:",
                "deploy.router.haproxy.backend \"a b\" is not a valid HAProxy name",
                "tuner.yaml:23:7:",
                "deploy.router.haproxy.weight: 0 is out of range",
            ],
        ),
        (
            "  router:\n    kind: haproxy\n    haproxy:\n      socket: /run/x.sock\n      backend: app\n      weigth: 3\n",
            &["tuner.yaml:", "weigth"],
        ),
        (
            "  router:\n    kind: haproxy\n    haproxy:\n      socket: /run/x.sock\n      backend: app\n      check:\n        inter: 500\n",
            &["tuner.yaml:", "unit"],
        ),
    ];
    for (section, wants) in cases {
        let cfg = Cfg::new(section);
        let out = cfg.tuner(&["deploy", "web", "1", "128M"]);
        assert_eq!(out.status.code(), Some(2), "{section}\n{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        for want in wants {
            assert!(
                err.contains(want),
                "missing {want:?} for\n{section}\n{}",
                show(&out)
            );
        }
    }
}
