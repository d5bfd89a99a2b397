//! Picks the router backend from the config, and where a container is
//! reachable for it.
//!
//! Addresses: HAProxy runs on the host and reaches containers through
//! their published loopback ports. Green publishes each of blue's fixed host
//! ports on a free `127.0.0.1` port below 32768 (chosen at plan time, see
//! `docker::clone`), and that `127.0.0.1:<port>` is green's `server` address.
//! A container that publishes nothing is reached at its container IP and
//! first exposed port instead.
//!
//! Blue's server in HAProxy is, in this order: the name in blue's
//! `tuner.router.server` label (every green carries its own, so the next
//! deploy finds it), `deploy.router.server`, or the one server of the
//! backend whose address is blue's published address (`prepare`).

use std::path::Path;

use bollard::models::ContainerInspectResponse;

use super::router::haproxy::HaproxyRouter;
use super::router::none::NoRouter;
use super::router::Router;
use crate::config::deploy::{RouterConfig, RouterKind};

/// Label on green naming its router-side server, so the next deploy knows
/// what blue is called in the router.
pub const SERVER_LABEL: &str = "tuner.router.server";

/// A problem with the `deploy.router` config: the key path under
/// `deploy.router` (for `file:line`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub keys: Vec<String>,
    pub problem: String,
}

/// Builds the router the config asks for. Nothing is sent to it yet. A
/// relative HAProxy socket path is taken relative to `base_dir` (the
/// config file's folder).
pub fn router_for(
    config: &RouterConfig,
    base_dir: &Path,
) -> Result<Box<dyn Router>, Vec<ConfigProblem>> {
    match config.kind {
        RouterKind::None => Ok(Box::new(NoRouter)),
        RouterKind::Haproxy => {
            let Some(haproxy) = &config.haproxy else {
                return Err(vec![ConfigProblem {
                    keys: vec!["kind".into()],
                    problem: "kind is haproxy but there is no `haproxy:` section; add `haproxy: {socket: /run/haproxy/admin.sock, backend: <backend>}` under deploy.router".into(),
                }]);
            };
            let mut haproxy = haproxy.clone();
            if haproxy.socket.is_relative() && !haproxy.socket.as_os_str().is_empty() {
                haproxy.socket = base_dir.join(&haproxy.socket);
            }
            if let Err(problems) = haproxy.validate() {
                return Err(problems
                    .into_iter()
                    .map(|p| {
                        // Each problem starts with its key (`check.inter: ...`,
                        // `backend "x" ...`).
                        let key = p.split([':', ' ']).next().unwrap_or_default().to_string();
                        let mut keys = vec!["haproxy".to_string()];
                        keys.extend(key.split('.').map(str::to_string));
                        ConfigProblem {
                            keys,
                            problem: format!("haproxy.{p}"),
                        }
                    })
                    .collect());
            }
            match HaproxyRouter::new(haproxy) {
                Ok(r) => Ok(Box::new(r)),
                Err(e) => Err(vec![ConfigProblem {
                    keys: vec!["haproxy".into()],
                    problem: e.to_string(),
                }]),
            }
        }
    }
}

pub fn kind_name(config: &RouterConfig) -> &'static str {
    match config.kind {
        RouterKind::None => "none",
        RouterKind::Haproxy => "haproxy",
    }
}

/// `127.0.0.1:<published port>` for the first published port, else
/// `<container ip>:<first exposed port>`.
pub fn address(c: &ContainerInspectResponse) -> String {
    let ports = c.network_settings.as_ref().and_then(|n| n.ports.as_ref());
    if let Some(ports) = ports {
        let mut keys: Vec<&String> = ports.keys().collect();
        keys.sort();
        for k in keys {
            if let Some(Some(b)) = ports.get(k) {
                if let Some(p) = b
                    .iter()
                    .find_map(|b| b.host_port.clone().filter(|p| !p.is_empty()))
                {
                    return format!("127.0.0.1:{p}");
                }
            }
        }
    }
    let ip = super::health::green_ip(c).unwrap_or_else(|| "0.0.0.0".into());
    let port = c
        .config
        .as_ref()
        .and_then(|c| c.exposed_ports.as_ref())
        .and_then(|p| p.iter().min().cloned())
        .and_then(|p| p.split('/').next().map(str::to_string))
        .unwrap_or_else(|| "80".into());
    format!("{ip}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::router::haproxy::HaproxyConfig;

    #[test]
    fn haproxy_needs_its_section_and_valid_values() {
        let base = Path::new("/etc/tuner");
        let mut config = RouterConfig {
            kind: RouterKind::Haproxy,
            ..Default::default()
        };
        let problems = router_for(&config, base).err().unwrap();
        assert_eq!(problems[0].keys, vec!["kind".to_string()]);

        let mut h = HaproxyConfig::new("run/admin.sock", "web");
        h.weight = 0;
        h.check.inter = std::time::Duration::ZERO;
        config.haproxy = Some(h);
        let problems = router_for(&config, base).err().unwrap();
        let keys: Vec<Vec<String>> = problems.iter().map(|p| p.keys.clone()).collect();
        assert_eq!(
            keys,
            vec![vec!["haproxy", "weight"], vec!["haproxy", "check", "inter"]]
        );
        assert!(
            problems[1].problem.starts_with("haproxy.check.inter: "),
            "{problems:?}"
        );

        config.haproxy = Some(HaproxyConfig::new("run/admin.sock", "web"));
        let router = router_for(&config, base).ok().unwrap();
        assert_eq!(router.kind(), "haproxy");
        assert!(router.drains());
        assert!(!router_for(&RouterConfig::default(), base)
            .ok()
            .unwrap()
            .drains());
    }
}
