//! A metric whose scrape target stops in the middle of the observation
//! window: the real exporter is killed while a real Prometheus keeps
//! answering, so the query returns an empty result (not an error). Missing
//! data fails closed: the change is rolled back at once as `no_data`, with
//! the metric named, and PostgreSQL ends as it was.

use std::time::{Duration, Instant};

use crate::support::tune::{
    assert_nothing_to_roll_back, spawn_tuner, tuning_log, wait_for, write_config, Stack, TuneConfig,
};

/// A goal read from the exporter alone (`pg_up` is 1 while it is scraped),
/// violated on purpose so that a change is made.
const FROM_EXPORTER: &str = r#"metrics:
  wal_rate:
    query: sum(pg_up) * 5000
    unit: bytes_per_second
    window: 30s
    symptom: high_wal_rate
"#;

/// "... has no data at sample N of M ...": where the window ended.
fn ended_at(out: &str) -> Option<(u32, u32)> {
    let rest = &out[out.find("has no data at sample ")? + "has no data at sample ".len()..];
    let (n, rest) = rest.split_once(" of ")?;
    let m: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((n.parse().ok()?, m.parse().ok()?))
}

#[test]
fn a_scrape_target_that_stops_mid_window_rolls_the_change_back_at_once_as_no_data() {
    let mut stack = Stack::start_with(&[]);
    let auto_before = stack.auto_conf();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &TuneConfig {
            prometheus_url: &stack.prometheus_url,
            dsn: &stack.pg.dsn(),
            metrics: FROM_EXPORTER,
            objectives: "    wal_rate: \"<= 1000\"",
            levers: "levers:\n  wal_compression:\n    kind: postgres\n    parameter: wal_compression\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [\"lz4\"]\n",
            observe: "30s",
            settle: "1s",
            tune_extra: "",
        },
    );
    // The run starts by reading the SLA as the mean of the last window from
    // Prometheus: wait until it holds a few scrapes of the exporter, or the
    // run ends at once with "cannot tell" (no data yet).
    assert!(
        wait_for(Duration::from_secs(60), || stack
            .instant("count_over_time(pg_up[1m])")
            .is_some_and(|n| n >= 5.0)),
        "the exporter was never scraped: {}",
        stack.logs()
    );
    let mut child = spawn_tuner(
        dir.path(),
        &config,
        &["tune", "--max-cycles", "1"],
        "silent",
    );
    let observing = wait_for(Duration::from_secs(120), || {
        tuning_log(dir.path())
            .iter()
            .any(|l| l["phase"] == "observe")
    });
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    if !observing {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "never observed\n--- tuner stdout\n{}\n--- tuner stderr\n{}\n--- tuning.log\n{}\n--- servers\n{}",
            read("silent.out"),
            read("silent.err"),
            read("tuning.log"),
            stack.logs()
        );
    }
    assert_eq!(stack.show("wal_compression"), "lz4");
    stack.stop_exporter();

    // Bounded: the window alone would last 30 s more.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tuner did not end after its target stopped");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = read("silent.out") + &read("silent.err");
    // Exit 3: the SLA is read over the window before the change (a WAL
    // goal's windows start at a CHECKPOINT), and it is still violated.
    assert_eq!(status.code(), Some(3), "{out}");
    assert!(out.contains("no_data → rolled back"), "{out}");
    // The window ended at the sample that came back empty, not at its end,
    // and the reason names the metric and what was missing.
    assert!(
        out.contains("wal_rate has no data at sample")
            && out.contains("an empty result, NaN, or its series disappeared"),
        "{out}"
    );
    let (n, m) = ended_at(&out).unwrap_or_else(|| panic!("no sample count: {out}"));
    assert!(n < m, "ended early: sample {n} of {m}\n{out}");
    assert_eq!(stack.show("wal_compression"), "off", "{out}");
    assert_eq!(stack.auto_conf(), auto_before, "{out}");
    let changelog = read("CHANGELOG_TUNING.md");
    assert!(changelog.contains("rolled back (no_data)"), "{changelog}");
    assert_nothing_to_roll_back(&config, Duration::from_secs(60));
}
