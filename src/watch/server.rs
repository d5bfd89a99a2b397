//! `/health` and `/metrics` while `tuner watch` runs: a minimal HTTP/1.0
//! responder on a loopback address (two fixed pages do not need a web
//! framework). The numbers live in `Stats`, updated after each check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::apply::Applied;
use super::cycle::{describe, CheckReport};
use super::policy::Decision;

/// What `/metrics` shows.
#[derive(Debug, Default)]
pub struct Stats {
    /// (service, direction, result) -> count.
    adjustments: BTreeMap<(String, &'static str, &'static str), u64>,
    services: BTreeMap<String, ServiceLine>,
    checks: u64,
    last_check: Option<DateTime<Utc>>,
    last_check_seconds: f64,
}

#[derive(Debug, Default, Clone)]
struct ServiceLine {
    cpu_used: Option<f64>,
    cpu_limit: f64,
    memory_used: u64,
    memory_limit: u64,
    decision: String,
}

pub type Shared = Arc<Mutex<Stats>>;

/// A per-service gauge: name, help, how to read it from a line.
type Gauge = (&'static str, &'static str, fn(&ServiceLine) -> Option<f64>);

impl Stats {
    pub fn record(&mut self, report: &CheckReport) {
        self.checks += 1;
        self.last_check = Some(report.at);
        self.last_check_seconds = report.seconds;
        for row in &report.rows {
            if let (Some(Decision::Adjust(a)), Some(applied)) = (&row.decision, &row.applied) {
                let result = match applied {
                    Applied::Done { .. } => "successful",
                    Applied::Failed { .. } => "failed",
                    Applied::Busy { .. } => "busy",
                };
                *self
                    .adjustments
                    .entry((row.service.clone(), a.direction().name(), result))
                    .or_default() += 1;
            }
            let line = self.services.entry(row.service.clone()).or_default();
            if let Some(r) = &row.reading {
                line.cpu_used = r.cpu_used;
                line.cpu_limit = r.cpu_limit;
                line.memory_used = r.memory_used;
                line.memory_limit = r.memory_limit;
            }
            // The limits just set are the limits from now on.
            if let Some(Applied::Done { new, .. }) = &row.applied {
                line.cpu_limit = new.cpus;
                line.memory_limit = new.memory;
            }
            line.decision = match (&row.decision, &row.error) {
                (Some(d), None) => describe(d, row.applied.as_ref()),
                (Some(d), Some(e)) => format!("{}; {e}", describe(d, row.applied.as_ref())),
                (None, Some(e)) => format!("error: {e}"),
                (None, None) => String::new(),
            };
        }
    }

    /// Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP tuner_watch_adjustments_total Adjustments tried, by service, direction and result (successful, failed, busy).\n# TYPE tuner_watch_adjustments_total counter\n");
        for ((service, direction, result), n) in &self.adjustments {
            let _ = writeln!(
                out,
                "tuner_watch_adjustments_total{{service=\"{}\",direction=\"{direction}\",result=\"{result}\"}} {n}",
                escape(service)
            );
        }
        let gauges: [Gauge; 4] = [
            (
                "tuner_watch_cpu_used_cores",
                "CPU cores in use at the last check.",
                |l| l.cpu_used,
            ),
            (
                "tuner_watch_cpu_limit_cores",
                "CPU limit in cores (0: none).",
                |l| Some(l.cpu_limit),
            ),
            (
                "tuner_watch_memory_used_bytes",
                "Working set (usage minus inactive file cache).",
                |l| Some(l.memory_used as f64),
            ),
            (
                "tuner_watch_memory_limit_bytes",
                "Memory limit (0: none).",
                |l| Some(l.memory_limit as f64),
            ),
        ];
        for (name, help, get) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (service, line) in &self.services {
                if let Some(v) = get(line) {
                    let _ = writeln!(out, "{name}{{service=\"{}\"}} {v}", escape(service));
                }
            }
        }
        out.push_str("# HELP tuner_watch_last_decision The last check's decision per service, in the label.\n# TYPE tuner_watch_last_decision gauge\n");
        for (service, line) in &self.services {
            let _ = writeln!(
                out,
                "tuner_watch_last_decision{{service=\"{}\",decision=\"{}\"}} 1",
                escape(service),
                escape(&line.decision)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tuner_watch_checks_total Checks made.\n# TYPE tuner_watch_checks_total counter\ntuner_watch_checks_total {}",
            self.checks
        );
        let _ = writeln!(
            out,
            "# HELP tuner_watch_last_check_seconds How long the last check took.\n# TYPE tuner_watch_last_check_seconds gauge\ntuner_watch_last_check_seconds {}",
            self.last_check_seconds
        );
        if let Some(at) = self.last_check {
            let _ = writeln!(
                out,
                "# HELP tuner_watch_last_check_timestamp_seconds When the last check ended.\n# TYPE tuner_watch_last_check_timestamp_seconds gauge\ntuner_watch_last_check_timestamp_seconds {}",
                at.timestamp()
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves until the returned task is aborted. One request per connection,
/// each answered and closed; a slow or broken client only costs its own task.
pub fn serve(listener: TcpListener, stats: Shared) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                // Out of file descriptors and the like: back off, keep serving.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let stats = stats.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let read =
                    tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut buf))
                        .await;
                let Ok(Ok(n)) = read else { return };
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let (status, kind, body) = match path {
                    "/health" => ("200 OK", "text/plain", "ok\n".to_string()),
                    "/metrics" => {
                        let text = stats.lock().map(|s| s.render()).unwrap_or_default();
                        ("200 OK", "text/plain; version=0.0.4", text)
                    }
                    _ => (
                        "404 Not Found",
                        "text/plain",
                        "try /health or /metrics\n".into(),
                    ),
                };
                let response = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{CpuKnob, Limits};
    use crate::watch::cycle::Row;
    use crate::watch::policy::{Adjustment, Move, Reading};

    #[tokio::test]
    async fn serves_health_and_metrics_with_adjustments_by_direction() {
        let stats: Shared = Default::default();
        let limits = |cpus| Limits {
            cpus,
            memory: 128 << 20,
            memory_swap: 256 << 20,
            knob: CpuKnob::NanoCpus,
        };
        stats.lock().unwrap().record(&CheckReport {
            at: Utc::now(),
            source: "cgroup",
            dry_run: false,
            seconds: 0.01,
            rows: vec![Row {
                service: "web".into(),
                container: "web-1".into(),
                reading: Some(Reading {
                    container_id: "c".into(),
                    cpu_used: Some(0.9),
                    cpu_limit: 1.0,
                    memory_used: 10,
                    memory_limit: 128 << 20,
                    oom_kills: 0,
                }),
                decision: Some(Decision::Adjust(Adjustment {
                    cpus: Some(Move {
                        from: 1.0,
                        to: 1.25,
                    }),
                    memory: None,
                    reason: "cpu above 80% for 3 checks".into(),
                    oom: false,
                })),
                applied: Some(Applied::Done {
                    id: "x".into(),
                    old: limits(1.0),
                    new: limits(1.25),
                }),
                error: None,
            }],
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = serve(listener, stats);
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/health").await.ends_with("ok\n"));
        let metrics = get("/metrics").await;
        assert!(metrics.contains(
            "tuner_watch_adjustments_total{service=\"web\",direction=\"up\",result=\"successful\"} 1"
        ), "{metrics}");
        assert!(
            metrics.contains("tuner_watch_cpu_limit_cores{service=\"web\"} 1.25"),
            "{metrics}"
        );
        assert!(get("/nope").await.starts_with("HTTP/1.0 404"));
        task.abort();
    }
}
