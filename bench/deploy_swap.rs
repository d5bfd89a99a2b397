//! Swap benchmark, compiled into `tests/haproxy.rs` as the ignored test
//! `bench_deploy_swap` and run by `bench/run.sh`.
//!
//! In one run, on the same busybox httpd image (Docker HEALTHCHECK every
//! 1 s, healthy within ~1 s):
//! - `tuner`: the real `target/release/tuner deploy <svc> <cpu> <mem>
//!   --output json` with `deploy.router` pointing at a harness HAProxy,
//!   under load through HAProxy's frontend; time = the CLI's wall time
//!   (what a user waits for, drain included), with the time until green
//!   takes traffic and the drain alone from its per-phase report.
//! - `router` (not in the default set): the same swap driven by this
//!   harness through `HaproxyRouter` and the docker CLI, for reference.
//! - `naive`: `docker rm -f` + `docker run` with the new limits on the same
//!   port until Docker says healthy, under load straight at the port.
//! - `swarm`: `docker service update --update-order start-first` on a
//!   single-node swarm (CLI wall time). The routing mesh does not work here
//!   (no IPVS) and dnsrr is only reachable from inside the overlay, so no
//!   load from 127.0.0.1 can measure its failures.
//!
//! Environment: `TUNER_BENCH_RUNS` (default 5), `TUNER_BENCH_OUT` (markdown
//! table, default `target/bench/deploy_swap.md`), `TUNER_BENCH_METHODS`
//! (comma list of `tuner`, `router`, `router-docker`, `naive`, `swarm`;
//! default `tuner,naive,swarm`),
//! `TUNER_BENCH_RATE` (req/s, default 400).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::haproxy::HaproxyServer;
use crate::support::load::{Load, LoadConfig, LoadReport};
use crate::support::swap::{self, docker, Containers, IMAGE};
use tuner::deploy::router::haproxy::{HaproxyConfig, HaproxyRouter};
use tuner::deploy::router::{Backend, Router};

/// Alternating limits, as a resize back and forth would.
const LIMITS: [(&str, &str); 2] = [("1.0", "128M"), ("0.5", "64M")];

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Row {
    name: String,
    times: Vec<Duration>,
    extra: String,
    failed: Option<(u64, u64)>,
    rate: Option<f64>,
}

fn stats(times: &[Duration]) -> String {
    if times.is_empty() {
        return "-".to_string();
    }
    let mut v: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    format!("{:.2} / {:.2} / {:.2} s", v[0], median, v[v.len() - 1])
}

fn load_config(port: u16) -> LoadConfig {
    let mut c = LoadConfig::new(port, "/id");
    c.rate = env_or("TUNER_BENCH_RATE", 400.0);
    c.workers = 32;
    c.max_duration = Duration::from_secs(60);
    c.max_requests = 50_000;
    c
}

fn merge(total: &mut LoadReport, r: &LoadReport) {
    total.sent += r.sent;
    total.ok += r.ok;
    total.elapsed += r.elapsed;
    for (k, v) in &r.failures {
        *total.failures.entry(k.clone()).or_default() += v;
    }
}

