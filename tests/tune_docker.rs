//! Container levers through `tuner tune` / `tuner rollback` against a real
//! Docker engine: a small Compose project (busybox httpd built locally, no
//! registry) whose limits are changed live — same container, never
//! restarted — refused below the memory in use, and restored by rollback
//! together with the project's override file, byte for byte.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::docker::{docker, ensure_images, WEB_NOHC};
use support::tune::{
    assert_nothing_to_roll_back, text, tuner, write_config, Stack, TuneConfig, CONSTANT_METRICS,
};

const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A Compose project `tuner-test-tune-<pid>`, taken down on drop even when
/// the test fails.
struct Project {
    dir: tempfile::TempDir,
    name: String,
}

impl Project {
    fn up() -> Project {
        ensure_images();
        let dir = tempfile::Builder::new()
            .prefix("tuner-test-tune-")
            .tempdir()
            .unwrap();
        let name = format!("tuner-test-tune-{}", std::process::id());
        std::fs::write(
            dir.path().join("docker-compose.yml"),
            format!(
                "version: '2.4'\nservices:\n  app:\n    image: {WEB_NOHC}\n    init: true\n    cpus: 1.0\n    mem_limit: 128m\n    memswap_limit: 256m\n"
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
        self.compose(&["ps", "-q", "app"])
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

    // Live CPU change, caught mid-observation by the crash hook, then undone.
    for (resource, value, check) in [("cpus", "0.5", 2usize), ("memory", "192M", 3usize)] {
        let dir = tempfile::tempdir().unwrap();
        let config = tune_config(&stack, &project, dir.path(), &lever(resource, value));
        let out = tuner(
            &config,
            &["tune", "--max-cycles", "1"],
            &[("TUNER_TUNE_CRASH_AT", "observe")],
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
        assert!(
            written.contains("GREETING") && written != OVERRIDE,
            "override carries the new limit and keeps the user's keys:\n{written}"
        );
        let rb = tuner(&config, &["rollback"], &[], RUN_LIMIT);
        assert_eq!(rb.status.code(), Some(0), "{}", text(&rb));
        assert_eq!(state(&container), before, "{resource}: limits restored");
        assert_eq!(
            project.override_bytes(),
            OVERRIDE.as_bytes(),
            "{resource}: override restored byte for byte"
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
