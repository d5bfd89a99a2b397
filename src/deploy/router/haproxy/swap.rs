//! The swap's steps as the [`Router`] trait asks for them: register green
//! with weight 0, wait for its health check, promote it, drain and retire
//! blue, or remove green when a swap is undone. The order and its reasons
//! are in the parent module's doc.

use std::time::Duration;

use async_trait::async_trait;

use super::HaproxyRouter;
use crate::deploy::router::{Backend, Preflight, Router, RouterError, ServerView};

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

#[async_trait]
impl Router for HaproxyRouter {
    fn kind(&self) -> &'static str {
        "haproxy"
    }

    fn drains(&self) -> bool {
        true
    }

    fn checks_green(&self) -> bool {
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
            state_file: self
                .config
                .state_file
                .as_ref()
                .map(|p| p.display().to_string()),
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

    async fn rehome(&self, slot: &Backend, standby: &Backend) -> Result<(), RouterError> {
        self.rehome_slot(slot, standby).await
    }

    async fn save_state(&self) -> Result<Option<String>, RouterError> {
        self.write_state().await
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
    use crate::config::haproxy::check_name;

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
}
