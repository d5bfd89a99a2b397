//! No form of the PostgreSQL password ever leaves tuner: not on stdout or
//! stderr (at `-vv`), not in tuning.log, the changelog, the backups or the
//! journal. Every command runs against a real PostgreSQL with the password
//! given as a URL's user info, as a URL's `?password=` parameter, and in a
//! key/value DSN as `password = '...'` with spaces and quotes.

mod support;

use std::path::Path;
use std::time::Duration;

use support::tune::{text, tuner, write_config, Stack, TuneConfig, CONSTANT_METRICS};

const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Distinctive halves: either one found anywhere is a leak.
const HEAD: &str = "Zq7s3cr3t";
const TAIL: &str = "Wx9kLm";

fn password() -> String {
    format!("{HEAD} {TAIL}")
}

/// Every byte under `dir`, as text, with where it came from.
fn everything_written(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            everything_written(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

fn assert_no_secret(place: &str, text: &str) {
    for part in [HEAD, TAIL] {
        assert!(
            !text.contains(part),
            "the password ({part}) leaked into {place}:\n{text}"
        );
    }
}

#[test]
fn no_form_of_the_password_appears_in_any_output_or_file() {
    let stack = Stack::start_with(&[]);
    stack.pg.psql(&format!(
        "CREATE ROLE tuner_secret LOGIN SUPERUSER PASSWORD '{}'",
        password()
    ));
    let port = stack.pg.port;
    let encoded = password().replace(' ', "%20");
    let dsns = [
        format!("postgresql://tuner_secret:{encoded}@127.0.0.1:{port}/postgres"),
        format!("postgresql://tuner_secret@127.0.0.1:{port}/postgres?password={encoded}"),
        format!(
            "host=127.0.0.1 port={port} user=tuner_secret password = '{}' dbname=postgres",
            password()
        ),
    ];
    let levers = "levers:\n  wal_compression:\n    kind: postgres\n    parameter: wal_compression\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"lz4\"]\n";
    for dsn in &dsns {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            &TuneConfig {
                prometheus_url: &stack.prometheus_url,
                // YAML single quotes: a key/value DSN holds quotes and `=`.
                dsn: &format!("'{}'", dsn.replace('\'', "''")),
                metrics: CONSTANT_METRICS,
                objectives: "    wal_rate: \"<= 1000\"",
                levers,
                observe: "10s",
                settle: "1s",
                tune_extra: "",
            },
        );
        let runs: [&[&str]; 7] = [
            &["-vv", "baseline"],
            &["-vv", "status"],
            &["-vv", "status", "--health"],
            &["-vv", "--output", "json", "status", "--health"],
            &["-vv", "tune", "--dry-run"],
            &["-vv", "tune", "--max-cycles", "1"],
            &["-vv", "rollback", "--all"],
        ];
        let mut tuned = false;
        for args in runs {
            let out = tuner(&config, args, &[], RUN_LIMIT);
            let all = text(&out);
            assert_no_secret(&format!("the output of {args:?} with {dsn:?}"), &all);
            if args.contains(&"--max-cycles") {
                // It really connected and changed something: not a vacuous pass.
                assert_eq!(out.status.code(), Some(3), "{all}");
                assert!(all.contains("wal_compression=lz4"), "{all}");
                tuned = true;
            }
        }
        assert!(tuned);
        let mut files = Vec::new();
        everything_written(dir.path(), &mut files);
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        for want in [
            "tuning.log",
            "CHANGELOG_TUNING.md",
            "journal.jsonl",
            "backups",
        ] {
            assert!(
                names.iter().any(|n| n.contains(want)),
                "{want} was never written, so it was never checked: {names:?}"
            );
        }
        for (path, body) in files.iter().filter(|(p, _)| !p.ends_with("tuner.yaml")) {
            assert_no_secret(path, body);
        }
    }
    assert_eq!(stack.show("wal_compression"), "off", "rolled back");
}
