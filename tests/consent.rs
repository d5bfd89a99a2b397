//! Consent before anything drastic, as the real binary asks for it:
//! `tuner rollback --all` refuses without a terminal and without `--yes`
//! (exit 2, saying how to proceed, nothing undone), and `--yes` undoes.
//! The journal holds one kept `command` lever change, so the undo is a
//! file written by the lever's rollback argv: no server is needed.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn setup(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("tuner.yaml");
    std::fs::write(
        &config,
        "prometheus:\n  url: http://127.0.0.1:9\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\ndocker:\n  host: unix:///tmp/tuner-no-such-docker.sock\nprofile: t\npaths:\n  state_dir: state\nmetrics:\n  m: {query: vector(1), unit: ratio, window: 30s}\nprofiles:\n  t: {m: \">= 0\"}\n",
    )
    .unwrap();
    let value = dir.join("value");
    std::fs::write(&value, "2\n").unwrap();
    let set = format!("echo {{value}} > {}", value.display());
    let lever = serde_json::json!({
        "name": "knob", "cost": "low", "symptoms": ["high_wal_rate"], "values": ["2"],
        "description": null,
        "target": {"kind": "command", "apply": ["sh", "-c", set], "rollback": ["sh", "-c", set]},
    });
    let at = "2026-01-01T00:00:00Z";
    let entries = [
        serde_json::json!({"module": "tune", "event": "intent", "change_id": "c1", "action": "apply",
            "lever": lever, "mv": {"from": "1", "to": "2"}, "at": at}),
        serde_json::json!({"module": "tune", "event": "outcome", "change_id": "c1", "action": "apply",
            "ok": true, "error": null, "at": at}),
        serde_json::json!({"module": "tune", "event": "decision", "change_id": "c1",
            "verdict": "improved", "kept": true, "reason": "test", "at": at}),
    ];
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let text: String = entries.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(dir.join("state/journal.jsonl"), text).unwrap();
    config
}

fn tuner(config: &Path, args: &[&str]) -> Output {
    Command::new(support::tuner_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("TUNER_PG_DSN")
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run tuner")
}

#[test]
fn rollback_all_refuses_without_a_terminal_and_undoes_with_yes() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let value = dir.path().join("value");

    let out = tuner(&config, &["rollback", "--all"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--yes") && stderr.contains("terminal") && stderr.contains("--dry-run"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&value).unwrap(), "2\n");

    // The dry run needs no yes and changes nothing.
    let out = tuner(&config, &["rollback", "--all", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("knob"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&value).unwrap(), "2\n");

    let out = tuner(&config, &["rollback", "--all", "--yes"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(std::fs::read_to_string(&value).unwrap(), "1\n");
    assert!(stdout.contains("knob"), "{stdout}");

    // Nothing left: a second run is a no-op, still without a question.
    let out = tuner(&config, &["rollback", "--all", "-y"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn rollback_of_the_last_change_needs_no_yes() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let out = tuner(&config, &["rollback"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("value")).unwrap(),
        "1\n"
    );
}
