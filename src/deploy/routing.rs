//! Picks the router backend from the config, and where a container is
//! reachable for it.
//!
//! Addresses: HAProxy runs on the host and reaches containers through
//! their published loopback ports. Green publishes each of blue's fixed host
//! ports on a free `127.0.0.1` port below 32768 (chosen at plan time, see
//! `runtime::docker`), and that `127.0.0.1:<port>` is green's `server` address.
//! A container that publishes nothing is reached at its container IP and
//! first exposed port instead.
//!
//! Blue's server in HAProxy is, in this order: the name in blue's
//! `tuner.router.server` label (every green carries its own, so the next
//! deploy finds it), `deploy.router.server`, or the one server of the
//! backend whose address is blue's published address (`prepare`).

use std::path::Path;

use super::router::haproxy::HaproxyRouter;
use super::router::none::NoRouter;
use super::router::{Preflight, Router};
use super::DeployError;
use crate::config::deploy::{RouterConfig, RouterKind};
use crate::runtime::Container;

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
            if let Some(state) = haproxy.state_file.as_mut() {
                if state.is_relative() {
                    *state = base_dir.join(&*state);
                }
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
pub fn address(c: &Container) -> String {
    if let Some(p) = c.published.iter().find(|p| !p.host_port.is_empty()) {
        return format!("127.0.0.1:{}", p.host_port);
    }
    let ip = c.first_ip().unwrap_or("0.0.0.0");
    let port = c
        .exposed
        .first()
        .and_then(|p| p.split('/').next())
        .unwrap_or("80");
    format!("{ip}:{port}")
}

/// Which server of the router's backend is blue: the name a previous deploy
/// labelled it with, else `deploy.router.server`, else the server whose
/// address is blue's published address. A name that is not in the backend
/// (a reload dropped it, or the config names another service) is skipped.
pub fn blue_server(
    check: &Preflight,
    label: Option<&str>,
    configured: Option<&str>,
    address: &str,
    container: &str,
) -> Result<String, DeployError> {
    let has = |name: &str| check.servers.iter().any(|s| s.name == name);
    if let Some(name) = label.filter(|n| has(n)) {
        return Ok(name.to_string());
    }
    if let Some(name) = configured.filter(|n| has(n)) {
        return Ok(name.to_string());
    }
    let by_address: Vec<&str> = check
        .servers
        .iter()
        .filter(|s| s.address == address)
        .map(|s| s.name.as_str())
        .collect();
    if let [one] = by_address.as_slice() {
        return Ok(one.to_string());
    }
    let servers = check
        .servers
        .iter()
        .map(|s| format!("{} {}", s.name, s.address))
        .collect::<Vec<_>>()
        .join(", ");
    let tried = [
        label.map(|l| format!("label {SERVER_LABEL}={l}")),
        configured.map(|c| format!("deploy.router.server {c}")),
        Some(format!("address {address}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    Err(DeployError::RouterBlue {
        container: container.to_string(),
        target: check.target.clone(),
        reason: if by_address.len() > 1 {
            format!(
                "several servers have blue's address {address} ({})",
                by_address.join(", ")
            )
        } else {
            format!("no server matches ({tried}); servers: [{servers}]")
        },
    })
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

    fn check(servers: &[(&str, &str)]) -> Preflight {
        Preflight {
            target: "haproxy backend app via /s".into(),
            checked: String::new(),
            servers: servers
                .iter()
                .map(|(name, address)| crate::deploy::router::ServerView {
                    name: name.to_string(),
                    address: address.to_string(),
                    state: "UP".into(),
                    weight: 1,
                })
                .collect(),
            state_file: None,
        }
    }

    #[test]
    fn blue_server_prefers_label_then_config_then_address() {
        let c = check(&[("web0", "127.0.0.1:27001"), ("web_x", "127.0.0.1:27002")]);
        let pick = |label, configured, addr| blue_server(&c, label, configured, addr, "web-1");
        assert_eq!(
            pick(Some("web_x"), Some("web0"), "127.0.0.1:27001").unwrap(),
            "web_x"
        );
        assert_eq!(pick(None, Some("web0"), "127.0.0.1:27002").unwrap(), "web0");
        // A stale label (a reload dropped that server) falls back to the address.
        assert_eq!(
            pick(Some("gone"), None, "127.0.0.1:27002").unwrap(),
            "web_x"
        );
        let err = pick(Some("gone"), Some("nope"), "127.0.0.1:9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("label tuner.router.server=gone"), "{err}");
        assert!(err.contains("deploy.router.server nope"), "{err}");
        assert!(err.contains("address 127.0.0.1:9"), "{err}");
        assert!(
            err.contains("web0 127.0.0.1:27001, web_x 127.0.0.1:27002"),
            "{err}"
        );
        let twice = check(&[("a", "127.0.0.1:1"), ("b", "127.0.0.1:1")]);
        let err = blue_server(&twice, None, None, "127.0.0.1:1", "web-1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("several servers"), "{err}");
    }
}
