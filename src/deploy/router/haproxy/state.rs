//! What survives a reload of HAProxy: the service's own server and the
//! server-state file.
//!
//! A reload re-reads haproxy.cfg, so runtime changes survive it only in
//! two ways HAProxy supports: the servers the config defines keep their
//! runtime state when `load-server-state-from-file` reads a file written
//! by `show servers state`, and servers added at runtime vanish. Hence the
//! swap ends by moving green back into blue's own server (`rehome`), the
//! name haproxy.cfg defines, and by writing the state file (`write_state`).
//!
//! What the state file restores (HAProxy 2.6, checked on these machines):
//! admin state, weight and port always; the IP address only for a server
//! the config declares by host name with `init-addr last,...`. A server
//! declared as `127.0.0.1:27001` gets its port back, which is all a green
//! published on another loopback port needs.

use super::HaproxyRouter;
use crate::deploy::router::{Backend, RouterError};

/// `127.0.0.1:27123` -> (`127.0.0.1`, `27123`); `[::1]:80` -> (`::1`, `80`).
pub(super) fn split_address(address: &str) -> Result<(&str, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("address {address:?} has no port, e.g. `127.0.0.1:27123`"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("address {address:?} has no valid port"))?;
    if host.is_empty() || host.parse::<std::net::IpAddr>().is_err() {
        return Err(format!(
            "address {address:?} is not an IP address and port; HAProxy's `set server ... addr` takes an IP"
        ));
    }
    Ok((host, port))
}

/// `set server ... addr` answers with what it did: "IP changed from ...",
/// "no need to change the addr, port changed from ...", "no need to change
/// the addr" (same address): all of them success.
fn address_changed(message: &str) -> bool {
    message.starts_with("IP changed from") || message.starts_with("no need to change the addr")
}

impl HaproxyRouter {
    /// Points `slot` at the address it is given, lets it take traffic, then
    /// retires `standby`. The slot is UP before the standby stops taking
    /// new requests, so no request meets an empty backend; the standby's
    /// in-flight requests finish (same container) before `del server`.
    pub(super) async fn rehome_slot(
        &self,
        slot: &Backend,
        standby: &Backend,
    ) -> Result<(), RouterError> {
        let slot_ref = self.slot(slot)?;
        let standby_ref = self.slot(standby)?;
        if slot.name == standby.name {
            return Ok(());
        }
        let (ip, port) = split_address(&slot.address).map_err(|reason| RouterError::Failed {
            router: self.label(),
            action: format!("pointing {slot_ref} at green"),
            reason,
        })?;
        let set_addr = format!("set server {slot_ref} addr {ip} port {port}");
        match self.api.run(&set_addr).await {
            Ok(_) => {}
            // HAProxy 2.6 reports the change itself at warning level.
            Err(e) if e.rejection().is_some_and(address_changed) => {}
            Err(e)
                if e.rejection()
                    .is_some_and(|m| m.starts_with("No such server")) =>
            {
                // Blue's server was one added at runtime and a reload
                // dropped it: the standby stays the service's server.
                tracing::warn!(%slot_ref, %standby_ref, "blue's server is gone from the backend; green keeps its standby server");
                return Ok(());
            }
            Err(e) => return Err(self.error(e)),
        }
        self.run(&format!("set weight {slot_ref} {}", self.config.weight))
            .await?;
        self.run(&format!("set server {slot_ref} state ready"))
            .await?;
        let what = format!("{slot_ref} back up at {}", slot.address);
        // `UP 1/2` (out of maintenance, one check from fully up) already
        // takes requests, and the address is the one green was just
        // checked at under the standby's name.
        self.poll(&slot.name, &what, self.config.retire_timeout, |s| match s {
            Some(s) => Ok(s.status.starts_with("UP") && s.weight > 0),
            None => Err(format!("{slot_ref} left the backend")),
        })
        .await?;
        if self
            .run_if_present(&format!("set server {standby_ref} state maint"))
            .await?
        {
            self.delete(&standby_ref).await?;
        }
        tracing::info!(%slot_ref, address = %slot.address, "service's server points at green; standby removed");
        Ok(())
    }

    /// Writes `show servers state` (every backend, as HAProxy's own docs
    /// do before a reload) to `state_file`, atomically.
    pub(super) async fn write_state(&self) -> Result<Option<String>, RouterError> {
        let Some(path) = &self.config.state_file else {
            return Ok(None);
        };
        let command = "show servers state";
        let text = self.api.run(command).await.map_err(|e| self.error(e))?;
        if text.lines().next().map(str::trim) != Some("1") {
            return Err(RouterError::Failed {
                router: self.label(),
                action: format!("`{command}`"),
                reason: format!(
                    "expected a version-1 server-state dump, got {:?}",
                    text.lines().next().unwrap_or_default()
                ),
            });
        }
        let failed = |reason: String| RouterError::Failed {
            router: self.label(),
            action: format!("writing the server-state file {}", path.display()),
            reason,
        };
        let existed = path.exists();
        crate::journal::write_atomic(path, format!("{text}\n").as_bytes())
            .map_err(|e| failed(e.to_string()))?;
        if !existed {
            // HAProxy may read it as another user; it holds only addresses
            // and states.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| failed(e.to_string()))?;
        }
        Ok(Some(path.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_ip_and_port() {
        assert_eq!(
            split_address("127.0.0.1:27123").unwrap(),
            ("127.0.0.1", 27123)
        );
        assert_eq!(split_address("[::1]:80").unwrap(), ("::1", 80));
        assert_eq!(
            split_address("172.18.0.5:8080").unwrap(),
            ("172.18.0.5", 8080)
        );
        for bad in ["web:80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", ":80"] {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn haproxys_reports_of_an_address_change_are_success() {
        for ok in [
            "IP changed from '127.0.0.1' to '127.0.0.3', port changed from '1' to '2' by 'stats socket command'",
            "no need to change the addr, port changed from '20599' to '27205' by 'stats socket command'",
        ] {
            assert!(address_changed(ok), "{ok}");
        }
        assert!(!address_changed("No such server."));
    }
}
