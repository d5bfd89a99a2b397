//! `tuner tune` and `tuner rollback` as a user runs them, against a real
//! PostgreSQL 15, a real postgres-exporter and a real Prometheus: a WAL lever
//! that helps is kept and its numbers agree with Prometheus; levers that hurt
//! are rolled back leaving every setting and `postgresql.auto.conf` as they
//! were; a crash (test hook or SIGKILL) at any point is undone by
//! `tuner rollback`; a second run is locked out; bad levers never reach the
//! server; `--dry-run` changes nothing and exits as `status` would; under a
//! closed-loop pgbench load a lever that slows commits is rolled back on
//! throughput while one that cuts WAL per transaction is kept (`throughput`).

#[path = "tune_real/silent.rs"]
mod silent;
mod support;
#[path = "tune_real/throughput.rs"]
mod throughput;

use std::path::Path;
use std::time::{Duration, Instant};

use support::tune::{
    assert_nothing_to_roll_back, create_churn_table, spawn_tuner, text, tuner, tuning_log,
    write_config, LoadSpec, Stack, TuneConfig, WriteLoad, CONSTANT_METRICS, METRICS,
};

const RUN_LIMIT: Duration = Duration::from_secs(150);

fn load(stack: &Stack, rows: u32, max: Duration) -> WriteLoad {
    WriteLoad::start(LoadSpec {
        dsn: stack.pg.dsn(),
        rows,
        workers: 2,
        tps_per_worker: 100,
        rows_per_txn: 10,
        max_duration: max,
    })
}

