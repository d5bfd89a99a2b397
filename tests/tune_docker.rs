//! Container levers through `tuner tune` / `tuner rollback` against a real
//! Docker engine: a small Compose project (busybox httpd built locally, no
//! registry) whose limits are changed live — same container, never
//! restarted — refused below the memory in use, and restored by rollback
//! together with the project's override file, byte for byte.

#[path = "tune_docker/restart.rs"]
mod restart;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::docker::{docker, ensure_images, WEB_NOHC};
use support::tune::{
    assert_nothing_to_roll_back, spawn_tuner, text, tuner, tuning_log, wait_for, write_config,
    Stack, TuneConfig, CONSTANT_METRICS,
};

const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A Compose project `tuner-test-tune-<pid>-<n>`, taken down on drop even when
/// the test fails.
struct Project {
    dir: tempfile::TempDir,
    name: String,
}

impl Project {
    fn up() -> Project {
        Project::up_with("")
    }

    /// The project with `more` (Compose services, 2-space indented) beside `app`.
    fn up_with(more: &str) -> Project {
        ensure_images();
        let dir = tempfile::Builder::new()
            .prefix("tuner-test-tune-")
            .tempdir()
            .unwrap();
        // Tests run in parallel threads of one process: a counter keeps
        // their projects (and networks) apart.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tuner-test-tune-{}-{n}", std::process::id());
        std::fs::write(
            dir.path().join("docker-compose.yml"),
            format!(
                "version: '2.4'\nservices:\n  app:\n    image: {WEB_NOHC}\n    init: true\n    cpus: 1.0\n    mem_limit: 128m\n    memswap_limit: 256m\n{more}"
            ),
        )
        .unwrap();
        // An override the user wrote by hand: it must survive byte for byte.
        std::fs::write(dir.path().join("docker-compose.override.yml"), OVERRIDE).unwrap();
        let project = Project { dir, name };
        let out = project.compose(&["up", "-d"]);
        assert!(out.status.success(), "compose up: {}", text(&out));
        project
    }

    fn compose(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker-compose")
            .current_dir(self.dir.path())
            .args(["-p", &self.name])
            .args(args)
            .output()
            .unwrap()
    }

    fn container(&self) -> String {
        self.container_of("app")
    }

    fn container_of(&self, service: &str) -> String {
        self.compose(&["ps", "-q", service])
            .stdout
            .iter()
            .map(|b| *b as char)
            .collect::<String>()
            .trim()
            .to_string()
    }

    fn override_bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("docker-compose.override.yml")).unwrap()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "-t", "1"]);
    }
}

const OVERRIDE: &str = "# kept by hand\nservices:\n  app:\n    environment:\n      GREETING: \"hi\"   # odd spacing on purpose\n";

