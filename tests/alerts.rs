//! `tuner alerts` end to end: the rules it renders from the shipped
//! tuner.yaml and budget pass `promtool check rules`, its generated unit
//! tests pass `promtool test rules` (and fail once a threshold is bent, or
//! a burn-rate pair loses its long or its short window), the committed config/alerts.yml is what it renders, and bad budgets are
//! refused at file:line with nothing written.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs tuner against the shipped config; its DSN needs a password to
/// interpolate, though `alerts` never connects.
fn tuner(args: &[&str]) -> Output {
    Command::new(support::tuner_bin())
        .env("POSTGRES_PASSWORD", "unused")
        .env("PG_PORT", "1")
        .env("PROM_PORT", "1")
        .env_remove("TUNER_BUDGET")
        .env_remove("TUNER_PROFILE")
        .arg("--config")
        .arg(repo().join("config/tuner.yaml"))
        .args(args)
        .output()
        .expect("run tuner")
}

/// The unit test file with only the scenarios `keep` accepts (by name):
/// promtool's time grows with every scenario's span, and the window
/// scenarios span up to a day.
fn only_tests(path: &Path, keep: impl Fn(&str) -> bool) {
    let text = std::fs::read_to_string(path).unwrap();
    let (head, list) = text.split_once("\ntests:\n").expect("a tests: list");
    let items: Vec<&str> = list.split_inclusive("\n- name: ").collect();
    // Each chunk ends with the next item's "- name: " prefix: rebuild items.
    let mut rebuilt = Vec::new();
    let mut prefix = String::new();
    for chunk in items {
        let body = chunk.strip_suffix("- name: ").unwrap_or(chunk);
        let item = format!("{prefix}{body}");
        prefix = "- name: ".to_string();
        let name = item.lines().next().unwrap_or("");
        if keep(name) {
            rebuilt.push(item.trim_end_matches('\n').to_string());
        }
    }
    assert!(!rebuilt.is_empty(), "no test kept");
    std::fs::write(path, format!("{head}\ntests:\n{}\n", rebuilt.join("\n"))).unwrap();
}

fn is_window_scenario(name: &str) -> bool {
    name.contains(" pair ")
}

fn promtool(args: &[&str]) -> Output {
    Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (Debian package prometheus; scripts/setup.sh installs it)")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn render(dir: &Path, budget: &Path) -> (PathBuf, PathBuf) {
    let rules = dir.join("alerts.yml");
    let tests = dir.join("alerts_test.yml");
    let out = tuner(&[
        "alerts",
        "--budget",
        budget.to_str().unwrap(),
        "--file",
        rules.to_str().unwrap(),
        "--tests",
        tests.to_str().unwrap(),
        "--no-baseline",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (rules, tests)
}

#[test]
fn generated_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, tests) = render(dir.path(), &repo().join("config/budget.yaml"));
    let check = promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    let run = promtool(&["test", "rules", tests.to_str().unwrap()]);
    assert!(
        run.status.success(),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );

    let body = std::fs::read_to_string(&rules).unwrap();
    for name in [
        "CpuTemperatureHigh",
        "HighIOWait",
        "WalSpikes",
        "P95WriteLatencyHigh",
    ] {
        assert!(
            body.contains(&format!("alert: {name}\n")),
            "{name} missing:\n{body}"
        );
    }
    assert_eq!(body.matches("tuning_trigger: 'true'").count(), 4, "{body}");
    // Exact decimals: 14.4 x 0.1% and 6 x 0.1%, not 0.014400000000000001.
    assert!(body.contains("> 0.0144\n"), "{body}");
    assert!(body.contains("> 0.006\n"), "{body}");
    assert!(body.contains("slo:sli_events:rate1h{slo=\"write_availability\"} * 3600 >= 100"));
    let unit = std::fs::read_to_string(&tests).unwrap();
    assert!(unit.matches("- name: ").count() >= 20, "{unit}");
    assert!(
        unit.contains("exp_alerts: []"),
        "no quiet scenario:\n{unit}"
    );
}

#[test]
fn the_unit_tests_catch_a_bent_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, tests) = render(dir.path(), &repo().join("config/budget.yaml"));
    only_tests(&tests, |name| !is_window_scenario(name));
    let body = std::fs::read_to_string(&rules).unwrap();
    for (from, to) in [
        (
            "tuner:p95_write_latency > 200",
            "tuner:p95_write_latency >= 200",
        ),
        ("tuner:io_wait >= 25", "tuner:io_wait > 25"),
        ("> 0.001\n", "> 0.002\n"),
        ("* 3600 >= 100", "* 3600 >= 1"),
    ] {
        assert!(body.contains(from), "{from} not in the rules");
        std::fs::write(&rules, body.replacen(from, to, 1)).unwrap();
        let run = promtool(&["test", "rules", tests.to_str().unwrap()]);
        assert!(
            !run.status.success(),
            "the tests still pass with {from:?} -> {to:?}"
        );
    }
}