fn mean(v: Vec<f64>) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// `(transactions since the CHECKPOINT, wal_rate)` of each sample of one
/// phase of a change, from tuning.log.
fn counted(dir: &Path, change_id: &str, phase: &str) -> Vec<(f64, f64)> {
    tuning_log(dir)
        .iter()
        .filter(|l| l["change_id"] == change_id && l["phase"] == phase)
        .map(|l| {
            let work = l["transactions_since_checkpoint"].as_f64();
            (
                work.unwrap_or_else(|| panic!("no count in {l}")),
                l["wal_rate"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The window means the judge compares when it pairs by transactions: each
/// before-sample with the after-window interpolated at the same count.
fn paired_means(before: &[(f64, f64)], after: &[(f64, f64)]) -> (u64, f64, f64) {
    let at = |x: f64| {
        after.windows(2).find_map(|w| {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            (x0 <= x && x <= x1).then(|| {
                if x1 == x0 {
                    y0
                } else {
                    y0 + (y1 - y0) * (x - x0) / (x1 - x0)
                }
            })
        })
    };
    let pairs: Vec<(f64, f64)> = before
        .iter()
        .filter_map(|&(x, b)| Some((b, at(x)?)))
        .collect();
    assert!(pairs.len() >= 9, "{before:?} {after:?}");
    (
        pairs.len() as u64,
        mean(pairs.iter().map(|p| p.0).collect()),
        mean(pairs.iter().map(|p| p.1).collect()),
    )
}

/// `--output json`: stdout held only the report (the caller parsed it
/// whole); every line on stderr is a JSON object or a `note:`/`warning:`
/// for the human beside the run, and the run's long waits
/// are among them: settle (6 s) and the lookback after the CHECKPOINT, each
/// counted in seconds and ended, then the observation's samples.
fn assert_waits_are_json_events_on_stderr(out: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: ") && !l.starts_with("warning: "))
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}\n{stderr}"))
        })
        .collect();
    let waits: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "waiting").collect();
    let settle = waits
        .iter()
        .find(|e| e["what"] == "settling after the change")
        .unwrap_or_else(|| panic!("no settle wait on stderr:\n{stderr}"));
    assert_eq!(
        (settle["total"].as_u64(), settle["unit"].as_str()),
        (Some(6), Some("s"))
    );
    assert!(settle["at"].is_string(), "{settle}");
    assert!(
        waits.iter().any(|e| e["what"]
            .as_str()
            .is_some_and(|w| w.contains("lookback after the CHECKPOINT"))
            && e["unit"] == "s"),
        "{stderr}"
    );
    assert!(waits.iter().any(|e| e["what"] == "observing"), "{stderr}");
    let opened = waits.len();
    let finished = events.iter().filter(|e| e["event"] == "finished").count();
    assert_eq!(opened, finished, "every wait ends:\n{stderr}");
}

/// Unix seconds of an RFC 3339 timestamp as tuning.log writes it.
fn unix(ts: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap()
        .timestamp() as f64
}

#[test]
fn cheapest_wal_lever_is_kept_under_real_load_and_logs_agree_with_prometheus() {
    let started = Instant::now();
    // Tiny WAL budget: a checkpoint every few seconds under the load, so
    // ~all WAL is full-page images (REFERENCE.md) and compressing them shows.
    let stack = Stack::start_with(&[
        "max_wal_size = '32MB'",
        "min_wal_size = '32MB'",
        "checkpoint_timeout = '30s'",
    ]);
    create_churn_table(&stack.pg, 200_000);
    let mut load = load(&stack, 200_000, Duration::from_secs(150));
    let dir = tempfile::tempdir().unwrap();
    // checkpoint_timeout is listed first but costs more: the cheaper
    // wal_compression must be tried first.
    let levers = r#"levers:
  checkpoint_timeout:
    kind: postgres
    parameter: checkpoint_timeout
    cost: medium
    symptoms: [high_wal_rate]
    values: ["15min"]
  wal_compression:
    kind: postgres
    parameter: wal_compression
    cost: low
    symptoms: [high_wal_rate]
    values: ["lz4"]
"#;
    let config = write_config(
        dir.path(),
        &TuneConfig {
            prometheus_url: &stack.prometheus_url,
            dsn: &stack.pg.dsn(),
            metrics: METRICS,
            objectives: "    wal_rate: \"<= 1000\"\n    xact_rate: \">= 1\"",
            levers,
            observe: "20s",
            settle: "6s",
            tune_extra: "",
        },
    );
    let auto_before = stack.auto_conf();
    let checkpoints = || -> u64 {
        stack
            .pg
            .psql("SELECT checkpoints_req FROM pg_stat_bgwriter")
            .trim()
            .parse()
            .unwrap()
    };
    // Load first, so rate() has data when the run measures the SLA.
    std::thread::sleep(Duration::from_secs(12));
    let requested_before = checkpoints();
    let out = tuner(
        &config,
        &["--output", "json", "tune", "--max-cycles", "1"],
        &[],
        RUN_LIMIT,
    );
    load.stop();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out), stack.logs()));
    // The objective is unreachable on purpose: exit 3 after the one cycle.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_waits_are_json_events_on_stderr(&out);
    let cycle = &report["cycles"][0];
    assert_eq!(cycle["lever"], "wal_compression", "{report:#}");
    assert_eq!(cycle["verdict"], "improved", "{report:#}");
    assert_eq!(cycle["kept"], true);
    let before = cycle["goal_before"].as_f64().unwrap();
    let after = cycle["goal_after"].as_f64().unwrap();
    assert!(
        after < before * 0.8,
        "lz4 should cut FPI-dominated WAL: {before} -> {after}"
    );
    let evidence = cycle["evidence"].as_str().unwrap();
    eprintln!("wal_compression=lz4: {evidence}");
    // A WAL goal on a server the tuner can CHECKPOINT: both windows start at
    // one, and the goal is compared by window mean, samples paired by the
    // transactions the server counted since it.
    assert!(
        evidence.contains("noise band")
            && evidence.contains("mean from a CHECKPOINT")
            && evidence.contains("paired by transactions since it")
            && evidence.contains("independent pairs"),
        "{evidence}"
    );
    assert!(
        checkpoints() >= requested_before + 2,
        "the tuner's two CHECKPOINTs (plus any max_wal_size forced) are in pg_stat_bgwriter"
    );
    assert_eq!(stack.show("wal_compression"), "lz4");
    assert_ne!(
        stack.auto_conf(),
        auto_before,
        "kept change is in auto.conf"
    );

    // tuning.log: the before-window observed live, every observed sample,
    // and their mean is the reported one.
    let change_id = cycle["change_id"].as_str().unwrap();
    let before_window = tuning_log(dir.path())
        .iter()
        .filter(|l| l["change_id"] == change_id && l["phase"] == "before")
        .count() as u64;
    assert_eq!(before_window, cycle["samples_before"].as_u64().unwrap());
    let observed: Vec<(f64, f64)> = tuning_log(dir.path())
        .iter()
        .filter(|l| l["change_id"] == change_id && l["phase"] == "observe")
        .map(|l| {
            (
                unix(l["timestamp"].as_str().unwrap()),
                l["wal_rate"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        observed.len() as u64,
        cycle["samples_after"].as_u64().unwrap()
    );
    assert!(observed.len() >= 18, "{observed:?}");
    // The reported means and pairs are tuning.log's samples paired by their
    // counts (a sample whose count lies outside the other window drops out).
    let (pairs, paired_before, paired_after) = paired_means(
        &counted(dir.path(), change_id, "before"),
        &counted(dir.path(), change_id, "observe"),
    );
    assert!(
        (paired_before - before).abs() <= before * 1e-9
            && (paired_after - after).abs() <= after * 1e-9,
        "tuning.log gives {paired_before} -> {paired_after}, the report {before} -> {after}"
    );
    assert!(pairs >= 9, "{pairs} pairs");
    // Each logged sample is what Prometheus computes for that moment: the
    // log's timestamp is truncated to the second, so compare with the query
    // evaluated at that second and the next one.
    let query = "sum(rate(pg_wal_lsn_bytes[5s]))";
    let mut agree = 0;
    for (at, v) in &observed {
        let points = stack.range(query, *at, at + 1.0, 1.0);
        assert!(!points.is_empty(), "Prometheus has no {query} at {at}");
        let lo = points.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        let hi = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        if *v >= lo * 0.9 && *v <= hi * 1.1 {
            agree += 1;
        }
    }
    assert!(
        agree * 10 >= observed.len() * 8,
        "only {agree} of {} logged samples match Prometheus",
        observed.len()
    );
    // Prometheus over the whole after-window tells the same story as the
    // log. Both are means over time; the reported mean is over transactions
    // (the burst of full-page images is slower per transaction, so it takes
    // more seconds than transactions), which is why it is checked against
    // the paired log above, not against these.
    let (first, last) = (observed[0].0, observed[observed.len() - 1].0);
    let logged_mean = mean(observed.iter().map(|(_, v)| *v).collect());
    let prom = mean(
        stack
            .range(query, first, last, 1.0)
            .into_iter()
            .map(|p| p.1)
            .collect(),
    );
    assert!(
        (prom - logged_mean).abs() <= logged_mean * 0.15,
        "Prometheus mean {prom} vs tuning.log's {logged_mean}"
    );

    // CHANGELOG_TUNING.md: the kept change with the same means.
    let changelog = std::fs::read_to_string(dir.path().join("CHANGELOG_TUNING.md")).unwrap();
    let unit = tuner::config::units::MetricUnit::BytesPerSecond;
    for needle in [
        "wal_compression=lz4".to_string(),
        "✅ improved".to_string(),
        change_id.to_string(),
        unit.format(before),
        unit.format(after),
        "noise band".to_string(),
    ] {
        assert!(
            changelog.contains(&needle),
            "{needle:?} not in:\n{changelog}"
        );
    }

    // The kept change is undone on request, leaving auto.conf as it was.
    let rb = tuner(&config, &["rollback"], &[], RUN_LIMIT);
    assert_eq!(rb.status.code(), Some(0), "{}", text(&rb));
    assert_eq!(stack.show("wal_compression"), "off");
    assert_eq!(stack.auto_conf(), auto_before);
    eprintln!("wal lever test took {}", support::tune::elapsed(started));
}

#[test]
fn levers_that_hurt_are_rolled_back_within_their_window() {
    let started = Instant::now();
    // Both windows start at a CHECKPOINT of the tuner's. At the defaults
    // (max_wal_size 1GB) the load fits in one cycle, so only that burst of
    // full-page images counts. commit_siblings = 0 lets commit_delay act
    // with our two sessions.
    let stack = Stack::start_with(&["commit_siblings = 0"]);
    create_churn_table(&stack.pg, 200_000);
    let mut load = load(&stack, 200_000, Duration::from_secs(150));
    let dir = tempfile::tempdir().unwrap();
    let levers = r#"levers:
  max_wal_size:
    kind: postgres
    parameter: max_wal_size
    cost: low
    symptoms: [high_wal_rate]
    values: ["32MB"]
  commit_delay:
    kind: postgres
    parameter: commit_delay
    cost: medium
    symptoms: [high_wal_rate]
    values: ["100000"]
"#;
    let config = write_config(
        dir.path(),
        &TuneConfig {
            prometheus_url: &stack.prometheus_url,
            dsn: &stack.pg.dsn(),
            metrics: METRICS,
            objectives: "    wal_rate: \"<= 1000\"\n    xact_rate: \">= 1\"",
            levers,
            observe: "15s",
            settle: "6s",
            tune_extra: "",
        },
    );
    let auto_before = stack.auto_conf();
    let show_before = (stack.show("max_wal_size"), stack.show("commit_delay"));
    // Load first, so rate() has data when the run measures the SLA.
    std::thread::sleep(Duration::from_secs(12));
    let out = tuner(&config, &["tune", "--max-cycles", "2"], &[], RUN_LIMIT);
    load.stop();
    let human = text(&out);
    eprintln!("{human}");
    assert_eq!(out.status.code(), Some(3), "{human}\n{}", stack.logs());
    // (a) a 32MB WAL budget forces a checkpoint every few seconds under the
    // load, and every page's next update writes a full-page image again: the
    // goal itself gets worse.
    assert!(
        human.contains("max_wal_size=32MB") && human.contains("commit_delay=100000"),
        "{human}"
    );
    assert_eq!(
        human.matches("regressed → rolled back").count(),
        2,
        "{human}"
    );
    // (b) commit_delay cuts WAL but also throughput: the guard metric says no.
    assert!(human.contains("xact_rate"), "{human}");
    assert!(human.contains("noise band"), "measured evidence: {human}");
    assert_eq!(
        (stack.show("max_wal_size"), stack.show("commit_delay")),
        show_before
    );
    assert_eq!(
        stack.auto_conf(),
        auto_before,
        "postgresql.auto.conf must be byte-identical after the rollbacks"
    );
    let changelog = std::fs::read_to_string(dir.path().join("CHANGELOG_TUNING.md")).unwrap();
    assert_eq!(
        changelog.matches("rolled back (regressed)").count(),
        2,
        "{changelog}"
    );
    // Nothing left for `tuner rollback`.
    assert_nothing_to_roll_back(&config, RUN_LIMIT);
    eprintln!(
        "harmful levers test took {}",
        support::tune::elapsed(started)
    );
}

/// Everything a crash could leave changed.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    shows: Vec<String>,
    auto_conf: Vec<u8>,
    env_file: Vec<u8>,
}

const WATCHED: &[&str] = &[
    "wal_compression",
    "wal_buffers",
    "checkpoint_completion_target",
    "max_wal_size",
];

fn snapshot(stack: &Stack, env_file: &Path) -> Snapshot {
    Snapshot {
        shows: WATCHED.iter().map(|s| stack.show(s)).collect(),
        auto_conf: stack.auto_conf(),
        env_file: std::fs::read(env_file).unwrap(),
    }
}

/// What a crash must visibly have changed (proof it hit a live change).
type Changed = Box<dyn Fn(&Snapshot) -> bool>;

const ENV_TEXT: &str = "# app settings\nBATCH_SIZE=100\nOTHER=keep me\n";

fn crash_config(stack: &Stack, dir: &Path, levers: &str) -> std::path::PathBuf {
    let script = stack.pg.restart_script();
    let extra = format!(
        "  restarter:\n    argv: [\"{}\"]\n    data_dir: \"{}\"\n    timeout: 60s\n  allow_restart: true\n",
        script.display(),
        stack.pg.data_dir().display()
    );
    write_config(
        dir,
        &TuneConfig {
            prometheus_url: &stack.prometheus_url,
            dsn: &stack.pg.dsn(),
            metrics: CONSTANT_METRICS,
            objectives: "    wal_rate: \"<= 1000\"",
            levers,
            observe: "10s",
            settle: "1s",
            tune_extra: &extra,
        },
    )
}

/// Runs `tuner rollback` twice: the first restores, the second finds nothing.
fn rollback_twice(config: &Path) -> String {
    let first = tuner(config, &["rollback"], &[], RUN_LIMIT);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let out = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(out.contains("rolled back 1 change(s)"), "{}", text(&first));
    assert_nothing_to_roll_back(config, RUN_LIMIT);
    out
}

#[test]
fn a_crash_at_any_point_is_undone_by_rollback() {
    let started = Instant::now();
    let stack = Stack::start_with(&[]);
    let work = tempfile::tempdir().unwrap();
    let env_file = work.path().join("app.env");
    std::fs::write(&env_file, ENV_TEXT).unwrap();
    let before = snapshot(&stack, &env_file);

    let pg_lever = |name: &str, value: &str| {
        format!(
            "levers:\n  {name}:\n    kind: postgres\n    parameter: {name}\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"{value}\"]\n"
        )
    };
    let env_lever = format!(
        "levers:\n  batch:\n    kind: env\n    key: BATCH_SIZE\n    service: app\n    file: \"{}\"\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"500\"]\n",
        env_file.display()
    );
    // (point, catalog, what must be visibly changed right after the crash)
    let scenarios: Vec<(&str, String, Changed)> = vec![
        (
            "apply",
            pg_lever("wal_compression", "lz4"),
            Box::new(|s: &Snapshot| s.shows[0] == "lz4"),
        ),
        (
            // The file says 2MB, the running server still the old value.
            "restart",
            pg_lever("wal_buffers", "2MB"),
            Box::new(|s: &Snapshot| String::from_utf8_lossy(&s.auto_conf).contains("wal_buffers")),
        ),
        (
            // The server already runs on 2MB: rollback must restart it again.
            "restarted",
            pg_lever("wal_buffers", "2MB"),
            Box::new(|s: &Snapshot| s.shows[1] == "2MB"),
        ),
        (
            "observe",
            env_lever.clone(),
            Box::new(|s: &Snapshot| {
                String::from_utf8_lossy(&s.env_file).contains("BATCH_SIZE=500")
            }),
        ),
        (
            // Written with ALTER SYSTEM, not reloaded: only the file knows.
            "written",
            pg_lever("wal_compression", "lz4"),
            Box::new(|s: &Snapshot| {
                String::from_utf8_lossy(&s.auto_conf).contains("wal_compression")
                    && s.shows[0] != "lz4"
            }),
        ),
        (
            "apply",
            env_lever.clone(),
            Box::new(|s: &Snapshot| {
                String::from_utf8_lossy(&s.env_file).contains("BATCH_SIZE=500")
            }),
        ),
        (
            // The env file holds the value; the service was not recreated.
            "env_written",
            env_lever.clone(),
            Box::new(|s: &Snapshot| {
                String::from_utf8_lossy(&s.env_file).contains("BATCH_SIZE=500")
            }),
        ),
        (
            // The verdict (no effect: constant metrics) is journaled, the
            // revert has not run.
            "verdict",
            pg_lever("wal_compression", "lz4"),
            Box::new(|s: &Snapshot| s.shows[0] == "lz4"),
        ),
    ];
    for (point, levers, changed) in scenarios {
        let dir = tempfile::tempdir().unwrap();
        let config = crash_config(&stack, dir.path(), &levers);
        let out = tuner(
            &config,
            &["tune", "--max-cycles", "1"],
            &[("TUNER_TUNE_CRASH_AT", point)],
            RUN_LIMIT,
        );
        assert!(
            out.status.code().is_none()
                && String::from_utf8_lossy(&out.stderr).contains("aborting as asked"),
            "{point}: expected an abort: {}",
            text(&out)
        );
        let crashed = snapshot(&stack, &env_file);
        assert!(
            changed(&crashed),
            "{point}: crash left no change: {crashed:?}"
        );
        // A dry run names the unfinished change (a real run would restore
        // it before its first cycle) and changes nothing.
        let refused = tuner(&config, &["tune", "--dry-run"], &[], RUN_LIMIT);
        assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
        assert!(
            text(&refused).contains("rollback"),
            "{point}: {}",
            text(&refused)
        );
        rollback_twice(&config);
        assert_eq!(
            snapshot(&stack, &env_file),
            before,
            "{point}: rollback must restore every setting and file exactly"
        );
        eprintln!(
            "crash at {point}: restored ({})",
            support::tune::elapsed(started)
        );
    }

    // A command lever: its rollback argv runs with the prior value (none).
    let marker = work.path().join("feature");
    let script = |body: &str| body.replace("M", &format!("'{}'", marker.display()));
    let command_lever = format!(
        "levers:\n  feature:\n    kind: command\n    apply: [\"/bin/sh\", \"-c\", {:?}, \"{{value}}\"]\n    rollback: [\"/bin/sh\", \"-c\", {:?}, \"{{value}}\"]\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"on\"]\n",
        script("printf %s \"$0\" > M"),
        script("if [ -z \"$0\" ]; then rm -f M; else printf %s \"$0\" > M; fi"),
    );
    for point in ["apply", "observe"] {
        let dir = tempfile::tempdir().unwrap();
        let config = crash_config(&stack, dir.path(), &command_lever);
        let out = tuner(
            &config,
            &["tune", "--max-cycles", "1"],
            &[("TUNER_TUNE_CRASH_AT", point)],
            RUN_LIMIT,
        );
        assert!(out.status.code().is_none(), "{point}: {}", text(&out));
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "on");
        rollback_twice(&config);
        assert!(!marker.exists(), "{point}: command lever rolled back");
        assert_eq!(snapshot(&stack, &env_file), before);
    }

    // A crash inside `tuner rollback` itself, after it put the old value
    // back but before it journaled that: the next rollback finishes it.
    let dir = tempfile::tempdir().unwrap();
    let config = crash_config(&stack, dir.path(), &env_lever);
    let out = tuner(
        &config,
        &["tune", "--max-cycles", "1"],
        &[("TUNER_TUNE_CRASH_AT", "observe")],
        RUN_LIMIT,
    );
    assert!(out.status.code().is_none(), "{}", text(&out));
    let out = tuner(
        &config,
        &["rollback"],
        &[("TUNER_TUNE_CRASH_AT", "reverted")],
        RUN_LIMIT,
    );
    assert!(
        out.status.code().is_none()
            && String::from_utf8_lossy(&out.stderr).contains("aborting as asked"),
        "rollback should abort: {}",
        text(&out)
    );
    rollback_twice(&config);
    assert_eq!(
        snapshot(&stack, &env_file),
        before,
        "a second rollback finishes the first"
    );

    // A real SIGKILL in the middle of the observation window, on a setting
    // an operator had already pinned with ALTER SYSTEM: the pin comes back.
    stack
        .pg
        .psql("ALTER SYSTEM SET checkpoint_completion_target = 0.8");
    stack.pg.psql("SELECT pg_reload_conf()");
    assert!(support::tune::wait_for(Duration::from_secs(10), || stack
        .show("checkpoint_completion_target")
        == "0.8"));
    let before = snapshot(&stack, &env_file);
    let dir = tempfile::tempdir().unwrap();
    let config = crash_config(
        &stack,
        dir.path(),
        &pg_lever("checkpoint_completion_target", "0.5"),
    );
    let mut child = spawn_tuner(dir.path(), &config, &["tune", "--max-cycles", "1"], "tune");
    let observing = support::tune::wait_for(Duration::from_secs(60), || {
        tuning_log(dir.path())
            .iter()
            .any(|l| l["phase"] == "observe")
    });
    if !observing {
        let _ = child.kill();
        panic!("no observe sample in tuning.log");
    }
    assert_eq!(stack.show("checkpoint_completion_target"), "0.5");
    std::process::Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "killed by a signal: {status:?}");
    rollback_twice(&config);
    assert_eq!(
        snapshot(&stack, &env_file),
        before,
        "after SIGKILL + rollback"
    );
    eprintln!("crash test took {}", support::tune::elapsed(started));
}

