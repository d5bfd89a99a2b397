use super::*;
use crate::gate::evaluate::{evaluate, State};
use crate::gate::Budget;

const BUDGET: &str = r#"
objectives:
  p99:
    metric: latency
    stat: p99
    critical: "> 20ms"
  tps:
    metric: throughput
    critical: "< 10/s"
  failed:
    metric: error_rate
    critical: "> 1%"
"#;

/// Per-transaction lines as pgbench 15 writes them, latencies 1..=n ms,
/// one transaction ending every 10 ms, every 50th failed.
fn log(n: u64, client: u64) -> String {
    let mut out = String::new();
    for i in 0..n {
        let end_us = 1_700_000_000_000_000u64 + i * 10_000;
        let time = if i % 50 == 49 {
            "failed".to_string()
        } else {
            ((i + 1) * 1000).to_string()
        };
        out.push_str(&format!(
            "{client} {i} {time} 0 {} {}\n",
            end_us / 1_000_000,
            end_us % 1_000_000
        ));
    }
    out
}

fn run(files: &[String], budget: &str) -> Result<crate::gate::Report, String> {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let p = dir.path().join(format!("pgbench_log.123.{i}"));
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    let budget = Budget::from_str(Path::new("budget.yaml"), budget).map_err(|e| e.to_string())?;
    let reading = read(&paths, &budget.objectives).map_err(|e| e.to_string())?;
    evaluate(&budget, reading, 0.0).map_err(|e| e.to_string())
}

#[test]
fn latencies_throughput_and_failures_from_the_raw_lines_of_every_file() {
    let r = run(&[log(100, 0), log(100, 1)], BUDGET).unwrap();
    let p99 = &r.results[0];
    assert_eq!(p99.samples, Some(196));
    // Two copies of 1..=100 ms less 50 and 100 (failed): rank 0.99 * 195
    // lies between the second 98 and the first 99.
    assert!((p99.value.unwrap() - 98.05).abs() < 1e-9, "{p99:?}");
    assert_eq!(p99.state, State::Fail);
    assert_eq!(r.results[2].value, Some(2.0));
    let tps = r.results[1].value.unwrap();
    assert!(tps > 100.0 && tps < 200.0, "{tps}");
}

#[test]
fn aggregated_truncated_and_foreign_logs_are_refused() {
    let aggregated = "1700000000 520 2050123 9123456789 1200 25000 0\n".to_string();
    let err = run(&[aggregated], BUDGET).unwrap_err();
    assert!(err.contains("--aggregate-interval"), "{err}");
    let text = log(10, 0);
    let err = run(&[text[..text.len() - 5].to_string()], BUDGET).unwrap_err();
    assert!(
        err.contains("pgbench_log.123.0: line 10: truncated"),
        "{err}"
    );
    let err = run(&[text.replace("0 0 1000 0", "0 0 fast 0")], BUDGET).unwrap_err();
    assert!(err.contains("line 1: time is neither"), "{err}");
    let err = run(&[String::new()], BUDGET).unwrap_err();
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn only_failures_means_no_latency_and_a_failed_budget() {
    let failed: String = (0..5)
        .map(|i| format!("0 {i} failed 0 1700000000 {i}\n"))
        .collect();
    let r = run(&[failed], BUDGET).unwrap();
    assert!(
        r.results.iter().all(|x| x.state == State::Fail),
        "{:?}",
        r.results
    );
    assert_eq!(r.results[2].value, Some(100.0));
}