/// A pair whose rule lost one of its windows fires where only the other
/// window is over: the window scenarios (quiet with only the long, or only
/// the short window over the burn rate) must catch it, for a page and a
/// ticket pair.
#[test]
fn the_window_scenarios_catch_a_pair_without_its_long_or_short_window() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, tests) = render(dir.path(), &repo().join("config/budget.yaml"));
    let unit = std::fs::read_to_string(&tests).unwrap();
    for (tier, pair) in [
        ("page", "1h / 5m"),
        ("page", "6h / 30m"),
        ("ticket", "1d / 2h"),
        ("ticket", "3d / 6h"),
    ] {
        for shape in [
            "only the long window over, must not fire",
            "only the short window over, must not fire",
            "both windows over, must fire",
        ] {
            assert!(
                unit.contains(&format!("{tier} pair {pair} at ")) && unit.contains(shape),
                "no {tier} {pair} scenario with {shape}"
            );
        }
    }
    let body = std::fs::read_to_string(&rules).unwrap();
    let slo = "{slo=\"write_availability\"}";
    for (line, keep) in [
        // The page pair 1h / 5m without its short window.
        (
            format!("and slo:sli_error:ratio_rate5m{slo} > 0.0144"),
            "page pair 1h / 5m",
        ),
        // The ticket pair 3d / 6h without its long window.
        (
            format!("slo:sli_error:ratio_rate3d{slo} > 0.001"),
            "ticket pair 3d / 6h",
        ),
    ] {
        std::fs::write(&rules, without_condition(&body, &line)).unwrap();
        std::fs::write(&tests, &unit).unwrap();
        only_tests(&tests, |name| name.contains(keep));
        let run = promtool(&["test", "rules", tests.to_str().unwrap()]);
        assert!(
            !run.status.success(),
            "{keep}'s scenarios still pass without {line:?}"
        );
    }
}

/// The rules without the condition on `line`; when it opened its branch,
/// the next condition loses its `and`.
fn without_condition(rules: &str, line: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut lines = rules.lines();
    let mut found = false;
    while let Some(l) = lines.next() {
        if found || l.trim() != line {
            out.push(l.to_string());
            continue;
        }
        found = true;
        if !line.starts_with("and ") {
            if let Some(next) = lines.next() {
                out.push(next.replacen("and ", "", 1));
            }
        }
    }
    assert!(found, "{line:?} not in the rules:\n{rules}");
    out.join("\n") + "\n"
}

#[test]
fn committed_alerts_file_is_what_tuner_alerts_renders() {
    let out = tuner(&["alerts", "--stdout", "--no-baseline"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let committed = std::fs::read_to_string(repo().join("config/alerts.yml")).unwrap();
    assert!(
        text(&out.stdout) == committed,
        "config/alerts.yml is stale: run `tuner alerts --no-baseline` from the repository root"
    );
}

#[test]
fn dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("alerts.yml");
    let out = tuner(&[
        "alerts",
        "--dry-run",
        "--file",
        rules.to_str().unwrap(),
        "--tests",
        dir.path().join("t.yml").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("would write"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn bad_budgets_are_refused_at_file_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("alerts.yml");
    std::fs::write(&rules, "old rules\n").unwrap();
    let budget = dir.path().join("budget.yaml");
    let cases = [
        (
            "objectives:\n  lat:\n    metric: p95_write_latency\n    critical: \"> 200ms\"\nslos:\n  avail:\n    objective: 100\n    good: ok_total\n    bad: failed_total\n",
            "budget.yaml:7:5: slos.avail.objective: must lie strictly between 0 and 100",
        ),
        (
            "objectives:\n  lat:\n    metric: p95_write_latency\n    critical: \"> 200ms\"\nslos:\n  avail:\n    objective: 99.9\n    period: 1d\n    good: ok_total\n    bad: failed_total\n",
            "budget.yaml:8:5: slos.avail.period: the ticket window of 3d does not fit the SLO period of 1d",
        ),
        (
            "objectives:\n  lat:\n    metric: p95_latency\n    critical: \"> 200ms\"\n",
            "budget.yaml:2:3: objectives.lat.metric: unknown metric \"p95_latency\"",
        ),
        (
            "objectives:\n  lat:\n    metric: p95_write_latency\n    critical: \"> 200ms\"\nalerting:\n  severities: {urgent: critical}\n",
            "unknown tier \"urgent\"",
        ),
        (
            "objectives:\n  lat:\n    metric: p95_write_latency\n    critical: \"> 200ms\"\nslos:\n  avail:\n    objective: 99.9\n    good: ok_total{code=~\"2..\"}\n    total: all_total\n",
            "budget.yaml:8:5: slos.avail.good: \"ok_total{code=~\\\"2..\\\"}\" is not a counter selector",
        ),
    ];
    for (body, expected) in cases {
        std::fs::write(&budget, body).unwrap();
        let out = tuner(&[
            "alerts",
            "--budget",
            budget.to_str().unwrap(),
            "--file",
            rules.to_str().unwrap(),
        ]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}\n{err}");
        assert!(err.contains(expected), "wanted {expected:?} in:\n{err}");
        assert_eq!(std::fs::read_to_string(&rules).unwrap(), "old rules\n");
    }
}