#[test]
fn a_second_concurrent_run_is_refused_naming_the_lock_holder() {
    let stack = Stack::start_with(&[]);
    let dir = tempfile::tempdir().unwrap();
    let levers = "levers:\n  wal_compression:\n    kind: postgres\n    parameter: wal_compression\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"lz4\"]\n";
    let config = write_config(
        dir.path(),
        &TuneConfig {
            prometheus_url: &stack.prometheus_url,
            dsn: &stack.pg.dsn(),
            metrics: CONSTANT_METRICS,
            objectives: "    wal_rate: \"<= 1000\"",
            levers,
            observe: "10s",
            settle: "1s",
            tune_extra: "",
        },
    );
    let auto_before = stack.auto_conf();
    let mut first = spawn_tuner(dir.path(), &config, &["tune", "--max-cycles", "1"], "first");
    let running = support::tune::wait_for(Duration::from_secs(60), || {
        tuning_log(dir.path())
            .iter()
            .any(|l| l["phase"] == "observe")
    });
    if !running {
        let _ = first.kill();
        panic!("first run never started observing");
    }
    let second = tuner(&config, &["tune", "--max-cycles", "1"], &[], RUN_LIMIT);
    let expected = format!("locked by PID {}", first.id());
    assert_ne!(second.status.code(), Some(0), "{}", text(&second));
    assert!(text(&second).contains(&expected), "{}", text(&second));
    // The first run goes on undisturbed: a constant metric shows no effect,
    // so it rolls its change back and exits 3 (SLA still violated).
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    let out = std::fs::read_to_string(dir.path().join("first.out")).unwrap();
    assert!(out.contains("no_effect → rolled back"), "{out}");
    assert_eq!(stack.show("wal_compression"), "off");
    assert_eq!(stack.auto_conf(), auto_before);
}

