//! Plain terminals and quiet runs, as the real binary behaves: `TERM=dumb`
//! and non-UTF-8 locales get ASCII marks and borders, `NO_COLOR` no
//! escapes, `-q` nothing on stderr but warnings and errors, and every
//! global flag can come from the environment.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A config whose servers are all down: enough for `status --health` and
/// for a rollback over an empty journal.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("tuner.yaml");
    std::fs::write(
        &path,
        "prometheus:\n  url: http://127.0.0.1:9\n  timeout: 1s\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\n  connect_timeout: 1s\ndocker:\n  host: unix:///tmp/tuner-no-such-docker.sock\nprofile: t\npaths:\n  state_dir: state\nmetrics:\n  m: {query: vector(1), unit: ratio, window: 30s}\nprofiles:\n  t: {m: \">= 0\"}\n",
    )
    .unwrap();
    path
}

fn tuner(config: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(support::tuner_bin());
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("TUNER_PG_DSN")
        .env_remove("DOCKER_HOST")
        .env_remove("NO_COLOR")
        .env_remove("LC_ALL")
        .env_remove("LC_CTYPE")
        .env("LANG", "C.UTF-8")
        .env("TERM", "xterm");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run tuner")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn health_marks_fall_back_to_ascii_on_plain_terminals() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let out = tuner(&config, &[], &["status", "--health"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("✗ prometheus"), "{stdout}");

    for env in [[("TERM", "dumb")], [("LANG", "C")]] {
        let out = tuner(&config, &env, &["status", "--health"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stdout.contains("FAIL prometheus"), "{env:?}: {stdout}");
        assert!(stdout.is_ascii(), "{env:?}: {stdout}");
    }
}

#[test]
fn no_color_and_quiet_keep_stderr_plain_and_stdout_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    // -v logs at debug; NO_COLOR keeps them free of escapes.
    let out = tuner(
        &config,
        &[("NO_COLOR", "1")],
        &["-v", "rollback", "--dry-run"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");

    // -q: the result on stdout, nothing on stderr.
    let out = tuner(&config, &[], &["-q", "rollback", "--dry-run"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.is_empty());
    assert!(stderr.is_empty(), "{stderr}");
    let out = tuner(&config, &[], &["-q", "-v", "status"]);
    assert_eq!(out.status.code(), Some(2), "-q and -v conflict");
}

#[test]
fn global_flags_come_from_the_environment_and_o_is_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let json = |out: &Output| serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok();
    let out = tuner(&config, &[], &["-o", "json", "rollback", "--dry-run"]);
    assert!(json(&out), "{:?}", text(&out));
    let out = tuner(
        &config,
        &[("TUNER_OUTPUT", "json")],
        &["rollback", "--dry-run"],
    );
    assert!(json(&out), "{:?}", text(&out));
    let out = tuner(
        &config,
        &[("TUNER_QUIET", "true")],
        &["rollback", "--dry-run"],
    );
    assert!(text(&out).1.is_empty(), "{:?}", text(&out));

    let out = tuner(&config, &[("TUNER_VERBOSE", "2")], &["status"]);
    assert!(text(&out).1.contains("TRACE"), "{:?}", text(&out));

    // TUNER_CONFIG stands for --config.
    let out = Command::new(support::tuner_bin())
        .args(["rollback", "--dry-run"])
        .env("TUNER_CONFIG", &config)
        .env("TUNER_OUTPUT", "json")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(json(&out), "{:?}", text(&out));
}

/// `tuner rollback` of a kept `command` lever: the rollback command is a
/// wait of its own, a JSON event on stderr with `-o json`, while stdout
/// keeps the report whole.
#[test]
fn a_revert_that_runs_a_command_is_a_json_event_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = config(d);
    let value = d.join("value");
    std::fs::write(&value, "2\n").unwrap();
    let set = format!("echo {{value}} > {}", value.display());
    std::fs::write(
        d.join("levers.yaml"),
        format!("levers:\n  knob:\n    kind: command\n    apply: [sh, -c, \"{set}\"]\n    rollback: [sh, -c, \"{set}\"]\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"2\"]\n"),
    )
    .unwrap();
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        yaml.replace(
            "  state_dir: state\n",
            "  state_dir: state\n  levers: levers.yaml\n",
        ),
    )
    .unwrap();
    let lever = serde_json::json!({
        "name": "knob", "cost": "low", "symptoms": ["high_wal_rate"], "values": ["2"],
        "description": null,
        "target": {"kind": "command", "apply": ["sh", "-c", set], "rollback": ["sh", "-c", set]},
    });
    let at = "2026-01-01T00:00:00Z";
    let lines = [
        serde_json::json!({"module": "tune", "event": "intent", "change_id": "c1",
            "action": "apply", "lever": lever, "mv": {"from": "1", "to": "2"}, "at": at}),
        serde_json::json!({"module": "tune", "event": "outcome", "change_id": "c1",
            "action": "apply", "ok": true, "error": null, "at": at}),
        serde_json::json!({"module": "tune", "event": "decision", "change_id": "c1",
            "verdict": "improved", "kept": true, "reason": "test", "at": at}),
    ];
    std::fs::create_dir_all(d.join("state")).unwrap();
    let journal: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("state/journal.jsonl"), journal).unwrap();

    let out = tuner(&config, &[], &["-o", "json", "rollback"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["undone"][0]["change_id"], "c1", "{stdout}");
    assert_eq!(std::fs::read_to_string(&value).unwrap(), "1\n");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let wait = events
        .iter()
        .position(|e| {
            e["event"] == "waiting" && e["what"] == "restoring knob=1: running its rollback command"
        })
        .unwrap_or_else(|| panic!("no wait for the revert:\n{stderr}"));
    assert!(
        events[wait..].iter().any(|e| e["event"] == "finished"),
        "{stderr}"
    );
}