/// (id, StartedAt, NanoCpus, Memory, MemorySwap)
fn state(container: &str) -> (String, String, i64, i64, i64) {
    let out = docker(&[
        "inspect",
        "-f",
        "{{.Id}} {{.State.StartedAt}} {{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
        container,
    ]);
    let f: Vec<&str> = out.split_whitespace().collect();
    (
        f[0].to_string(),
        f[1].to_string(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
        f[4].parse().unwrap(),
    )
}

fn tune_config(stack: &Stack, project: &Project, dir: &Path, lever: &str) -> std::path::PathBuf {
    let path = write_config(
        dir,
        &TuneConfig {
            prometheus_url: &stack.prometheus_url,
            dsn: &stack.pg.dsn(),
            metrics: CONSTANT_METRICS,
            objectives: "    wal_rate: \"<= 1000\"",
            levers: lever,
            observe: "10s",
            settle: "1s",
            tune_extra: "",
        },
    );
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "compose:\n  project_dir: \"{}\"\n  project: {}\n",
        project.dir.path().display(),
        project.name
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn lever(resource: &str, value: &str) -> String {
    format!("levers:\n  app_{resource}:\n    kind: container\n    service: app\n    resource: {resource}\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"{value}\"]\n")
}

#[test]
fn container_limits_change_live_are_refused_below_usage_and_roll_back_exactly() {
    let stack = Stack::start_with(&[]);
    let project = Project::up();
    let container = project.container();
    assert!(!container.is_empty(), "no app container");
    let before = state(&container);
    assert_eq!((before.2, before.3), (1_000_000_000, 128 << 20));

    // Live changes, caught by the crash hook mid-observation, right after
    // the apply, and after the live update but before the override file is
    // written; each then undone by rollback.
    for (resource, value, check, point) in [
        ("cpus", "0.5", 2usize, "observe"),
        ("memory", "192M", 3usize, "observe"),
        ("cpus", "0.5", 2usize, "apply"),
        ("memory", "192M", 3usize, "live"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = tune_config(&stack, &project, dir.path(), &lever(resource, value));
        let out = tuner(
            &config,
            &["tune", "--max-cycles", "1"],
            &[("TUNER_TUNE_CRASH_AT", point)],
            RUN_LIMIT,
        );
        assert!(
            out.status.code().is_none(),
            "expected the test-hook abort: {}",
            text(&out)
        );
        let during = state(&container);
        assert_eq!(during.0, before.0, "same container");
        assert_eq!(during.1, before.1, "never restarted (StartedAt unchanged)");
        let (got, want) = match check {
            2 => (during.2, 500_000_000),
            _ => (during.3, 192 << 20),
        };
        assert_eq!(got, want, "{resource} updated live");
        let written = String::from_utf8(project.override_bytes()).unwrap();
        if point == "live" {
            assert_eq!(written, OVERRIDE, "crashed before the override was written");
        } else {
            assert!(
                written.contains("GREETING") && written != OVERRIDE,
                "override carries the new limit and keeps the user's keys:\n{written}"
            );
        }
        let rb = tuner(&config, &["rollback"], &[], RUN_LIMIT);
        assert_eq!(rb.status.code(), Some(0), "{}", text(&rb));
        assert_eq!(
            state(&container),
            before,
            "{resource} at {point}: limits restored"
        );
        assert_eq!(
            project.override_bytes(),
            OVERRIDE.as_bytes(),
            "{resource} at {point}: override restored byte for byte"
        );
        assert_nothing_to_roll_back(&config, RUN_LIMIT);
    }

    // A full cycle: no effect on the (constant) goal, so rolled back in-run.
    let dir = tempfile::tempdir().unwrap();
    let config = tune_config(&stack, &project, dir.path(), &lever("cpus", "0.75"));
    let out = tuner(&config, &["tune", "--max-cycles", "1"], &[], RUN_LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("no_effect → rolled back"),
        "{}",
        text(&out)
    );
    assert_eq!(state(&container), before);
    assert_eq!(project.override_bytes(), OVERRIDE.as_bytes());

    // Below what the container uses: refused before anything changes.
    let dir = tempfile::tempdir().unwrap();
    let config = tune_config(&stack, &project, dir.path(), &lever("memory", "8M"));
    let out = tuner(&config, &["tune", "--max-cycles", "1"], &[], RUN_LIMIT);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains("skipped app_memory") && all.contains(&project.name),
        "names the lever and the container: {all}"
    );
    assert_eq!(state(&container), before);
    assert_eq!(project.override_bytes(), OVERRIDE.as_bytes());
    assert!(!dir.path().join("CHANGELOG_TUNING.md").exists());
}

#[test]
fn a_container_lever_and_a_deploy_of_its_service_never_overlap() {
    let stack = Stack::start_with(&[]);
    let project = Project::up_with(&format!(
        "  other:\n    image: {WEB_NOHC}\n    init: true\n    cpus: 1.0\n    mem_limit: 128m\n    memswap_limit: 256m\n"
    ));
    let app = project.container();
    let other = project.container_of("other");
    let before = state(&app);
    let dir = tempfile::tempdir().unwrap();
    let config = tune_config(&stack, &project, dir.path(), &lever("cpus", "0.75"));
    let text_of = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text_of.replace("observe: 10s", "observe: 30s")).unwrap();

    let mut tune = spawn_tuner(dir.path(), &config, &["tune", "--max-cycles", "1"], "tune");
    // Observation has begun: the change is applied and holds service app.
    // The first cycle observes two 30 s before-windows first (their drift).
    assert!(
        wait_for(Duration::from_secs(120), || tuning_log(dir.path())
            .iter()
            .any(|l| l["phase"] == "observe")),
        "tune never started observing"
    );
    assert_eq!(state(&app).2, 750_000_000, "the lever is applied");

    let same = tuner(
        &config,
        &["deploy", "app", "0.5", "96M", "--strategy", "in-place"],
        &[],
        RUN_LIMIT,
    );
    let all = text(&same);
    assert_ne!(same.status.code(), Some(0), "{all}");
    for want in [
        format!("service app is locked by PID {}", tune.id()),
        "tuner tune".to_string(),
        "app.cpus=0.75".to_string(),
    ] {
        assert!(all.contains(&want), "{want:?} missing: {all}");
    }
    assert_eq!(
        state(&app).2,
        750_000_000,
        "the refused deploy changed nothing"
    );

    let another = tuner(
        &config,
        &["deploy", "other", "0.5", "96M", "--strategy", "in-place"],
        &[],
        RUN_LIMIT,
    );
    assert_eq!(another.status.code(), Some(0), "{}", text(&another));
    assert_eq!(
        state(&other).2,
        500_000_000,
        "other was resized beside the tune run"
    );

    let status = tune.wait().expect("wait for tune");
    let tune_err = std::fs::read_to_string(dir.path().join("tune.err")).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(3),
        "constant goal: rolled back, still violated: {tune_err}"
    );
    assert_eq!(state(&app), before, "the tune change was rolled back");
}

