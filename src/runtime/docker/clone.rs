//! A faithful clone of a container ("green") with new limits.
//!
//! Copies everything that makes the container behave the same — image, cmd,
//! entrypoint, env, labels (Compose's included, so `docker-compose ps` keeps
//! seeing the service), mounts, healthcheck, restart policy, init, stop
//! signal and timeout, user, workdir, log config, networks and aliases — but
//! not what identifies the old one: hostname, the short-id alias, fixed IPs.
//! Fixed host ports cannot be shared while both run, so green publishes
//! each of them on a random 127.0.0.1 port instead.

use std::collections::HashMap;

use bollard::models::{
    ContainerConfig, ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig,
    NetworkingConfig, PortBinding,
};
use serde::{Deserialize, Serialize};

use super::convert::apply_limits;
use crate::runtime::container::CloneSpec;
use crate::runtime::find::short_id;
use crate::runtime::limits::Limits;

/// What to create, and the networks to connect before starting (API 1.41
/// create accepts one network only). Travels inside `CloneSpec::request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GreenSpec {
    pub body: ContainerCreateBody,
    pub extra_networks: Vec<(String, EndpointSettings)>,
    /// Host ports blue publishes on a fixed port that green publishes on a
    /// random loopback port (`8080/tcp -> 127.0.0.1:8080`).
    pub moved_ports: Vec<String>,
}

impl GreenSpec {
    /// The engine-neutral wrapper the deploy plan carries.
    pub fn into_clone_spec(
        self,
        blue: &ContainerInspectResponse,
    ) -> Result<CloneSpec, serde_json::Error> {
        Ok(CloneSpec {
            blue_view: serde_json::to_value(current_spec(blue))?,
            green_view: serde_json::to_value(whole(&self))?,
            extra_networks: self.extra_networks.iter().map(|n| n.0.clone()).collect(),
            moved_ports: self.moved_ports.clone(),
            address: planned_address(&self.body),
            request: serde_json::to_value(self)?,
        })
    }
}

/// Builds green from blue's inspect output; `extra_labels` are added to
/// blue's or replace them.
pub fn green_spec(
    blue: &ContainerInspectResponse,
    limits: &Limits,
    extra_labels: &[(String, String)],
) -> GreenSpec {
    let config = blue.config.clone().unwrap_or_default();
    let mut host = blue.host_config.clone().unwrap_or_default();
    apply_limits(limits, &mut host);
    let moved_ports = republish_randomly(&mut host);
    host.links = host
        .links
        .map(|links| links.iter().map(|l| relink(l)).collect());

    let mut labels = config.labels.clone().unwrap_or_default();
    labels.extend(extra_labels.iter().cloned());

    let blue_short = short_id(blue.id.as_deref().unwrap_or_default()).to_string();
    let mode = host.network_mode.clone().unwrap_or_default();
    let mut networks: Vec<(String, EndpointSettings)> = blue
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ep)| {
            let user_defined = !matches!(name.as_str(), "bridge" | "host" | "none");
            (name, endpoint_for_green(&ep, &blue_short, user_defined))
        })
        .collect();
    networks.sort_by(|a, b| (a.0 != mode).cmp(&(b.0 != mode)).then(a.0.cmp(&b.0)));
    let shares_namespace = mode.starts_with("container:") || mode == "host" || mode == "none";
    let (first, extra_networks) = if shares_namespace || networks.is_empty() {
        (None, Vec::new())
    } else {
        let mut rest = networks;
        let first = rest.remove(0);
        (Some(first), rest)
    };
    if let Some((name, _)) = &first {
        host.network_mode = Some(name.clone());
    }

    let body = ContainerCreateBody {
        hostname: None,
        labels: Some(labels),
        host_config: Some(host),
        networking_config: first.map(|(name, ep)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(name, ep)])),
        }),
        ..from_config(config)
    };
    GreenSpec {
        body,
        extra_networks,
        moved_ports,
    }
}

/// Blue as a create body, unchanged: the left side of the plan's spec diff.
fn current_spec(blue: &ContainerInspectResponse) -> ContainerCreateBody {
    let config = blue.config.clone().unwrap_or_default();
    let endpoints = blue
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .map(|nets| {
            nets.into_iter()
                .map(|(name, ep)| {
                    (
                        name,
                        EndpointSettings {
                            aliases: ep.aliases,
                            links: ep.links.filter(|l| !l.is_empty()),
                            driver_opts: ep.driver_opts,
                            ..Default::default()
                        },
                    )
                })
                .collect::<HashMap<_, _>>()
        });
    ContainerCreateBody {
        host_config: blue.host_config.clone(),
        networking_config: endpoints.map(|e| NetworkingConfig {
            endpoints_config: Some(e),
        }),
        ..from_config(config)
    }
}