#[test]
fn bad_levers_never_reach_the_server_and_dry_run_changes_nothing() {
    let stack = Stack::start_with(&[]);
    let auto_before = stack.auto_conf();
    let pg = |name: &str, param: &str, value: &str, extra: &str| {
        format!(
            "levers:\n  {name}:\n    kind: postgres\n    parameter: {param}\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [{value}]\n{extra}"
        )
    };
    // (catalog, words the message must contain)
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            pg("typo", "max_wal_sise", "\"4GB\"", ""),
            vec!["max_wal_sise", "unknown parameter"],
        ),
        (
            pg("timeout", "checkpoint_timeout", "\"2d\"", ""),
            vec!["checkpoint_timeout", "2d", "30s..1d"],
        ),
        (
            pg("size", "max_wal_size", "\"4 parsecs\"", ""),
            vec!["max_wal_size", "parsecs", "kB, MB, GB"],
        ),
        (
            pg("compress", "wal_compression", "\"zstd9\"", ""),
            vec!["wal_compression", "zstd9", "lz4"],
        ),
        (
            pg("inject", "work_mem", "\"4MB'; DROP TABLE x; --\"", ""),
            vec!["work_mem", "semicolon", "refused"],
        ),
        (
            pg("unsafe", "fsync", "\"off\"", ""),
            vec!["fsync", "allow_unsafe"],
        ),
    ];
    for (levers, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            &TuneConfig {
                prometheus_url: &stack.prometheus_url,
                dsn: &stack.pg.dsn(),
                metrics: CONSTANT_METRICS,
                objectives: "    wal_rate: \"<= 1000\"",
                levers: &levers,
                observe: "10s",
                settle: "1s",
                tune_extra: "",
            },
        );
        let out = tuner(&config, &["tune", "--max-cycles", "1"], &[], RUN_LIMIT);
        let all = text(&out);
        assert!(
            matches!(out.status.code(), Some(2) | Some(3)),
            "refused or skipped, never applied: {all}"
        );
        for w in words {
            assert!(all.contains(w), "{w:?} not named in: {all}");
        }
        assert_eq!(stack.auto_conf(), auto_before, "{levers}");
        assert!(!dir.path().join("CHANGELOG_TUNING.md").exists(), "{levers}");
    }
    assert_eq!(stack.show("fsync"), "on");

    // --dry-run prints the plan and writes nothing anywhere.
    let dir = tempfile::tempdir().unwrap();
    let levers = pg("wal_compression", "wal_compression", "\"lz4\"", "");
    let config = write_config(
        dir.path(),
        &TuneConfig {
            prometheus_url: &stack.prometheus_url,
            dsn: &stack.pg.dsn(),
            metrics: CONSTANT_METRICS,
            objectives: "    wal_rate: \"<= 1000\"",
            levers: &levers,
            observe: "10s",
            settle: "1s",
            tune_extra: "",
        },
    );
    let out = tuner(&config, &["tune", "--dry-run"], &[], RUN_LIMIT);
    let all = text(&out);
    // The reading it planned from is violated: exit 3, as `status` would.
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains(r#"ALTER SYSTEM SET "wal_compression" = 'lz4'"#),
        "{all}"
    );
    assert!(all.contains("pg_reload_conf()"), "{all}");
    assert_eq!(stack.show("wal_compression"), "off");
    assert_eq!(stack.auto_conf(), auto_before);
    for f in [
        "CHANGELOG_TUNING.md",
        "tuning.log",
        ".tuner/journal.jsonl",
        "backups",
    ] {
        assert!(!dir.path().join(f).exists(), "dry run wrote {f}");
    }
}

