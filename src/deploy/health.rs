//! Is green ready for traffic? Docker's own health status when the container
//! has a healthcheck, else an HTTP probe from labels or flags; a green with
//! neither is refused before anything is created.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::journal::Events;
use crate::runtime::{Container, Health, Runtime};

pub const PATH_LABEL: &str = "tuner.health.path";
pub const PORT_LABEL: &str = "tuner.health.port";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Probe {
    /// Wait for Docker's health status `healthy`.
    Docker,
    /// `GET http://<green ip>:<port><path>` answers 2xx/3xx.
    Http { port: u16, path: String },
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Docker => f.write_str("Docker healthcheck"),
            Probe::Http { port, path } => write!(f, "HTTP GET http://<green>:{port}{path}"),
        }
    }
}

/// Chooses the probe for a clone of `blue`: flags, then labels, then the
/// healthcheck; `None` when there is nothing to probe with.
pub fn choose(blue: &Container, flag_path: Option<&str>, flag_port: Option<u16>) -> Option<Probe> {
    let label = |names: [&str; 2]| names.iter().find_map(|n| blue.labels.get(*n).cloned());
    let path = flag_path
        .map(str::to_string)
        .or_else(|| label([PATH_LABEL, "tuner.health-path"]));
    let port = flag_port
        .or_else(|| label([PORT_LABEL, "tuner.health-port"]).and_then(|p| p.trim().parse().ok()));
    if let (Some(path), Some(port)) = (&path, port) {
        let path = if path.starts_with('/') {
            path.clone()
        } else {
            format!("/{path}")
        };
        return Some(Probe::Http { port, path });
    }
    blue.has_healthcheck.then_some(Probe::Docker)
}

/// Why green is not ready, for the phase error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    Exited { code: i64 },
    Unhealthy { output: String },
    Timeout { last: String },
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Exited { code } => {
                write!(f, "green exited with code {code} before becoming healthy")
            }
            NotReady::Unhealthy { output } => {
                write!(f, "green reported unhealthy (last check: {output})")
            }
            NotReady::Timeout { last } => {
                write!(f, "green not healthy in time (last status: {last})")
            }
        }
    }
}

/// Polls until green is ready, reporting the wait as an event, and gives
/// up after `timeout`.
pub async fn wait_ready(
    runtime: &dyn Runtime,
    green: &str,
    probe: &Probe,
    timeout: Duration,
    interval: Duration,
    events: &dyn Events,
) -> Result<(), HealthFailure> {
    let started = Instant::now();
    events.waiting(&format!("waiting for green to be healthy ({probe})"), None);
    let http = reqwest::Client::builder()
        .timeout(interval.clamp(Duration::from_millis(200), Duration::from_secs(5)))
        .build()
        .ok();
    let mut last;
    let mut shown: Option<String> = None;
    let outcome = loop {
        let live = match runtime.inspect(green).await {
            Ok(c) => c,
            Err(e) => break Err(HealthFailure::Docker(e.to_string())),
        };
        if !live.running {
            break Err(HealthFailure::NotReady(NotReady::Exited {
                code: live.exit_code,
            }));
        }
        let pause = match probe {
            Probe::Docker => {
                match live.health {
                    Health::Healthy => break Ok(()),
                    Health::Unhealthy => {
                        break Err(HealthFailure::NotReady(NotReady::Unhealthy {
                            output: last_check_output(&live),
                        }))
                    }
                    h => last = h.to_string(),
                }
                Duration::from_millis(300)
            }
            Probe::Http { port, path } => {
                match (&http, live.first_ip()) {
                    (Some(client), Some(ip)) => {
                        match client.get(format!("http://{ip}:{port}{path}")).send().await {
                            Ok(r) if r.status().is_success() || r.status().is_redirection() => {
                                break Ok(())
                            }
                            Ok(r) => last = format!("HTTP {}", r.status()),
                            Err(e) => last = format!("HTTP error: {e}"),
                        }
                    }
                    _ => last = "no address on any network yet".into(),
                }
                interval
            }
        };
        if started.elapsed() >= timeout {
            break Err(HealthFailure::NotReady(NotReady::Timeout {
                last: format!("{last} after {}s", timeout.as_secs()),
            }));
        }
        // A step only when green's status changes: one line per change,
        // not one per poll.
        if shown.as_deref() != Some(last.as_str()) {
            events.step(&format!(
                "green: {last} after {}s of {}s",
                started.elapsed().as_secs(),
                timeout.as_secs()
            ));
            shown = Some(last.clone());
        }
        tokio::time::sleep(
            pause
                .min(timeout.saturating_sub(started.elapsed()))
                .max(Duration::from_millis(50)),
        )
        .await;
    };
    events.finished();
    outcome
}

#[derive(Debug, Clone)]
pub enum HealthFailure {
    NotReady(NotReady),
    Docker(String),
}

impl std::fmt::Display for HealthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthFailure::NotReady(n) => n.fmt(f),
            HealthFailure::Docker(e) => f.write_str(e),
        }
    }
}

fn last_check_output(c: &Container) -> String {
    c.last_check
        .as_ref()
        .map(|r| format!("exit {}, {:?}", r.exit_code, r.output.trim()))
        .unwrap_or_else(|| "no output".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fake::FakeContainer;

    fn blue(healthcheck: bool, labels: &[(&str, &str)]) -> Container {
        let mut c = FakeContainer::serving("web", labels);
        c.has_healthcheck = healthcheck;
        c.view()
    }

    #[test]
    fn probe_choice() {
        assert_eq!(choose(&blue(true, &[]), None, None), Some(Probe::Docker));
        assert_eq!(choose(&blue(false, &[]), None, None), None);
        assert_eq!(
            choose(
                &blue(false, &[(PATH_LABEL, "healthz"), (PORT_LABEL, "8080")]),
                None,
                None
            ),
            Some(Probe::Http {
                port: 8080,
                path: "/healthz".into()
            })
        );
        assert_eq!(
            choose(&blue(true, &[]), Some("/h"), Some(80)),
            Some(Probe::Http {
                port: 80,
                path: "/h".into()
            })
        );
    }
}
