use super::*;
use crate::gate::evaluate::{evaluate, State};
use crate::gate::Budget;

/// k6's legacy `--summary-export` shape (k6 `js/summary-wrapper.js`,
/// `oldJSONSummary`): `metrics.<name>` is the metric's values, thresholds
/// `true` when failed, a rate's `passes` the count of non-zero samples.
const SUMMARY: &str = r#"{
    "root_group": {"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e", "groups": {}, "checks": {}},
    "metrics": {
        "http_req_duration": {"avg": 18.2, "min": 4.1, "med": 15.0, "max": 97.3, "p(90)": 31.7, "p(95)": 42.5,
            "thresholds": {"p(95)<500": false}},
        "http_req_duration{expected_response:true}": {"avg": 18.2, "min": 4.1, "med": 15.0, "max": 97.3, "p(90)": 31.7, "p(95)": 42.5},
        "http_req_duration{name:login}": {"avg": 0, "min": 0, "med": 0, "max": 0, "p(90)": 0, "p(95)": 0,
            "thresholds": {"p(95)<300": false}},
        "http_reqs": {"count": 1200, "rate": 39.8},
        "http_req_failed": {"passes": 6, "fails": 1194, "value": 0.005, "thresholds": {"rate<0.01": false}},
        "checks": {"passes": 1194, "fails": 6, "value": 0.995, "thresholds": {"rate>0.999": true}},
        "vus": {"value": 10, "min": 1, "max": 10}
    }
}"#;

const BUDGET: &str = r#"
objectives:
  p95:
    metric: latency
    stat: p95
    warning: "> 40ms"
    critical: "> 100ms"
  rps:
    metric: throughput
    critical: "< 10/s"
  errors:
    metric: error_rate
    critical: "> 1%"
  ok_p90:
    metric: http_req_duration
    tags: {expected_response: "true"}
    stat: p90
    critical: "> 50ms"
"#;

fn run(summary: &str, budget: &str) -> Result<crate::gate::Report, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    std::fs::write(&path, summary).unwrap();
    let budget = Budget::from_str(Path::new("budget.yaml"), budget).map_err(|e| e.to_string())?;
    let reading = read(&path, &budget.objectives).map_err(|e| e.to_string())?;
    evaluate(&budget, reading, 0.0).map_err(|e| e.to_string())
}

#[test]
fn values_and_k6_thresholds_are_read_the_right_way_round() {
    let r = run(SUMMARY, BUDGET).unwrap();
    let row = |name: &str| r.results.iter().find(|x| x.name == name).unwrap();
    assert_eq!(row("p95").value, Some(42.5));
    assert_eq!(row("p95").state, State::Warn);
    assert_eq!(row("p95").samples, Some(1200), "from http_reqs.count");
    assert_eq!(
        (row("rps").value, row("rps").state),
        (Some(39.8), State::Pass)
    );
    assert_eq!(row("errors").value, Some(0.5));
    assert_eq!(
        row("ok_p90").source,
        "http_req_duration{expected_response:true} p(90)"
    );
    // `false` is a passed threshold, `true` a failed one.
    assert_eq!(
        row("k6 threshold http_req_duration: p(95)<500").state,
        State::Pass
    );
    assert_eq!(row("k6 threshold checks: rate>0.999").state, State::Fail);
    // A threshold k6 "passed" on a submetric that never got a sample.
    let empty = row("k6 threshold http_req_duration{name:login}: p(95)<300");
    assert_eq!(empty.state, State::Fail);
    assert!(empty.reason.contains("without samples"), "{}", empty.reason);
    assert_eq!(r.verdict, State::Fail);
}

#[test]
fn an_empty_trend_fails_for_want_of_samples() {
    let budget = "objectives:\n  login:\n    metric: latency\n    tags: {name: login}\n    stat: p95\n    critical: \"> 300ms\"\n";
    let r = run(SUMMARY, budget).unwrap();
    assert_eq!(r.results[0].state, State::Fail);
    assert!(
        r.results[0].reason.contains("no samples"),
        "{}",
        r.results[0].reason
    );
}

#[test]
fn p99_without_the_stat_exported_says_how_to_get_it() {
    let budget = BUDGET.replace("stat: p95", "stat: p99");
    let err = run(SUMMARY, &budget).unwrap_err();
    assert!(
        err.contains("summary.json: metrics.http_req_duration has no \"p(99)\""),
        "{err}"
    );
    assert!(
        err.contains("--summary-trend-stats") && err.contains("--out json"),
        "{err}"
    );
    // With p(99) exported it is read.
    let with = SUMMARY.replace("\"p(95)\": 42.5,", "\"p(95)\": 42.5, \"p(99)\": 88.0,");
    let r = run(&with, &budget).unwrap();
    assert_eq!(r.results[0].value, Some(88.0));
}

#[test]
fn missing_metrics_and_damaged_files_name_the_file_and_field() {
    let no_reqs = SUMMARY.replace("\"http_reqs\"", "\"http_requests\"");
    let err = run(&no_reqs, BUDGET).unwrap_err();
    assert!(
        err.contains("summary.json: metrics.http_reqs is missing (metrics in the file: checks,"),
        "{err}"
    );
    let cut = &SUMMARY[..SUMMARY.len() / 2];
    let err = run(cut, BUDGET).unwrap_err();
    assert!(err.contains("summary.json: truncated JSON"), "{err}");
    let err = run("{\"state\": {}}", BUDGET).unwrap_err();
    assert!(err.contains("no `metrics` object"), "{err}");
    let bad = SUMMARY.replace("\"rate\": 39.8", "\"rate\": \"fast\"");
    let err = run(&bad, BUDGET).unwrap_err();
    assert!(
        err.contains("metrics.http_reqs.rate is \"fast\", not a number"),
        "{err}"
    );
}