/// Everything a container's `Config` says, as a create body. Both sides of
/// the plan's diff start here, so a field the clone copies cannot be missing
/// from the diff (or the other way round).
fn from_config(config: ContainerConfig) -> ContainerCreateBody {
    ContainerCreateBody {
        hostname: config.hostname,
        domainname: config.domainname.filter(|d| !d.is_empty()),
        user: config.user,
        exposed_ports: config.exposed_ports,
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.stdin_once,
        env: config.env,
        cmd: config.cmd,
        healthcheck: config.healthcheck,
        args_escaped: config.args_escaped,
        image: config.image,
        volumes: config.volumes,
        working_dir: config.working_dir,
        entrypoint: config.entrypoint,
        network_disabled: config.network_disabled,
        on_build: config.on_build,
        labels: config.labels,
        stop_signal: config.stop_signal,
        stop_timeout: config.stop_timeout,
        shell: config.shell,
        ..Default::default()
    }
}

/// Green as one create body with every network, for the plan's diff.
fn whole(spec: &GreenSpec) -> ContainerCreateBody {
    let mut body = spec.body.clone();
    let mut endpoints = body
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    endpoints.extend(spec.extra_networks.iter().cloned());
    if !endpoints.is_empty() {
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        });
    }
    body
}

/// `127.0.0.1:<port>` when green publishes a fixed host port (green's
/// ports are chosen at plan time), for the plan and the router.
fn planned_address(body: &ContainerCreateBody) -> Option<String> {
    let bindings = body.host_config.as_ref()?.port_bindings.as_ref()?;
    let mut keys: Vec<&String> = bindings.keys().collect();
    keys.sort();
    keys.into_iter().find_map(|k| {
        bindings.get(k)?.as_ref()?.iter().find_map(|b| {
            let port = b
                .host_port
                .as_deref()
                .filter(|p| !p.is_empty() && *p != "0")?;
            let ip = b
                .host_ip
                .as_deref()
                .filter(|i| !i.is_empty() && *i != "0.0.0.0")
                .unwrap_or("127.0.0.1");
            Some(format!("{ip}:{port}"))
        })
    })
}

/// Blue's endpoint minus what belongs to blue alone: its short-id alias,
/// fixed addresses and runtime fields the engine fills in.
fn endpoint_for_green(
    ep: &EndpointSettings,
    blue_short: &str,
    user_defined: bool,
) -> EndpointSettings {
    let aliases = ep.aliases.as_ref().map(|a| {
        a.iter()
            .filter(|x| x.as_str() != blue_short)
            .cloned()
            .collect::<Vec<_>>()
    });
    EndpointSettings {
        aliases: if user_defined {
            aliases.filter(|a| !a.is_empty())
        } else {
            None
        },
        links: ep.links.clone().filter(|l| !l.is_empty()),
        driver_opts: ep.driver_opts.clone(),
        ..Default::default()
    }
}

/// Inspect shows legacy links as `/target:/<blue name>/alias`; a create
/// wants `target:alias`.
fn relink(link: &str) -> String {
    match link.split_once(':') {
        Some((target, alias)) => format!(
            "{}:{}",
            target.trim_start_matches('/'),
            alias.rsplit('/').next().unwrap_or(alias)
        ),
        None => link.trim_start_matches('/').to_string(),
    }
}

/// Every binding with a fixed host port becomes `127.0.0.1:<random>`.
fn republish_randomly(host: &mut HostConfig) -> Vec<String> {
    let mut moved = Vec::new();
    let Some(bindings) = host.port_bindings.as_mut() else {
        return moved;
    };
    for (port, list) in bindings.iter_mut() {
        let Some(list) = list.as_mut() else { continue };
        let fixed: Vec<String> = list
            .iter()
            .filter(|b| {
                b.host_port
                    .as_deref()
                    .is_some_and(|p| !p.is_empty() && p != "0")
            })
            .map(|b| {
                format!(
                    "{port} -> {}:{}",
                    b.host_ip
                        .as_deref()
                        .filter(|i| !i.is_empty())
                        .unwrap_or("0.0.0.0"),
                    b.host_port.as_deref().unwrap_or("")
                )
            })
            .collect();
        if !fixed.is_empty() {
            moved.extend(fixed);
            *list = vec![PortBinding {
                host_ip: Some("127.0.0.1".to_string()),
                host_port: Some(
                    free_loopback_port()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                ),
            }];
        }
    }
    moved.sort();
    moved
}

