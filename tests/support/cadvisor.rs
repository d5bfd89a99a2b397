//! Synthetic cAdvisor-style container series (there is no cAdvisor on
//! these hosts) served by a real node_exporter's textfile collector and
//! scraped every second by a real Prometheus: what `tuner watch` reads
//! with `source: prometheus`. Shared by `tests/watch.rs` and the cycle
//! benchmark (`bench/watch_cycle.rs`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The series names, as `watch.prometheus` must be told them.
pub const CPU: &str = "container_cpu_cores";
pub const MEMORY: &str = "container_memory_working_set_bytes";
pub const CPU_LIMIT: &str = "container_spec_cpu_cores";
pub const MEMORY_LIMIT: &str = "container_spec_memory_limit_bytes";
pub const OOM: &str = "container_oom_events_total";

/// One container's values.
pub struct Series {
    pub name: String,
    pub cpu_cores: f64,
    pub memory: u64,
    pub cpu_limit: f64,
    pub memory_limit: u64,
}

/// The textfile body: five series per container, labelled `name`.
pub fn textfile(all: &[Series]) -> String {
    let mut text = String::new();
    for s in all {
        let n = &s.name;
        text.push_str(&format!(
            "{CPU}{{name=\"{n}\"}} {}\n{MEMORY}{{name=\"{n}\"}} {}\n{CPU_LIMIT}{{name=\"{n}\"}} {}\n{MEMORY_LIMIT}{{name=\"{n}\"}} {}\n{OOM}{{name=\"{n}\"}} 0\n",
            s.cpu_cores, s.memory, s.cpu_limit, s.memory_limit
        ));
    }
    text
}

/// The `watch.prometheus` section (4-space indented under `watch:`).
pub fn watch_queries_yaml() -> String {
    format!("  prometheus:\n    cpu: {CPU}\n    memory: {MEMORY}\n    cpu_limit: {CPU_LIMIT}\n    memory_limit: {MEMORY_LIMIT}\n    oom: {OOM}\n")
}

/// Kills a spawned server when dropped, even when the test fails.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// node_exporter serving `series` and a Prometheus scraping it, in `dir`.
pub struct Cadvisor {
    pub url: String,
    _exporter: Server,
    _prometheus: Server,
}

impl Cadvisor {
    /// Starts both and waits until Prometheus has scraped the first
    /// container's series (panics after 60 s).
    pub fn start(dir: &Path, series: &[Series]) -> Cadvisor {
        let textfiles: PathBuf = dir.join("textfile");
        std::fs::create_dir_all(&textfiles).expect("textfile dir");
        std::fs::write(textfiles.join("cadvisor.prom"), textfile(series)).expect("series");
        let exporter_port = super::free_port();
        let exporter = Server(
            Command::new("prometheus-node-exporter")
                .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
                .args(["--collector.disable-defaults", "--collector.textfile"])
                .arg(format!(
                    "--collector.textfile.directory={}",
                    textfiles.display()
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start node_exporter"),
        );
        let prom_port = super::free_port();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"),
        )
        .expect("prometheus.yml");
        let prometheus = Server(
            Command::new("prometheus")
                .arg(format!("--config.file={}/prometheus.yml", dir.display()))
                .arg(format!("--storage.tsdb.path={}/data", dir.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus"),
        );
        let url = format!("http://127.0.0.1:{prom_port}");
        let first = series.first().map(|s| s.name.clone()).unwrap_or_default();
        let scraped = super::wait_until(Duration::from_secs(60), || {
            Command::new("curl")
                .args([
                    "-sf",
                    "-G",
                    &format!("{url}/api/v1/query"),
                    "--data-urlencode",
                ])
                .arg(format!("query={CPU}"))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains(&first))
                .unwrap_or(false)
        });
        assert!(scraped, "Prometheus never scraped the series of {first}");
        Cadvisor {
            url,
            _exporter: exporter,
            _prometheus: prometheus,
        }
    }
}
