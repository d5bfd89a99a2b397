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

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tuner::config::watch::{PromQueries, WatchConfig};
use tuner::metrics::PrometheusClient;
use tuner::watch::prometheus::PrometheusSource;
use tuner::watch::source::{Cpu, Managed, UsageSource};
use tuner::watch::{decide, Reading, WatchState};

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let d = dir.path();
    std::fs::create_dir_all(d.join("textfile")).expect("textfile dir");
    let sizes = [10usize, 100, 1000];
    let max = *sizes.iter().max().unwrap_or(&1000);
    let mut text = String::new();
    for i in 0..max {
        let name = format!("svc-{i}");
        text.push_str(&format!(
            "container_cpu_cores{{name=\"{name}\"}} {}\ncontainer_memory_working_set_bytes{{name=\"{name}\"}} {}\ncontainer_spec_cpu_cores{{name=\"{name}\"}} 1\ncontainer_spec_memory_limit_bytes{{name=\"{name}\"}} 268435456\ncontainer_oom_events_total{{name=\"{name}\"}} 0\n",
            (i % 100) as f64 / 100.0,
            (i % 200 + 20) << 20
        ));
    }
    std::fs::write(d.join("textfile/cadvisor.prom"), text).expect("series");
    let exporter_port = crate::support::free_port();
    let _exporter = Server(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .arg(format!(
                "--collector.textfile.directory={}/textfile",
                d.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node_exporter"),
    );
    let prom_port = crate::support::free_port();
    std::fs::write(
        d.join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"),
    )
    .expect("prometheus.yml");
    let _prometheus = Server(
        Command::new("prometheus")
            .arg(format!("--config.file={}/prometheus.yml", d.display()))
            .arg(format!("--storage.tsdb.path={}/data", d.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus"),
    );
    let url = format!("http://127.0.0.1:{prom_port}");
    let client = PrometheusClient::new(&url, Duration::from_secs(10)).expect("client");
    let source = PrometheusSource {
        client: &client,
        queries: PromQueries {
            cpu: "container_cpu_cores".into(),
            memory: "container_memory_working_set_bytes".into(),
            cpu_limit: "container_spec_cpu_cores".into(),
            memory_limit: "container_spec_memory_limit_bytes".into(),
            oom: "container_oom_events_total".into(),
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
