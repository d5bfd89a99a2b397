//! A real monitoring chain on loopback: postgres-exporter (with the same WAL
//! counter query the demo stack uses) in front of a `PgServer`, and a real
//! Prometheus scraping it every second, each in its own temp dir.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::postgres::PgServer;

pub const WAL_QUERY_FILE: &str = r#"pg_wal:
  query: "SELECT (pg_current_wal_lsn() - '0/0')::float8 AS lsn_bytes"
  master: true
  metrics:
    - lsn_bytes:
        usage: "COUNTER"
        description: "WAL insert position in bytes"
"#;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Monitoring {
    pub pg: PgServer,
    pub prometheus_url: String,
    pub exporter_port: u16,
    pub dir: tempfile::TempDir,
    exporter: Option<Process>,
    prometheus: Option<Process>,
}

impl Monitoring {
    /// Starts Postgres, the exporter and Prometheus, and waits until
    /// Prometheus has scraped the exporter successfully.
    pub fn start() -> Monitoring {
        Monitoring::start_with(&[])
    }

    /// Like `start`, with `extra` lines in postgresql.conf.
    pub fn start_with(extra: &[&str]) -> Monitoring {
        let pg = PgServer::start(extra);
        let dir = tempfile::Builder::new()
            .prefix("tuner-prom-")
            .tempdir()
            .expect("temp dir");
        let queries = dir.path().join("queries.yaml");
        std::fs::write(&queries, WAL_QUERY_FILE).expect("write queries");
        let exporter_port = super::free_port();
        let exporter = Command::new("prometheus-postgres-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .arg(format!("--extend.query-path={}", queries.display()))
            .env("DATA_SOURCE_NAME", format!("{}?sslmode=disable", pg.dsn()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("exporter.log")).expect("log"))
            .spawn()
            .expect("spawn prometheus-postgres-exporter");
        let prom_port = super::free_port();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['{}/rules.yml']\nscrape_configs:\n  - job_name: postgres-exporter\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        std::fs::write(dir.path().join("rules.yml"), "groups: []\n").expect("write rules");
        let prometheus = Command::new("prometheus")
            .arg(format!(
                "--config.file={}/prometheus.yml",
                dir.path().display()
            ))
            .arg(format!("--storage.tsdb.path={}/data", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--web.enable-lifecycle")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).expect("log"))
            .spawn()
            .expect("spawn prometheus");
        let mon = Monitoring {
            pg,
            prometheus_url: format!("http://127.0.0.1:{prom_port}"),
            exporter_port,
            dir,
            exporter: Some(Process(exporter)),
            prometheus: Some(Process(prometheus)),
        };
        let ok = super::wait_until(Duration::from_secs(60), || {
            mon.instant("pg_wal_lsn_bytes").is_some()
                && mon.instant("sum(pg_stat_database_xact_commit)").is_some()
        });
        assert!(ok, "Prometheus never scraped the exporter:\n{}", mon.logs());
        mon
    }

    /// Runs an instant query with curl and returns the raw JSON body.
    pub fn query_raw(&self, query: &str) -> Option<String> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "2", "-G"])
            .arg(format!("{}/api/v1/query", self.prometheus_url))
            .arg("--data-urlencode")
            .arg(format!("query={query}"))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Writes enough rows to move the WAL position, through psql.
    pub fn write_load(&self, rows: u32) {
        self.pg
            .psql("CREATE TABLE IF NOT EXISTS load(id serial primary key, payload text)");
        self.pg.psql(&format!(
            "INSERT INTO load(payload) SELECT repeat('x', 200) FROM generate_series(1, {rows})"
        ));
    }

    /// Writes a rule file with the given groups YAML and reloads Prometheus.
    pub fn set_rules(&self, groups_yaml: &str) {
        std::fs::write(self.dir.path().join("rules.yml"), groups_yaml).expect("write rules");
        let status = Command::new("curl")
            .args(["-sf", "-X", "POST", "--max-time", "5"])
            .arg(format!("{}/-/reload", self.prometheus_url))
            .status()
            .expect("curl reload");
        assert!(status.success(), "reload failed:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!(
            "--- exporter\n{}\n--- prometheus\n{}\n--- postgres\n{}",
            read("exporter.log"),
            read("prometheus.log"),
            self.pg.log()
        )
    }

    /// Stops Prometheus, to test what the tool does when it is down.
    pub fn stop_prometheus(&mut self) {
        self.prometheus.take();
    }

    pub fn stop_exporter(&mut self) {
        self.exporter.take();
    }

    fn api(&self, path: &str, params: &[(&str, String)]) -> Option<serde_json::Value> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sf", "--max-time", "5", "-G"])
            .arg(format!("{}{path}", self.prometheus_url));
        for (k, v) in params {
            cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let out = cmd.output().ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The first series' value of an instant query, if any.
    pub fn instant(&self, query: &str) -> Option<f64> {
        let v = self.api("/api/v1/query", &[("query", query.to_string())])?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// `(unix seconds, value)` of the first series of a range query.
    pub fn range(&self, query: &str, start: f64, end: f64, step: f64) -> Vec<(f64, f64)> {
        let params = [
            ("query", query.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step}")),
        ];
        let Some(v) = self.api("/api/v1/query_range", &params) else {
            return Vec::new();
        };
        v["data"]["result"][0]["values"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .filter_map(|p| Some((p[0].as_f64()?, p[1].as_str()?.parse::<f64>().ok()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn show(&self, setting: &str) -> String {
        self.pg.psql(&format!("SHOW {setting}"))
    }

    pub fn auto_conf(&self) -> Vec<u8> {
        std::fs::read(self.pg.auto_conf()).expect("read postgresql.auto.conf")
    }
}