#[test]
fn a_deploy_first_restores_a_tune_change_a_crash_left_open_on_its_service() {
    let stack = Stack::start_with(&[]);
    let project = Project::up();
    let app = project.container();
    let before = state(&app);
    let dir = tempfile::tempdir().unwrap();
    let config = tune_config(&stack, &project, dir.path(), &lever("cpus", "0.75"));
    let out = tuner(
        &config,
        &["tune", "--max-cycles", "1"],
        &[("TUNER_TUNE_CRASH_AT", "observe")],
        RUN_LIMIT,
    );
    assert!(out.status.code().is_none(), "crash hook: {}", text(&out));
    assert_eq!(
        state(&app).2,
        750_000_000,
        "the crash left the change applied"
    );

    let deploy = tuner(
        &config,
        &["deploy", "app", "0.5", "96M", "--strategy", "in-place"],
        &[],
        RUN_LIMIT,
    );
    let all = text(&deploy);
    assert_eq!(deploy.status.code(), Some(0), "{all}");
    assert!(
        all.contains("left unfinished on service app by an interrupted tune run"),
        "{all}"
    );
    let after = state(&app);
    assert_eq!(
        (after.2, after.3),
        (500_000_000, 96 << 20),
        "the deploy's limits"
    );
    assert_eq!(after.0, before.0, "in place: same container");
    // The journal knows the tune change was undone: nothing left to roll back.
    assert_nothing_to_roll_back(&config, RUN_LIMIT);
    let log = std::fs::read_to_string(dir.path().join("CHANGELOG_TUNING.md")).unwrap();
    assert!(
        log.contains("restored before a deploy of its service"),
        "{log}"
    );
}

/// A `db` service beside `app`, its volumes in `first`, `second` order.
fn db_service(first: &str, second: &str) -> String {
    format!("  db:\n    image: {WEB_NOHC}\n    init: true\n    volumes:\n      - {first}\n      - {second}\nvolumes:\n  data:\n")
}

/// A container lever on `app` writes the override file; docker-compose
/// 1.29 then merges every service and sorts `db`'s volumes. Out of that
/// order, the lever is refused before anything changes; in it, the next
/// `up -d` recreates `app` (the changed service) and leaves `db` alone.
#[test]
fn a_container_lever_never_makes_up_recreate_another_service() {
    let stack = Stack::start_with(&[]);
    let (data, conf) = ("data:/var/lib/data", "./conf:/etc/conf:ro");
    let project = Project::up_with(&db_service(data, conf));
    let override_path = project.dir.path().join("docker-compose.override.yml");
    std::fs::remove_file(&override_path).unwrap();
    assert!(project.compose(&["up", "-d"]).status.success());
    let before = state(&project.container());

    let dir = tempfile::tempdir().unwrap();
    let config = tune_config(&stack, &project, dir.path(), &lever("cpus", "0.5"));
    let out = tuner(&config, &["tune", "--max-cycles", "1"], &[], RUN_LIMIT);
    let all = text(&out);
    assert!(
        all.contains("skipped app_cpus") && all.contains("db") && all.contains("`volumes`"),
        "names the lever, the other service and the key: {all}"
    );
    assert_eq!(state(&project.container()), before, "nothing changed");
    assert!(!override_path.exists(), "no override written");

    // Listed by container path, as Compose's merge sorts them.
    let main = project.dir.path().join("docker-compose.yml");
    let text_before = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        text_before.replace(&db_service(data, conf), &db_service(conf, data)),
    )
    .unwrap();
    assert!(project.compose(&["up", "-d"]).status.success());
    let db = project.container_of("db");
    let out = tuner(
        &config,
        &["tune", "--max-cycles", "1"],
        &[("TUNER_TUNE_CRASH_AT", "observe")],
        RUN_LIMIT,
    );
    assert!(out.status.code().is_none(), "lever applied: {}", text(&out));
    assert!(override_path.exists(), "override written");
    assert!(project.compose(&["up", "-d"]).status.success());
    assert_eq!(project.container_of("db"), db, "db kept its container");
    let rb = tuner(&config, &["rollback"], &[], RUN_LIMIT);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb));
}
