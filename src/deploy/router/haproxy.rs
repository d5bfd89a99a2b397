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
//! Runtime changes are not persistent: a reload or restart of HAProxy
//! re-reads haproxy.cfg, where blue's old `server` line still is. The plan
//! and the deploy's result print the line to put there instead.

mod api;
mod stat;

pub use api::{check_answer, HaproxyError, RuntimeApi};
pub use stat::{parse_backend_algo, parse_show_stat, ServerStat};

use std::time::{Duration, Instant};

use super::{Backend, Preflight, Router, RouterError, ServerView};
pub use crate::config::haproxy::{check_name, CheckParams, HaproxyConfig};
use async_trait::async_trait;

/// `127.0.0.1:27123`, `[::1]:8080`, `web:80`: no spaces or command
/// separators.
fn check_address(address: &str) -> Result<(), String> {
    let ok = !address.is_empty()
        && address
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:[]".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "address {address:?} is not a plain host:port, e.g. `127.0.0.1:27123`"
        ))
    }
}

/// `timeout` from now. Config and flags cap timeouts; a larger one (built
/// in code) saturates instead of panicking on `Instant` overflow.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + crate::config::units::MAX_DURATION)
}

/// Failed exchanges in a row that a poll tolerates before giving up.
const MAX_TRANSIENT: u32 = 3;

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

    /// Polls `show stat` until `done` holds for `name` or `timeout` passes.
    /// `done` sees `None` when the server is not in the backend.
    async fn poll(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(Option<&ServerStat>) -> Result<bool, String>,
    ) -> Result<Option<ServerStat>, RouterError> {
        let deadline = deadline_after(timeout);
        let mut transient = 0;
        loop {
            let seen = match self.find(name).await {
                Ok(seen) => {
                    transient = 0;
                    seen
                }
                // One slow or refused exchange on a busy machine (or during an
                // HAProxy reload) must not abort a swap; a lasting one must.
                Err(e)
                    if e.is_transient()
                        && transient < MAX_TRANSIENT
                        && Instant::now() < deadline =>
                {
                    transient += 1;
                    tracing::debug!(error = %e, transient, "HAProxy did not answer; polling again");
                    tokio::time::sleep(self.config.poll_interval).await;
                    continue;
                }
                Err(e) => return Err(self.error(e)),
            };
            match done(seen.as_ref()) {
                Ok(true) => return Ok(seen),
                Ok(false) => {}
                Err(reason) => {
                    return Err(RouterError::Failed {
                        router: self.label(),
                        action: what.to_string(),
                        reason,
                    })
                }
            }
            if Instant::now() >= deadline {
                let last = match &seen {
                    Some(s) => format!(" (last seen: {})", s.describe()),
                    None => " (server not in the backend)".to_string(),
                };
                return Err(self.error(HaproxyError::Timeout {
                    what: what.to_string(),
                    timeout,
                    last,
                }));
            }
            tokio::time::sleep(
                self.config
                    .poll_interval
                    .min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
    }

    /// Waits for no session on `name`, then the grace, then checks again
    /// (a request may have been on its way).
    async fn wait_idle(&self, name: &str, timeout: Duration) -> Result<(), RouterError> {
        let start = Instant::now();
        let what = format!(
            "the in-flight requests of {}/{name} to finish",
            self.config.backend
        );
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            self.poll(name, &what, left, |s| {
                Ok(s.is_none_or(|s| s.in_flight() == 0))
            })
            .await?;
            tokio::time::sleep(self.config.drain_grace).await;
            match self.find(name).await.map_err(|e| self.error(e))? {
                Some(s) if s.in_flight() > 0 && start.elapsed() < timeout => continue,
                Some(s) if s.in_flight() > 0 => {
                    return Err(self.error(HaproxyError::Timeout {
                        what,
                        timeout,
                        last: format!(" (last seen: {})", s.describe()),
                    }))
                }
                _ => return Ok(()),
            }
        }
    }

    /// `del server`, retried while HAProxy still holds connections to it.
    /// `Ok(false)` when the server was already gone.
    async fn delete(&self, slot: &str) -> Result<bool, RouterError> {
        let command = format!("del server {slot}");
        let deadline = deadline_after(self.config.retire_timeout);
        loop {
            match self.api.run(&command).await {
                Ok(_) => return Ok(true),
                Err(e)
                    if e.rejection()
                        .is_some_and(|m| m.starts_with("No such server")) =>
                {
                    return Ok(false)
                }
                Err(e)
                    if e.rejection()
                        .is_some_and(|m| m.contains("still has connections"))
                        && Instant::now() < deadline =>
                {
                    tracing::debug!(slot, "server still has connections; retrying del server");
                    tokio::time::sleep(self.config.poll_interval).await;
                }
                Err(e) => return Err(self.error(e)),
            }
        }
    }
}