/// A free 127.0.0.1 port below 32768: ports in the kernel's ephemeral
/// range can be held by TIME_WAIT sockets, which makes docker-proxy fail to
/// bind. `None` lets Docker choose.
fn free_loopback_port() -> Option<u16> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id();
    (0..500u32)
        .map(|i| 20_000 + ((seed.wrapping_add(i.wrapping_mul(7919))) % 12_000) as u16)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, NetworkSettings};

    fn blue() -> ContainerInspectResponse {
        let mut networks = HashMap::new();
        networks.insert(
            "proj_default".to_string(),
            EndpointSettings {
                aliases: Some(vec!["web".into(), "abcdef012345".into()]),
                ip_address: Some("172.18.0.5".into()),
                ..Default::default()
            },
        );
        networks.insert(
            "proj_back".to_string(),
            EndpointSettings {
                aliases: Some(vec!["web".into()]),
                ..Default::default()
            },
        );
        let mut ports = HashMap::new();
        ports.insert(
            "8080/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some("27080".into()),
            }]),
        );
        ContainerInspectResponse {
            id: Some("abcdef0123456789".into()),
            config: Some(ContainerConfig {
                hostname: Some("abcdef012345".into()),
                image: Some("local/web".into()),
                labels: Some(HashMap::from([(
                    "com.docker.compose.service".to_string(),
                    "web".to_string(),
                )])),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some("proj_default".into()),
                nano_cpus: Some(1_000_000_000),
                init: Some(true),
                port_bindings: Some(ports),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(networks),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn legacy_links_lose_blues_name() {
        assert_eq!(relink("/proj_db_1:/proj_web_1/db"), "proj_db_1:db");
        assert_eq!(relink("/proj_db_1"), "proj_db_1");
    }

    #[test]
    fn green_copies_identity_free_config_with_new_limits() {
        let b = blue();
        let limits =
            super::super::convert::limits(b.host_config.as_ref().unwrap()).resized(1.5, 768 << 20);
        let spec = green_spec(
            &b,
            &limits,
            &[
                ("tuner.deploy.id".to_string(), "d1".to_string()),
                (
                    "com.docker.compose.config-hash".to_string(),
                    "newhash".to_string(),
                ),
            ],
        );
        let body = &spec.body;
        assert_eq!(body.hostname, None);
        assert_eq!(body.image.as_deref(), Some("local/web"));
        let labels = body.labels.as_ref().unwrap();
        assert_eq!(labels["com.docker.compose.service"], "web");
        assert_eq!(labels["com.docker.compose.config-hash"], "newhash");
        assert_eq!(labels["tuner.deploy.id"], "d1");
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.memory, Some(768 << 20));
        assert_eq!(host.init, Some(true));
        let bound = &host.port_bindings.as_ref().unwrap()["8080/tcp"]
            .as_ref()
            .unwrap()[0];
        let port: u16 = bound.host_port.as_deref().unwrap().parse().unwrap();
        assert!((20_000..32_768).contains(&port), "{port}");
        assert_eq!(
            spec.moved_ports,
            vec!["8080/tcp -> 127.0.0.1:27080".to_string()]
        );
        let eps = body
            .networking_config
            .as_ref()
            .unwrap()
            .endpoints_config
            .as_ref()
            .unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(
            eps["proj_default"].aliases,
            Some(vec!["web".to_string()]),
            "short-id alias dropped"
        );
        assert_eq!(eps["proj_default"].ip_address, None);
        assert_eq!(spec.extra_networks.len(), 1);
        assert_eq!(spec.extra_networks[0].0, "proj_back");

        let wrapped = spec.clone().into_clone_spec(&b).unwrap();
        assert_eq!(wrapped.extra_networks, vec!["proj_back".to_string()]);
        assert_eq!(wrapped.address, Some(format!("127.0.0.1:{port}")));
        let back: GreenSpec = serde_json::from_value(wrapped.request).unwrap();
        assert_eq!(back, spec, "the request survives the round trip");
    }
}
