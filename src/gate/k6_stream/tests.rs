use super::*;
use crate::gate::evaluate::{evaluate, State};
use crate::gate::Budget;
use std::io::Write;

/// Lines in the shape k6's JSON output documents (Metric declarations,
/// then Points), for `requests` requests of which every 10th failed.
fn stream(requests: usize) -> String {
    let mut out = String::new();
    out.push_str(r#"{"type":"Metric","data":{"name":"http_reqs","type":"counter","contains":"default","thresholds":[],"submetrics":null},"metric":"http_reqs"}"#);
    out.push('\n');
    out.push_str(r#"{"type":"Metric","data":{"name":"http_req_duration","type":"trend","contains":"time","thresholds":["p(95)<500"],"submetrics":null},"metric":"http_req_duration"}"#);
    out.push('\n');
    out.push_str(r#"{"type":"Metric","data":{"name":"http_req_failed","type":"rate","contains":"default","thresholds":[],"submetrics":null},"metric":"http_req_failed"}"#);
    out.push('\n');
    for i in 0..requests {
        let time = format!(
            "2024-03-01T12:00:{:02}.{:06}+01:00",
            i / 100,
            (i % 100) * 10_000
        );
        let name = if i % 2 == 0 { "home" } else { "login" };
        let tags = format!(
            r#"{{"method":"GET","name":"{name}","status":"200","url":"http://127.0.0.1/{name}?a=1\u0026b=2"}}"#
        );
        for (metric, value) in [
            ("http_reqs", 1.0),
            ("http_req_duration", (i + 1) as f64),
            ("http_req_failed", if i % 10 == 0 { 1.0 } else { 0.0 }),
        ] {
            out.push_str(&format!(
                r#"{{"type":"Point","data":{{"time":"{time}","value":{value},"tags":{tags}}},"metric":"{metric}"}}"#
            ));
            out.push('\n');
        }
    }
    out
}

const BUDGET: &str = r#"
objectives:
  p95:
    metric: latency
    stat: p95
    critical: "> 200ms"
  login_p50:
    metric: latency
    tags: {name: login}
    stat: p50
    critical: "> 200ms"
  rps:
    metric: throughput
    critical: "< 10/s"
  errors:
    metric: error_rate
    critical: "> 5%"
"#;

fn run_bytes(content: &[u8], budget: &str) -> Result<crate::gate::Report, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k6.json");
    std::fs::write(&path, content).unwrap();
    let budget = Budget::from_str(Path::new("budget.yaml"), budget).map_err(|e| e.to_string())?;
    let reading = read(&path, &budget.objectives).map_err(|e| e.to_string())?;
    evaluate(&budget, reading, 0.0).map_err(|e| e.to_string())
}

#[test]
fn percentiles_rates_and_tags_come_from_the_raw_samples() {
    let r = run_bytes(stream(200).as_bytes(), BUDGET).unwrap();
    // Durations 1..=200 ms: p95 at rank 0.95 * 199 = 189.05.
    assert!(
        (r.results[0].value.unwrap() - 190.05).abs() < 1e-9,
        "{:?}",
        r.results[0]
    );
    assert_eq!(r.results[0].samples, Some(200));
    // login requests are the odd ones: 2, 4, ..., 200 ms; median 101.
    assert_eq!(r.results[1].value, Some(101.0));
    assert_eq!(r.results[1].samples, Some(100));
    // 200 requests over 1.99 s of samples.
    assert!(
        (r.results[2].value.unwrap() - 200.0 / 1.99).abs() < 1e-6,
        "{:?}",
        r.results[2]
    );
    assert_eq!(r.results[3].value, Some(10.0));
    assert_eq!(r.results[3].state, State::Fail);
    assert_eq!(r.results[0].state, State::Pass);
}

#[test]
fn gzip_streams_read_the_same() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(stream(50).as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let plain = run_bytes(stream(50).as_bytes(), BUDGET).unwrap();
    let zipped = run_bytes(&bytes, BUDGET).unwrap();
    for (a, b) in plain.results.iter().zip(&zipped.results) {
        assert_eq!(a.value, b.value);
    }
    let err = run_bytes(&bytes[..bytes.len() / 2], BUDGET).unwrap_err();
    assert!(err.contains("k6.json: truncated"), "{err}");
}

#[test]
fn zero_samples_fail_and_missing_metrics_are_errors() {
    let budget = "objectives:\n  admin:\n    metric: latency\n    tags: {name: admin}\n    stat: p99\n    critical: \"> 1s\"\n";
    let r = run_bytes(stream(20).as_bytes(), budget).unwrap();
    assert_eq!(r.results[0].state, State::Fail);
    assert!(
        r.results[0]
            .reason
            .contains("no samples of http_req_duration{name:admin}"),
        "{}",
        r.results[0].reason
    );

    let budget = "objectives:\n  cache:\n    metric: cache_hits\n    critical: \"< 80%\"\n";
    let err = run_bytes(stream(20).as_bytes(), budget).unwrap_err();
    assert!(err.contains("k6.json: no metric cache_hits in the stream (metrics in it: http_req_duration, http_req_failed, http_reqs)"), "{err}");
}

#[test]
fn damaged_lines_are_named_by_number() {
    let text = stream(5);
    let cut = &text[..text.len() - 30];
    let err = run_bytes(cut.as_bytes(), BUDGET).unwrap_err();
    assert!(err.contains("k6.json: line 18: truncated"), "{err}");
    let bad = text.replacen("\"value\":1,", "\"value\":\"one\",", 1);
    let err = run_bytes(bad.as_bytes(), BUDGET).unwrap_err();
    assert!(err.contains("line 4: data of a http_reqs point"), "{err}");
    let foreign = text.replacen("\"type\":\"Point\"", "\"type\":\"Sample\"", 1);
    let err = run_bytes(foreign.as_bytes(), BUDGET).unwrap_err();
    assert!(err.contains("line 4: type \"Sample\""), "{err}");
}

#[test]
fn k6_times_parse_fast_and_like_chrono() {
    for t in [
        "2017-05-09T14:34:45.239531499+02:00",
        "2024-02-29T23:59:59Z",
        "1999-12-31T00:00:00.5-05:30",
    ] {
        let slow = chrono::DateTime::parse_from_rfc3339(t).unwrap();
        let want = slow.timestamp() as f64 + f64::from(slow.timestamp_subsec_nanos()) / 1e9;
        assert_eq!(fast_epoch(t.as_bytes()), Some(want), "{t}");
    }
    assert_eq!(fast_epoch(b"yesterday"), None);
    assert!(epoch_seconds("09/05/2017").is_none());
}

#[test]
fn the_skip_by_name_never_skips_what_it_cannot_read() {
    let by_metric = vec![("http_req_duration".to_string(), vec![0], false)];
    let skip = |line: &str| skippable(line.as_bytes(), &by_metric);
    assert!(skip(
        r#"{"type":"Point","data":{"value":1},"metric":"vus"}"#
    ));
    assert!(!skip(
        r#"{"type":"Point","data":{"value":1},"metric":"http_req_duration"}"#
    ));
    assert!(!skip(
        r#"{"type":"Metric","data":{"type":"gauge"},"metric":"vus"}"#
    ));
    // Odd endings fall through to the full parse, which reports them.
    assert!(!skip(r#"{"type":"Point","data":{},"metric":"}"#));
    assert!(!skip(r#"{"type":"Point","data":{},"metric":"a\"b"}"#));
}
