//! Watch-cycle benchmark over Prometheus, compiled into `tests/watch.rs`
//! as the ignored test `bench_watch_prometheus_cycle` and run by
//! `bench/watch.sh`.
//!
//! A real node_exporter serves synthetic cAdvisor-style series for N
//! containers through its textfile collector; a real Prometheus scrapes
//! it. One cycle is what `tuner watch` does per check with
//! `source: prometheus`: `PrometheusSource::read` for all N containers,
//! then the policy for each. Timed over `TUNER_BENCH_RUNS` cycles (default
//! 5) for N = 10, 100 and 1,000; the queries per cycle are counted by
//! Prometheus itself (`prometheus_http_requests_total` of
//! `/api/v1/query` on its own /metrics), so "constant" is measured, not assumed. Writes a
//! markdown table to `TUNER_BENCH_OUT` (default target/bench/watch_cycle.md).

use std::process::Command;
use std::time::{Duration, Instant};

use tuner::config::watch::{PromQueries, WatchConfig};
use tuner::metrics::PrometheusClient;
use tuner::watch::prometheus::PrometheusSource;
use tuner::watch::source::{Cpu, Managed, UsageSource};
use tuner::watch::{decide, Reading, WatchState};

use crate::support::cadvisor::{self, Cadvisor, Series};

fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    format!("{:.1} / {:.1} / {:.1}", v[0], median, v[n - 1])
}

/// Queries Prometheus has answered so far, from its own /metrics (it does
/// not scrape itself here, and reading /metrics is not a query).
fn query_count(url: &str) -> f64 {
    let out = Command::new("curl")
        .args(["-sf", &format!("{url}/metrics")])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.starts_with("prometheus_http_requests_total{")
                && l.contains("handler=\"/api/v1/query\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by bench/watch.sh"]
async fn bench_watch_prometheus_cycle() {
    let runs: usize = std::env::var("TUNER_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let out_path =
        std::env::var("TUNER_BENCH_OUT").unwrap_or_else(|_| "target/bench/watch_cycle.md".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let sizes = [10usize, 100, 1000];
    let max = *sizes.iter().max().unwrap_or(&1000);
    let series: Vec<Series> = (0..max)
        .map(|i| Series {
            name: format!("svc-{i}"),
            cpu_cores: (i % 100) as f64 / 100.0,
            memory: ((i % 200 + 20) as u64) << 20,
            cpu_limit: 1.0,
            memory_limit: 256 << 20,
        })
        .collect();
    let stack = Cadvisor::start(dir.path(), &series);
    let url = stack.url.clone();
    let client = PrometheusClient::new(&url, Duration::from_secs(10)).expect("client");
    let source = PrometheusSource {
        client: &client,
        queries: PromQueries {
            cpu: cadvisor::CPU.into(),
            memory: cadvisor::MEMORY.into(),
            cpu_limit: cadvisor::CPU_LIMIT.into(),
            memory_limit: cadvisor::MEMORY_LIMIT.into(),
            oom: cadvisor::OOM.into(),
            name_label: "name".into(),
        },
    };
    let all: Vec<Managed> = (0..max)
        .map(|i| Managed {
            service: format!("svc-{i}"),
            container_id: format!("id-{i}"),
            container_name: format!("svc-{i}"),
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let samples = source.read(&all).await;
        if samples.values().all(|s| s.is_ok()) {
            break;
        }
        assert!(Instant::now() < deadline, "series never all scraped");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cfg = WatchConfig::default();
    let mut table = String::from(
        "| services | cycle ms (min / median / max) | queries per cycle | services read |\n|---|---|---|---|\n",
    );
    for n in sizes {
        let managed = &all[..n];
        let mut times = Vec::new();
        let mut queries = Vec::new();
        let mut read = 0;
        for _ in 0..runs {
            let before = query_count(&url);
            let started = Instant::now();
            let samples = source.read(managed).await;
            let mut state = WatchState::default();
            for m in managed {
                if let Some(Ok(s)) = samples.get(&m.container_id) {
                    let cpu_used = match s.cpu {
                        Cpu::Rate(r) => Some(r),
                        Cpu::Counter(_) => None,
                    };
                    let reading = Reading {
                        container_id: m.container_id.clone(),
                        cpu_used,
                        cpu_limit: s.cpu_limit,
                        memory_used: s.memory_used,
                        memory_limit: s.memory_limit,
                        oom_kills: s.oom_kills,
                    };
                    let st = state.services.entry(m.service.clone()).or_default();
                    decide(&cfg, st, &reading, s.read_at);
                }
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            read = samples.values().filter(|s| s.is_ok()).count();
            queries.push(query_count(&url) - before);
        }
        let q = queries.iter().cloned().fold(f64::NAN, f64::max);
        table.push_str(&format!("| {n} | {} | {q:.0} | {read} |\n", spread(times)));
    }
    if let Some(parent) = std::path::Path::new(&out_path).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&out_path, &table).expect("write table");
    println!("{table}");
}
