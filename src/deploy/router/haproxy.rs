//! HAProxy through its runtime API (admin socket).
//!
//! The swap follows the order measured to lose no request on these machines
//! (ENVIRONMENT.md, Part 2 §3):
//!
//! 1. `add server <be>/<green> <addr> weight 0 check inter .. fastinter ..
//!    downinter .. rise .. fall ..`: dynamic servers do not inherit
//!    `default-server`, so every check parameter is passed explicitly; weight
//!    0 because `enable server` makes the server `UP` before any check ran.
//! 2. `enable health`, `enable server`.
//! 3. poll `show stat <be> 4 -1` until green is `UP` with a passed check
//!    (`L7OK` for an HTTP check).
//! 4. `set weight <be>/<green> <N>`, an absolute weight: `100%` would be
//!    relative to the initial 0 and take the backend down.
//! 5. `set server <be>/<blue> state drain`, poll until blue has no session
//!    left, a short grace, then `state maint`.
//! 6. once the blue container is gone: `del server`, retried while HAProxy
//!    says the server still has connections.
//!
//! What HAProxy needs (checked by [`HaproxyRouter::preflight`]):
//!
//! ```text
//! global
//!     stats socket /run/haproxy/admin.sock mode 600 level admin
//! backend web                      # `backend:` in the router config
//!     balance roundrobin           # a dynamic algorithm (not static-rr)
//!     option httpchk GET /health   # green's checks use the backend's check type
//!     server web_blue 127.0.0.1:27001 check
//! ```
//!
//! Every method is idempotent, so a swap interrupted by a crash can be
//! re-run: adding a green that is already there (same address) only resets
//! its weight to 0; retiring or removing a server that is gone succeeds.
//! `promote` also clears a drain, so undoing a swap after `drain` is
//! `promote(blue)`, `wait_healthy(blue)`, then `remove(green)`: never remove
//! green first, or the backend has nobody serving.
//!
//! 7. `rehome`: blue's own server (the name haproxy.cfg gives the
//!    service) is pointed at green (`set server ... addr ... port ...`),
//!    made ready, and the standby green was checked under is deleted: the
//!    service keeps one server name across deploys.
//! 8. `save_state`: `show servers state` is written to `state_file`, which
//!    HAProxy reads back on a reload (`load-server-state-from-file`), so a
//!    reload after a deploy keeps routing to the new container (see
//!    `state.rs` for what HAProxy restores).

mod api;
mod stat;
mod state;
mod swap;
mod wait;

pub use api::{check_answer, HaproxyError, RuntimeApi};
pub use stat::{parse_backend_algo, parse_show_stat, ServerStat};

use super::{Backend, RouterError};
pub use crate::config::haproxy::{check_name, CheckParams, HaproxyConfig};

/// Routes a service's traffic through one HAProxy backend.
#[derive(Debug, Clone)]
pub struct HaproxyRouter {
    api: RuntimeApi,
    config: HaproxyConfig,
}

impl HaproxyRouter {
    /// Fails on an invalid config (nothing is sent to HAProxy yet).
    pub fn new(config: HaproxyConfig) -> Result<HaproxyRouter, RouterError> {
        if let Err(problems) = config.validate() {
            return Err(RouterError::Failed {
                router: format!("haproxy backend {}", config.backend),
                action: "reading the router config".to_string(),
                reason: problems.join("; "),
            });
        }
        let api = RuntimeApi::new(config.socket.clone(), config.command_timeout);
        Ok(HaproxyRouter { api, config })
    }

    pub fn config(&self) -> &HaproxyConfig {
        &self.config
    }

    /// The runtime API client, for callers that need a command the router
    /// does not wrap.
    pub fn api(&self) -> &RuntimeApi {
        &self.api
    }

    /// The servers of the backend as `show stat` reports them. Also the
    /// cheapest check that the socket answers and the backend exists.
    pub async fn servers(&self) -> Result<Vec<ServerStat>, RouterError> {
        self.stat().await.map_err(|e| self.error(e))
    }

    /// One server of the backend, or `None` when it is not there.
    pub async fn server(&self, name: &str) -> Result<Option<ServerStat>, RouterError> {
        Ok(self.servers().await?.into_iter().find(|s| s.name == name))
    }