async fn bench_router(runs: usize, wait_docker: bool) -> Vec<Row> {
    let containers = Containers::new(if wait_docker { "bd" } else { "bh" });
    let mut blue_web = containers.run("blue", LIMITS[1].0, LIMITS[1].1, None);
    let haproxy = HaproxyServer::start(&[("web0", blue_web.address())]);
    let router = HaproxyRouter::new(HaproxyConfig::new(haproxy.socket(), "app")).unwrap();
    let mut blue = Backend {
        name: "web0".into(),
        address: blue_web.address(),
    };
    router
        .wait_healthy(&blue, Duration::from_secs(30))
        .await
        .unwrap();
    let (mut totals, mut drains, mut to_green) = (vec![], vec![], vec![]);
    let mut load_total = LoadReport::default();
    for i in 0..runs {
        let (cpus, mem) = LIMITS[i % 2];
        let load = Load::start(load_config(haproxy.frontend_port));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let slot = format!("web{}", i + 1);
        let (green, green_web, t) = swap::router_swap(
            &router,
            &containers,
            (&blue, &blue_web),
            &slot,
            cpus,
            mem,
            wait_docker,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let report = load.finish().await;
        let label = if wait_docker {
            "router-docker"
        } else {
            "router"
        };
        eprintln!("{label} run {i}: {t:?}; {}", report.summary());
        merge(&mut load_total, &report);
        totals.push(t.without_drain());
        drains.push(t.drain);
        to_green.push(t.to_green);
        (blue, blue_web) = (green, green_web);
    }
    let name = if wait_docker {
        "harness-driven blue-green via HaproxyRouter, green promoted once Docker-healthy + HAProxy L7OK"
    } else {
        "harness-driven blue-green via HaproxyRouter, green promoted on HAProxy L7OK (inter 500ms, fastinter 100ms)"
    };
    vec![Row {
        name: name.to_string(),
        times: totals,
        extra: format!(
            "traffic on green after {}; drain {}",
            stats(&to_green),
            stats(&drains)
        ),
        failed: Some((load_total.failed(), load_total.sent)),
        rate: Some(load_total.sent as f64 / load_total.elapsed.as_secs_f64().max(1e-9)),
    }]
}

/// The swap through the real CLI: `target/release/tuner deploy` against
/// the harness's HAProxy (backend `app`, blue's server found by address).
async fn bench_tuner(runs: usize) -> Vec<Row> {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/tuner");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release --bin tuner` (bench/run.sh does)",
        bin.display()
    );
    let containers = Containers::new("bt");
    let (blue_web, haproxy, _router) =
        swap::blue_behind_haproxy(&containers, "web0", LIMITS[1].0, LIMITS[1].1).await;
    let config = swap::TunerConfig::haproxy(&haproxy.socket(), "app");
    let (mut walls, mut drains, mut to_green) = (vec![], vec![], vec![]);
    let mut load_total = LoadReport::default();
    for i in 0..runs {
        let (cpus, mem) = LIMITS[i % 2];
        let load = Load::start(load_config(haproxy.frontend_port));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let run = swap::tuner_deploy(
            &bin,
            &config.path(),
            &blue_web.name,
            cpus,
            mem,
            Duration::from_secs(90),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let report = load.finish().await;
        let run = run.unwrap_or_else(|e| panic!("tuner deploy run {i} failed: {e}"));
        let phases: Vec<String> = run.json["result"]["phases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        format!(
                            "{} {:.2}",
                            p["phase"].as_str().unwrap_or("?"),
                            p["seconds"].as_f64().unwrap_or(f64::NAN)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        eprintln!(
            "tuner run {i}: CLI wall {:?}, drain {:?}, on green after {:?}; phases [{}]; {}",
            run.wall,
            run.drain,
            run.to_green,
            phases.join(", "),
            report.summary()
        );
        merge(&mut load_total, &report);
        walls.push(run.wall);
        drains.push(run.drain);
        to_green.push(run.to_green);
    }
    vec![Row {
        name: "`tuner deploy` blue-green via HAProxy runtime API (release build): CLI wall time"
            .into(),
        times: walls,
        extra: format!(
            "traffic on green after {}; drain (included in the wall time) {}",
            stats(&to_green),
            stats(&drains)
        ),
        failed: Some((load_total.failed(), load_total.sent)),
        rate: Some(load_total.sent as f64 / load_total.elapsed.as_secs_f64().max(1e-9)),
    }]
}

async fn bench_naive(runs: usize) -> Vec<Row> {
    let containers = Containers::new("naive");
    let mut current = containers.run("naive", LIMITS[1].0, LIMITS[1].1, None);
    swap::wait_docker_healthy(&current.name, Duration::from_secs(30)).unwrap();
    let port = current.port;
    let mut times = vec![];
    let mut load_total = LoadReport::default();
    for i in 0..runs {
        let (cpus, mem) = LIMITS[i % 2];
        let load = Load::start(load_config(port));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let start = Instant::now();
        containers.remove(&current.name);
        current = containers.run("naive", cpus, mem, Some(port));
        swap::wait_docker_healthy(&current.name, Duration::from_secs(30)).unwrap();
        let took = start.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let report = load.finish().await;
        eprintln!("naive run {i}: {took:?}; {}", report.summary());
        merge(&mut load_total, &report);
        times.push(took);
    }
    vec![Row {
        name: "naive: `docker rm -f` + `docker run` with new limits until Docker-healthy".into(),
        times,
        extra: "all of it is downtime".into(),
        failed: Some((load_total.failed(), load_total.sent)),
        rate: Some(load_total.sent as f64 / load_total.elapsed.as_secs_f64().max(1e-9)),
    }]
}

/// Leaves the swarm (and its `docker_gwbridge`) only if it created it, and
/// removes its service, even when the benchmark fails.
struct SwarmGuard {
    created: bool,
    service: Option<String>,
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            let _ = docker(&["service", "rm", &service]);
        }
        if self.created {
            let _ = docker(&["swarm", "leave", "--force"]);
            // The network can take a moment to be released.
            for _ in 0..20 {
                if docker(&["network", "rm", "docker_gwbridge"]).is_ok()
                    || docker(&["network", "inspect", "docker_gwbridge"]).is_err()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

fn bench_swarm(runs: usize) -> Vec<Row> {
    let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).unwrap();
    let mut guard = SwarmGuard {
        created: false,
        service: None,
    };
    if state == "inactive" {
        docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]).unwrap();
        guard.created = true;
    } else if state != "active" {
        panic!("swarm state {state:?}: neither inactive nor active; not touching it");
    }
    let service = format!("tuner-bench-{}", std::process::id());
    let docker_bin = Path::new("docker");
    guard.service = Some(service.clone());
    let create = swap::timed(
        docker_bin,
        &[
            "service",
            "create",
            "--detach=false",
            "--quiet",
            "--name",
            &service,
            "--endpoint-mode",
            "dnsrr",
            "--limit-cpu",
            LIMITS[1].0,
            "--limit-memory",
            LIMITS[1].1,
            "--stop-grace-period",
            "1s",
            IMAGE,
        ],
    )
    .unwrap();
    eprintln!("swarm service create: {create:?}");
    let mut times = vec![];
    for i in 0..runs {
        let (cpus, mem) = LIMITS[i % 2];
        let took = swap::timed(
            docker_bin,
            &[
                "service",
                "update",
                "--detach=false",
                "--quiet",
                "--update-order",
                "start-first",
                "--update-monitor",
                "1s",
                "--limit-cpu",
                cpus,
                "--limit-memory",
                mem,
                &service,
            ],
        )
        .unwrap();
        eprintln!("swarm run {i}: {took:?}");
        times.push(took);
    }
    drop(guard);
    let after = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).unwrap();
    vec![Row {
        name: "Swarm `service update --update-order start-first --update-monitor 1s` (dnsrr)"
            .into(),
        times,
        extra: format!(
            "CLI wall time, idle; `service create` {:.2} s; swarm after: {after}",
            create.as_secs_f64()
        ),
        failed: None,
        rate: None,
    }]
}