#[test]
fn a_restart_lever_rolled_back_in_run_leaves_auto_conf_identical() {
    let stack = Stack::start_with(&[]);
    let work = tempfile::tempdir().unwrap();
    let env_file = work.path().join("app.env");
    std::fs::write(&env_file, ENV_TEXT).unwrap();
    let before = snapshot(&stack, &env_file);
    let postmaster = stack.pg.postmaster_pid();
    let dir = tempfile::tempdir().unwrap();
    // wal_buffers: a postmaster setting whose default (-1) SHOWs as a size.
    let levers = "levers:\n  wal_buffers:\n    kind: postgres\n    parameter: wal_buffers\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"2MB\"]\n";
    let config = crash_config(&stack, dir.path(), levers);
    let out = tuner(&config, &["tune", "--max-cycles", "1"], &[], RUN_LIMIT);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("wal_buffers=2MB"), "{all}");
    assert!(
        all.contains("medium, restart"),
        "a restart costs medium: {all}"
    );
    assert!(all.contains("no_effect → rolled back"), "{all}");
    assert_ne!(stack.pg.postmaster_pid(), postmaster, "it did restart");
    assert_eq!(
        snapshot(&stack, &env_file),
        before,
        "SHOW values and postgresql.auto.conf as before the run"
    );
}