    /// Checks, before any change, what a swap needs from HAProxy: the socket
    /// answers at level admin, the backend exists, and its balance algorithm
    /// accepts dynamic servers. Returns the backend's servers. For plans
    /// (`--dry-run`) and `tuner status --health`.
    pub async fn preflight(&self) -> Result<Vec<ServerStat>, RouterError> {
        let level = self
            .api
            .run("show cli level")
            .await
            .map_err(|e| self.error(e))?;
        if level.trim() != "admin" {
            return Err(RouterError::Misconfigured {
                router: self.label(),
                action: "`show cli level`".to_string(),
                reason: format!(
                    "the admin socket {} is at level {:?}; add `level admin` to its `stats socket` line",
                    self.config.socket.display(),
                    level.trim()
                ),
            });
        }
        let servers = self.servers().await?;
        let command = format!("show stat {} 2 -1", self.config.backend);
        let text = self.api.run(&command).await.map_err(|e| self.error(e))?;
        let algo = parse_backend_algo(&text).map_err(|reason| {
            self.error(HaproxyError::Parse {
                command: command.clone(),
                reason,
            })
        })?;
        if algo.as_deref() == Some("static-rr") {
            return Err(RouterError::Misconfigured {
                router: self.label(),
                action: format!("`{command}`"),
                reason: "the backend uses `balance static-rr`, which cannot take dynamic servers; use `balance roundrobin`".to_string(),
            });
        }
        Ok(servers)
    }

    async fn stat(&self) -> Result<Vec<ServerStat>, HaproxyError> {
        let command = format!("show stat {} 4 -1", self.config.backend);
        let text = self.api.run(&command).await?;
        parse_show_stat(&text).map_err(|reason| HaproxyError::Parse { command, reason })
    }

    async fn find(&self, name: &str) -> Result<Option<ServerStat>, HaproxyError> {
        Ok(self.stat().await?.into_iter().find(|s| s.name == name))
    }

    fn label(&self) -> String {
        format!("haproxy backend {}", self.config.backend)
    }

    fn slot(&self, server: &Backend) -> Result<String, RouterError> {
        check_name("server name", &server.name).map_err(|reason| RouterError::Failed {
            router: self.label(),
            action: format!("using server {:?}", server.name),
            reason,
        })?;
        Ok(format!("{}/{}", self.config.backend, server.name))
    }

    /// Maps an error to the trait's, keeping the command and HAProxy's
    /// message, with a hint for the mistakes users make.
    fn error(&self, e: HaproxyError) -> RouterError {
        if let HaproxyError::Timeout {
            what,
            timeout,
            last,
        } = e
        {
            return RouterError::Timeout {
                router: self.label(),
                what: format!("{what}{last}"),
                timeout,
            };
        }
        let mut reason = e.reason();
        let mut misconfigured = true;
        match e.rejection() {
            Some(message)
                if ["No such backend", "No such proxy", "Can't find backend"]
                    .iter()
                    .any(|m| message.starts_with(m)) =>
            {
                reason.push_str(&format!(
                    "; HAProxy has no backend named {:?}: fix `backend` in the router config (`show stat` lists the backends)",
                    self.config.backend
                ));
            }
            Some(message) if message.contains("dynamic load balancing") => {
                reason.push_str(
                    "; use `balance roundrobin` (or another dynamic algorithm) in that backend",
                );
            }
            Some(message) if message.starts_with("Permission denied") => {
                reason.push_str("; the socket needs `level admin`");
            }
            _ => misconfigured = false,
        }
        let router = self.label();
        let action = e
            .command()
            .map(|c| format!("`{c}`"))
            .unwrap_or_else(|| "HAProxy runtime API".to_string());
        if misconfigured {
            RouterError::Misconfigured {
                router,
                action,
                reason,
            }
        } else {
            RouterError::Failed {
                router,
                action,
                reason,
            }
        }
    }

    /// Runs a command that changes state.
    async fn run(&self, command: &str) -> Result<(), RouterError> {
        self.api
            .run(command)
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// Runs a command; `Ok(false)` when HAProxy says the server is not there.
    async fn run_if_present(&self, command: &str) -> Result<bool, RouterError> {
        match self.api.run(command).await {
            Ok(_) => Ok(true),
            Err(e)
                if e.rejection()
                    .is_some_and(|m| m.starts_with("No such server")) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn validation_collects_every_problem() {
        let mut c = HaproxyConfig::new("/s", "web app");
        c.weight = 0;
        c.check.rise = 0;
        let problems = c.validate().unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("backend"), "{problems:?}");
        assert!(problems[1].contains("weight"), "{problems:?}");
        let err = HaproxyRouter::new(c).unwrap_err().to_string();
        assert!(err.contains("reading the router config"), "{err}");
    }

    #[test]
    fn errors_name_the_command_backend_and_fix() {
        let router = HaproxyRouter::new(HaproxyConfig::new("/s", "nope")).unwrap();
        let e = router.error(HaproxyError::Rejected {
            command: "show stat nope 4 -1".into(),
            message: "No such proxy.".into(),
        });
        let msg = e.to_string();
        assert!(msg.starts_with("router haproxy backend nope: `show stat nope 4 -1` failed: HAProxy answered \"No such proxy.\""), "{msg}");
        assert!(msg.contains("fix `backend`"), "{msg}");
        let e = router.error(HaproxyError::Timeout {
            what: "x".into(),
            timeout: Duration::from_secs(1),
            last: " (last seen: y)".into(),
        });
        assert!(matches!(e, RouterError::Timeout { .. }));
        assert!(e.to_string().contains("x (last seen: y)"), "{e}");
    }
}