fn render(rows: &[Row], runs: usize) -> String {
    let mut s = String::from(
        "| method | time min / median / max | failed / sent under load | load rate | notes |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} ({} runs) | {} | {} | {} |\n",
            r.name,
            stats(&r.times),
            r.times.len().min(runs),
            r.failed
                .map(|(f, n)| format!("{f} / {n}"))
                .unwrap_or_else(|| "n/a (not reachable from 127.0.0.1)".into()),
            r.rate
                .map(|r| format!("{r:.0} req/s"))
                .unwrap_or_else(|| "-".into()),
            r.extra
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by bench/run.sh"]
async fn bench_deploy_swap() {
    let runs: usize = env_or("TUNER_BENCH_RUNS", 5);
    let methods =
        std::env::var("TUNER_BENCH_METHODS").unwrap_or_else(|_| "tuner,naive,swarm".into());
    let methods: Vec<&str> = methods.split(',').map(str::trim).collect();
    let mut rows = vec![];
    if methods.contains(&"tuner") {
        rows.extend(bench_tuner(runs).await);
    }
    if methods.contains(&"router") {
        rows.extend(bench_router(runs, false).await);
    }
    if methods.contains(&"router-docker") {
        rows.extend(bench_router(runs, true).await);
    }
    if methods.contains(&"naive") {
        rows.extend(bench_naive(runs).await);
    }
    if methods.contains(&"swarm") {
        rows.extend(
            tokio::task::spawn_blocking(move || bench_swarm(runs))
                .await
                .unwrap(),
        );
    }
    let table = render(&rows, runs);
    println!("{table}");
    let out = std::env::var("TUNER_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/deploy_swap.md")
        });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(&out, table).unwrap();
}