#[test]
fn an_interrupt_or_lost_metrics_mid_observation_roll_the_change_back() {
    let mut stack = Stack::start_with(&[]);
    let auto_before = stack.auto_conf();
    let levers = "levers:\n  wal_compression:\n    kind: postgres\n    parameter: wal_compression\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"lz4\"]\n";
    let setup = |dir: &Path, stack: &Stack| {
        write_config(
            dir,
            &TuneConfig {
                prometheus_url: &stack.prometheus_url,
                dsn: &stack.pg.dsn(),
                metrics: CONSTANT_METRICS,
                objectives: "    wal_rate: \"<= 1000\"",
                levers,
                observe: "20s",
                settle: "1s",
                tune_extra: "",
            },
        )
    };
    let observing = |dir: &Path| {
        support::tune::wait_for(Duration::from_secs(60), || {
            tuning_log(dir).iter().any(|l| l["phase"] == "observe")
        })
    };

    // Ctrl-C (SIGINT) once: the run rolls its change back and says so.
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &stack);
    let mut child = spawn_tuner(dir.path(), &config, &["tune", "--max-cycles", "1"], "int");
    if !observing(dir.path()) {
        let _ = child.kill();
        panic!("never observed");
    }
    assert_eq!(stack.show("wal_compression"), "lz4");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let out = std::fs::read_to_string(dir.path().join("int.out")).unwrap()
        + &std::fs::read_to_string(dir.path().join("int.err")).unwrap();
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("interrupted"), "{out}");
    assert_eq!(stack.show("wal_compression"), "off");
    assert_eq!(stack.auto_conf(), auto_before);
    assert_nothing_to_roll_back(&config, RUN_LIMIT);

    // Prometheus dies mid-window: missing data fails closed (rolled back).
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &stack);
    let mut child = spawn_tuner(
        dir.path(),
        &config,
        &["tune", "--max-cycles", "1"],
        "nodata",
    );
    if !observing(dir.path()) {
        let _ = child.kill();
        panic!("never observed");
    }
    stack.stop_prometheus();
    let status = child.wait().unwrap();
    let out = std::fs::read_to_string(dir.path().join("nodata.out")).unwrap()
        + &std::fs::read_to_string(dir.path().join("nodata.err")).unwrap();
    // Exit 1, and the report still shows what happened to the change.
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("no_data → rolled back"), "{out}");
    assert!(
        out.contains("cannot measure the SLA after the last cycle"),
        "{out}"
    );
    assert_eq!(stack.show("wal_compression"), "off", "{out}");
    assert_eq!(stack.auto_conf(), auto_before, "{out}");
    let changelog =
        std::fs::read_to_string(dir.path().join("CHANGELOG_TUNING.md")).unwrap_or_default();
    assert!(
        changelog.contains("rolled back (no_data)"),
        "{changelog}\n{out}"
    );
    eprintln!("{out}");
}