#[async_trait]
impl Router for HaproxyRouter {
    fn kind(&self) -> &'static str {
        "haproxy"
    }

    fn drains(&self) -> bool {
        true
    }

    async fn preflight(&self) -> Result<Option<Preflight>, RouterError> {
        let servers = HaproxyRouter::preflight(self).await?;
        Ok(Some(Preflight {
            target: format!(
                "haproxy backend {} via {}",
                self.config.backend,
                self.config.socket.display()
            ),
            checked: "admin socket answers at level admin; backend exists with a dynamic balance algorithm".to_string(),
            servers: servers
                .into_iter()
                .map(|s| ServerView {
                    state: s.describe(),
                    name: s.name,
                    address: s.addr,
                    weight: s.weight,
                })
                .collect(),
        }))
    }

    async fn add_standby(&self, green: &Backend) -> Result<(), RouterError> {
        let slot = self.slot(green)?;
        check_address(&green.address).map_err(|reason| RouterError::Failed {
            router: self.label(),
            action: format!("adding {slot}"),
            reason,
        })?;
        let add = format!(
            "add server {slot} {} weight 0 {}",
            green.address,
            self.config.check.to_args()
        );
        match self.api.run(&add).await {
            Ok(_) => {}
            Err(e)
                if e.rejection()
                    .is_some_and(|m| m.starts_with("Already exists")) =>
            {
                // A re-run after a crash: keep it if it is the same server.
                let existing = self.find(&green.name).await.map_err(|e| self.error(e))?;
                match existing {
                    Some(s) if s.addr == green.address => {
                        tracing::info!(%slot, "green already registered; resetting its weight to 0");
                        self.run(&format!("set weight {slot} 0")).await?;
                    }
                    other => {
                        let addr = other.map(|s| s.addr).unwrap_or_default();
                        return Err(RouterError::Failed {
                            router: self.label(),
                            action: format!("`{add}`"),
                            reason: format!(
                                "{slot} already exists with address {addr:?}, not {:?}; remove it first (`set server {slot} state maint`, `del server {slot}`)",
                                green.address
                            ),
                        });
                    }
                }
            }
            Err(e) => return Err(self.error(e)),
        }
        self.run(&format!("enable health {slot}")).await?;
        self.run(&format!("enable server {slot}")).await?;
        tracing::info!(%slot, address = %green.address, "green registered with weight 0, health checks on");
        Ok(())
    }

    async fn wait_healthy(&self, green: &Backend, timeout: Duration) -> Result<(), RouterError> {
        let slot = self.slot(green)?;
        let what = format!("{slot} passing HAProxy's health check (UP + L7OK)");
        self.poll(&green.name, &what, timeout, |s| match s {
            Some(s) => Ok(s.is_healthy()),
            None => Err(format!("{slot} is not in the backend; add it first")),
        })
        .await?;
        tracing::info!(%slot, "green is healthy");
        Ok(())
    }

    async fn promote(&self, green: &Backend) -> Result<(), RouterError> {
        let slot = self.slot(green)?;
        // Absolute weight: `100%` is relative to the initial 0 (backend DOWN).
        self.run(&format!("set weight {slot} {}", self.config.weight))
            .await?;
        // A no-op for a fresh green; clears a drain when undoing a swap.
        self.run(&format!("set server {slot} state ready")).await?;
        tracing::info!(%slot, weight = self.config.weight, "promoted");
        Ok(())
    }

    async fn drain(&self, blue: &Backend, timeout: Duration) -> Result<(), RouterError> {
        let slot = self.slot(blue)?;
        let servers = self.stat().await.map_err(|e| self.error(e))?;
        if !servers
            .iter()
            .any(|s| s.name != blue.name && s.is_healthy() && s.weight > 0)
        {
            let states = servers
                .iter()
                .map(|s| format!("{}: {}, weight {}", s.name, s.describe(), s.weight))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(RouterError::Failed {
                router: self.label(),
                action: format!("draining {slot}"),
                reason: format!(
                    "no other server of the backend is healthy with a weight above 0, so draining it would cut the service off ({states})"
                ),
            });
        }
        self.run(&format!("set server {slot} state drain")).await?;
        self.wait_idle(&blue.name, timeout).await?;
        // MAINT does not cut in-flight requests; it stops checks and keeps
        // the server from coming back if the container misbehaves.
        self.run(&format!("set server {slot} state maint")).await?;
        tracing::info!(%slot, "drained and in maintenance");
        Ok(())
    }

    async fn retire(&self, blue: &Backend) -> Result<(), RouterError> {
        let slot = self.slot(blue)?;
        if !self
            .run_if_present(&format!("set server {slot} state maint"))
            .await?
        {
            tracing::info!(%slot, "already gone from the backend");
            return Ok(());
        }
        if self.delete(&slot).await? {
            tracing::info!(%slot, "deleted from the backend");
        }
        Ok(())
    }

    async fn remove(&self, green: &Backend) -> Result<(), RouterError> {
        let slot = self.slot(green)?;
        // Undo order matters: give blue its traffic back (`promote(blue)`)
        // before removing green, or the backend has nobody to serve.
        if let Ok(servers) = self.stat().await {
            if !servers
                .iter()
                .any(|s| s.name != green.name && s.status.starts_with("UP") && s.weight > 0)
            {
                tracing::warn!(%slot, "removing the only server taking traffic: requests will fail until another one is promoted");
            }
        }
        if !self.run_if_present(&format!("set weight {slot} 0")).await? {
            tracing::info!(%slot, "not in the backend; nothing to remove");
            return Ok(());
        }
        self.run(&format!("set server {slot} state drain")).await?;
        let waited = self
            .wait_idle(&green.name, self.config.retire_timeout)
            .await;
        self.run(&format!("set server {slot} state maint")).await?;
        if let Err(e) = waited {
            tracing::warn!(%slot, error = %e, "removing green with requests in flight");
        }
        self.delete(&slot).await?;
        tracing::info!(%slot, "removed from the backend");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_timeout_saturates_instead_of_panicking() {
        let before = Instant::now();
        let far = deadline_after(Duration::MAX);
        assert!(far >= before + crate::config::units::MAX_DURATION);
        assert!(deadline_after(Duration::from_secs(1)) <= Instant::now() + Duration::from_secs(1));
    }

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
    fn names_and_addresses_cannot_inject_commands() {
        assert!(check_name("server", "web_green-2.a:b").is_ok());
        for bad in ["", "a b", "a;b", "a/b", "a\nb"] {
            assert!(check_name("server", bad).is_err(), "{bad:?}");
        }
        assert!(check_address("127.0.0.1:27123").is_ok());
        assert!(check_address("[::1]:80").is_ok());
        for bad in ["", "127.0.0.1:1 weight 100", "a;b", "1.2.3.4:5\n"] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
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
