use super::*;
use crate::gate::evaluate::{evaluate, State};
use crate::gate::Budget;

/// Written by Locust 2.47 (`locust --headless --csv out`), trimmed to
/// three rows; tests/check.rs runs the real tool.
const STATS: &str = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,/,193,0,4,4.709546559587264,1.875501000085933,39.46963899988987,497.0,64.49499481012913,0.0,4,4,4,5,7,10,20,27,39,39,39
GET,\"missing, page\",178,178,4,4.571664955060288,1.9055450002269936,36.13272200027495,335.0,59.482430446647584,59.482430446647584,4,4,5,5,7,11,14,27,36,36,36
,Aggregated,371,178,4,4.643393121296693,1.875501000085933,39.46963899988987,419.27493261455527,123.97742525677671,59.482430446647584,4,4,4,5,7,11,17,27,39,39,39
";

fn run(stats: &str, budget: &str) -> Result<crate::gate::Report, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out_stats.csv");
    std::fs::write(&path, stats).unwrap();
    let budget = Budget::from_str(Path::new("budget.yaml"), budget).map_err(|e| e.to_string())?;
    let reading = read(&path, &budget.objectives).map_err(|e| e.to_string())?;
    evaluate(&budget, reading, 0.0).map_err(|e| e.to_string())
}

const BUDGET: &str = r#"
objectives:
  p95:
    metric: latency
    stat: p95
    critical: "> 11ms"
  root_p99:
    metric: latency
    stat: p99
    endpoint: /
    critical: "> 50ms"
  rps:
    metric: throughput
    critical: "< 100/s"
  errors:
    metric: error_rate
    critical: "> 5%"
"#;

#[test]
fn rows_and_columns_are_read_with_locusts_rounding() {
    let r = run(STATS, BUDGET).unwrap();
    let p95 = &r.results[0];
    assert_eq!(p95.value, Some(11.0));
    assert_eq!(p95.shown, "11ms (±0.5ms)");
    // 11 may be 10.5 or 11.4: neither surely past 11ms nor surely under.
    assert_eq!(p95.state, State::Warn, "{}", p95.reason);
    assert_eq!(
        (r.results[1].value, r.results[1].state),
        (Some(27.0), State::Pass)
    );
    assert_eq!(r.results[1].source, "/ 99%");
    assert_eq!(r.results[2].state, State::Pass);
    let errors = &r.results[3];
    assert!((errors.value.unwrap() - 178.0 / 371.0 * 100.0).abs() < 1e-9);
    assert_eq!(errors.state, State::Fail);
    assert_eq!(rounding(147.0), 5.0);
    assert_eq!(rounding(3432.0), 50.0);
}

#[test]
fn endpoints_by_name_or_type_and_name() {
    let budget = "objectives:\n  x:\n    metric: error_rate\n    endpoint: \"GET missing, page\"\n    critical: \"> 1%\"\n";
    let r = run(STATS, budget).unwrap();
    assert_eq!(r.results[0].value, Some(100.0));
    let err = run(STATS, &budget.replace("GET missing, page", "/login")).unwrap_err();
    assert!(err.contains("no row named \"/login\""), "{err}");
}

#[test]
fn zero_requests_fail_and_damaged_files_are_errors() {
    let idle = STATS.replace(",Aggregated,371,178,4,", ",Aggregated,0,0,N/A,");
    let r = run(&idle, BUDGET);
    // N/A in the median is allowed; the 95% column is still a number here.
    let r = r.unwrap();
    assert!(r
        .results
        .iter()
        .filter(|x| x.name != "root_p99")
        .all(|x| x.state == State::Fail));
    assert!(
        r.results[0].reason.contains("no requests"),
        "{}",
        r.results[0].reason
    );

    let cut = &STATS[..STATS.len() - 40];
    let err = run(cut, BUDGET).unwrap_err();
    assert!(
        err.contains("out_stats.csv: line 4:") && err.contains("truncated"),
        "{err}"
    );
    let no_agg: String = STATS.lines().take(3).map(|l| format!("{l}\n")).collect();
    let err = run(&no_agg, BUDGET).unwrap_err();
    assert!(
        err.contains("no row named \"Aggregated\"") && err.contains("truncated"),
        "{err}"
    );
    let err = run(
        &STATS.replace("99.9%,", "99.8%,"),
        &BUDGET.replace("stat: p99\n", "stat: p99.9\n"),
    )
    .unwrap_err();
    assert!(err.contains("no \"99.9%\" column"), "{err}");
    let err = run(&STATS.replace("Failure Count", "Failures"), BUDGET).unwrap_err();
    assert!(err.contains("no \"Failure Count\" column"), "{err}");
}
