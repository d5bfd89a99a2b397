//! Is green ready for traffic? The container's own healthcheck when it has
//! one, else an HTTP probe from labels or flags; a green with neither is
//! refused before anything is created.
//!
//! Docker runs a healthcheck once per interval, its first run one interval
//! after the start (1.0-1.3 s to `healthy` with a 1 s interval here), while
//! green often answers within a few hundred milliseconds. So the same
//! command is also run through `Runtime::exec` every [`EXEC_INTERVAL`]:
//! its first pass proves exactly what Docker's would, only sooner, and
//! whichever comes first (that pass, or Docker's `healthy`) lets green on.
//! Only when a router checks green itself before it gets traffic: with no
//! router, what routes to the service may go by Docker's status alone
//! (Traefik, Docker's DNS, Compose's `service_healthy`), so Docker's
//! `healthy` is awaited.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::journal::Events;
use crate::runtime::{Container, Health, Runtime};

pub const PATH_LABEL: &str = "tuner.health.path";
/// Between two runs of green's healthcheck through `exec`.
pub const EXEC_INTERVAL: Duration = Duration::from_millis(100);
/// Runs of the healthcheck through `exec` before only Docker's own status
/// is awaited (a minute at [`EXEC_INTERVAL`]).
pub const MAX_EXEC_RUNS: u32 = 600;
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
/// up after `timeout`. `early`: a pass of green's healthcheck run through
/// `exec` counts before Docker's own status does (see the module doc).
pub async fn wait_ready(
    runtime: &dyn Runtime,
    green: &str,
    probe: &Probe,
    early: bool,
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
    let mut runs: u32 = 0;
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
                    h => last = format!("Docker says {h}"),
                }
                match &live.healthcheck {
                    Some(check) if early && runs < MAX_EXEC_RUNS => {
                        runs += 1;
                        let budget = check
                            .timeout
                            .min(timeout.saturating_sub(started.elapsed()))
                            .max(EXEC_INTERVAL);
                        match runtime.exec(green, &check.argv, budget).await {
                            Ok(run) if run.exit_code == 0 => break Ok(()),
                            Ok(run) => {
                                last = format!(
                                    "{last}; its healthcheck `{}` exited {} ({:?})",
                                    check.display(),
                                    run.exit_code,
                                    run.output.trim()
                                )
                            }
                            // Docker's own status is still awaited.
                            Err(e) => last = format!("{last}; its healthcheck could not run: {e}"),
                        }
                        EXEC_INTERVAL
                    }
                    _ => Duration::from_millis(300),
                }
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
                last: if runs > 0 {
                    format!(
                        "{last} after {}s and {runs} runs of its healthcheck",
                        timeout.as_secs()
                    )
                } else {
                    format!("{last} after {}s", timeout.as_secs())
                },
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

    /// A green whose Docker status would stay `starting` for a long while
    /// is let on by the first pass of its own healthcheck, run through
    /// `exec` every 100 ms; a check that never passes fails in time, naming
    /// the command, its last answer and how often it ran.
    #[tokio::test(start_paused = true)]
    async fn its_own_healthcheck_proves_green_before_docker_does() {
        use crate::runtime::fake::FakeRuntime;
        let rt = FakeRuntime::new();
        let created = |name: &str| {
            let mut c = FakeContainer::serving(name, &[]);
            c.running = false;
            c.state = "created".into();
            c
        };
        let id = rt.add(created("green"));
        rt.world().start_health = vec![Health::Starting; 1000];
        rt.world().start_exec = vec![1, 1, 0];
        rt.start(&id).await.unwrap();
        let started = Instant::now();
        let timeout = Duration::from_secs(30);
        let every = Duration::from_secs(1);
        wait_ready(
            &rt,
            &id,
            &Probe::Docker,
            true,
            timeout,
            every,
            &crate::journal::Silent,
        )
        .await
        .unwrap();
        assert_eq!(rt.get(&id).unwrap().execs.len(), 3);
        assert_eq!(
            rt.get(&id).unwrap().execs[0],
            vec!["/bin/check".to_string()]
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );

        let other = rt.add(created("never"));
        rt.world().start_exec = vec![1; 1000];
        rt.start(&other).await.unwrap();
        let err = wait_ready(
            &rt,
            &other,
            &Probe::Docker,
            true,
            Duration::from_secs(2),
            every,
            &crate::journal::Silent,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("green not healthy in time"), "{err}");
        assert!(err.contains("healthcheck `/bin/check` exited 1"), "{err}");
        assert!(err.contains("not ready"), "{err}");
        // About one run per 100 ms over 2 s: bounded, not a busy loop.
        let runs = rt.get(&other).unwrap().execs.len();
        assert!((10..=25).contains(&runs), "{runs} runs: {err}");
        assert!(
            err.contains(&format!("{runs} runs of its healthcheck")),
            "{err}"
        );
    }

    /// Without a router that checks green itself, Docker's own `healthy`
    /// is what counts: a pass through `exec` would let blue leave while
    /// Traefik or Docker's DNS still skip green as `starting`.
    #[tokio::test(start_paused = true)]
    async fn without_a_router_checking_green_docker_status_is_awaited() {
        use crate::runtime::fake::FakeRuntime;
        let rt = FakeRuntime::new();
        let mut c = FakeContainer::serving("green", &[]);
        c.running = false;
        c.state = "created".into();
        let id = rt.add(c);
        rt.world().start_health = vec![Health::Starting, Health::Starting, Health::Healthy];
        rt.world().start_exec = vec![0; 1000];
        rt.start(&id).await.unwrap();
        wait_ready(
            &rt,
            &id,
            &Probe::Docker,
            false,
            Duration::from_secs(30),
            Duration::from_secs(1),
            &crate::journal::Silent,
        )
        .await
        .unwrap();
        assert!(rt.get(&id).unwrap().execs.is_empty(), "no exec proof");
    }
}
