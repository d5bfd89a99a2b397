//! Docker's wire types to tuner's and back: inspect output to `Container`,
//! list entries to `Found`, `HostConfig` to `Limits`, limits to a create or
//! update body, a stats sample to `Usage`.

use bollard::models::{
    ContainerInspectResponse, ContainerStatsResponse, ContainerSummary, ContainerUpdateBody,
    HealthStatusEnum, HostConfig,
};
use chrono::{DateTime, Utc};

use crate::config::units::{cpus_to_nano, nano_to_cpus};
use crate::runtime::container::{
    CheckRun, Container, Health, HealthCommand, Mount, NetworkAddress, Published,
};
use crate::runtime::find::Found;
use crate::runtime::limits::{quota_for, CpuKnob, Limits, MemoryUsage, DEFAULT_CPU_PERIOD};
use crate::runtime::Usage;

pub fn container(c: &ContainerInspectResponse) -> Container {
    let state = c.state.as_ref();
    let health_state = state.and_then(|s| s.health.as_ref());
    let health = match health_state.and_then(|h| h.status) {
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        Some(HealthStatusEnum::STARTING) => Health::Starting,
        _ => Health::None,
    };
    let last_check = health_state
        .and_then(|h| h.log.as_ref())
        .and_then(|l| l.last())
        .map(|r| CheckRun {
            exit_code: r.exit_code.unwrap_or(-1),
            output: r.output.clone().unwrap_or_default(),
        });
    let config = c.config.as_ref();
    let has_healthcheck = config
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.as_ref())
        .is_some_and(|t| !t.is_empty() && t[0] != "NONE");
    let healthcheck = config
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| HealthCommand::from_test(h.test.as_deref()?, h.timeout));
    let settings = c.network_settings.as_ref();
    let mut published: Vec<Published> = settings
        .and_then(|n| n.ports.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|(port, bindings)| {
            bindings.iter().flatten().map(move |b| Published {
                port: port.clone(),
                host_ip: b.host_ip.clone().unwrap_or_default(),
                host_port: b.host_port.clone().unwrap_or_default(),
            })
        })
        .collect();
    published.sort_by(|a, b| a.port.cmp(&b.port));
    let mut networks: Vec<NetworkAddress> = settings
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
        .map(|(name, ep)| NetworkAddress {
            network: name.clone(),
            ip: ep.ip_address.clone().unwrap_or_default(),
        })
        .collect();
    networks.sort_by(|a, b| a.network.cmp(&b.network));
    let mut exposed: Vec<String> = config
        .and_then(|c| c.exposed_ports.clone())
        .unwrap_or_default();
    exposed.sort();
    Container {
        id: c.id.clone().unwrap_or_default(),
        name: c
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
        state: state
            .and_then(|s| s.status)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        running: state.and_then(|s| s.running).unwrap_or(false),
        exit_code: state.and_then(|s| s.exit_code).unwrap_or(0),
        health,
        limits: limits(&c.host_config.clone().unwrap_or_default()),
        labels: config.and_then(|c| c.labels.clone()).unwrap_or_default(),
        restarting: state.and_then(|s| s.restarting).unwrap_or(false),
        oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
        has_healthcheck,
        last_check,
        healthcheck,
        mounts: c
            .mounts
            .iter()
            .flatten()
            .map(|m| Mount {
                kind: m.typ.clone().unwrap_or_default(),
                name: m.name.clone(),
                destination: m.destination.clone().unwrap_or_default(),
            })
            .collect(),
        published,
        exposed,
        networks,
        stop_signal: config.and_then(|c| c.stop_signal.clone()),
        stop_timeout: config.and_then(|c| c.stop_timeout),
    }
}

pub fn found(s: &ContainerSummary) -> Found {
    let name = s
        .names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default();
    Found {
        id: s.id.clone().unwrap_or_default(),
        name,
        state: s.state.map(|st| st.to_string()).unwrap_or_default(),
        labels: s.labels.clone().unwrap_or_default(),
    }
}

/// Reads the limits from a container's `HostConfig`.
pub fn limits(hc: &HostConfig) -> Limits {
    let quota = hc.cpu_quota.unwrap_or(0);
    let nano = hc.nano_cpus.unwrap_or(0);
    let (cpus, knob) = if quota > 0 {
        let period = hc
            .cpu_period
            .filter(|p| *p > 0)
            .unwrap_or(DEFAULT_CPU_PERIOD);
        (quota as f64 / period as f64, CpuKnob::Quota { period })
    } else {
        (nano_to_cpus(nano), CpuKnob::NanoCpus)
    };
    Limits {
        cpus,
        memory: hc.memory.unwrap_or(0).max(0) as u64,
        memory_swap: hc.memory_swap.unwrap_or(0),
        knob,
    }
}

/// Writes `limits` into a `HostConfig` (for a new container).
pub fn apply_limits(limits: &Limits, hc: &mut HostConfig) {
    match limits.knob {
        CpuKnob::NanoCpus => {
            hc.nano_cpus = Some(cpus_to_nano(limits.cpus));
            hc.cpu_quota = Some(0);
        }
        CpuKnob::Quota { period } => {
            hc.nano_cpus = Some(0);
            hc.cpu_period = Some(period);
            hc.cpu_quota = Some(quota_for(limits.cpus, period));
        }
    }
    hc.memory = Some(limits.memory as i64);
    hc.memory_swap = Some(limits.memory_swap);
}

/// The body of a live update (`docker update`): the container's own CPU
/// knob, Memory and MemorySwap together.
pub fn update_body(limits: &Limits) -> ContainerUpdateBody {
    let mut body = ContainerUpdateBody {
        memory: Some(limits.memory as i64),
        memory_swap: Some(limits.memory_swap),
        ..Default::default()
    };
    match limits.knob {
        CpuKnob::NanoCpus => body.nano_cpus = Some(cpus_to_nano(limits.cpus)),
        CpuKnob::Quota { period } => {
            body.cpu_period = Some(period);
            body.cpu_quota = Some(quota_for(limits.cpus, period));
        }
    }
    body
}

/// Memory as `docker stats` counts it (usage minus reclaimable page cache)
/// and the CPU time used so far.
pub fn usage(stats: &ContainerStatsResponse) -> Usage {
    let mem = stats.memory_stats.clone().unwrap_or_default();
    let extra = mem.stats.unwrap_or_default();
    let inactive_file = extra
        .get("total_inactive_file")
        .or_else(|| extra.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    let cpu_ns = stats
        .cpu_stats
        .as_ref()
        .and_then(|c| c.cpu_usage.as_ref())
        .and_then(|u| u.total_usage)
        .unwrap_or(0);
    Usage {
        read_at: stats
            .read
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(Utc::now),
        cpu_seconds: cpu_ns as f64 / 1e9,
        memory: MemoryUsage {
            usage: mem.usage.unwrap_or(0),
            inactive_file,
            limit: mem.limit.unwrap_or(0),
        },
        oom_events: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_cpus_container_keeps_its_knob() {
        let hc = HostConfig {
            nano_cpus: Some(1_500_000_000),
            memory: Some(512 << 20),
            memory_swap: Some(1024 << 20),
            ..Default::default()
        };
        let l = limits(&hc);
        assert_eq!(l.knob, CpuKnob::NanoCpus);
        assert_eq!(l.cpus, 1.5);
        let n = l.resized(0.5, 256 << 20);
        assert_eq!(n.memory_swap, 512 << 20);
        let body = update_body(&n);
        assert_eq!(body.nano_cpus, Some(500_000_000));
        assert_eq!(body.cpu_quota, None);
        assert_eq!(body.memory, Some(256 << 20));
        assert_eq!(body.memory_swap, Some(512 << 20));
    }

    #[test]
    fn quota_container_is_updated_through_its_quota() {
        let hc = HostConfig {
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            ..Default::default()
        };
        let l = limits(&hc);
        assert_eq!(l.knob, CpuKnob::Quota { period: 100_000 });
        assert_eq!(l.cpus, 0.5);
        let body = update_body(&l.resized(1.25, 128 << 20));
        assert_eq!(body.cpu_quota, Some(125_000));
        assert_eq!(body.nano_cpus, None);
        assert_eq!(
            body.memory_swap,
            Some(256 << 20),
            "never-set swap becomes Docker's 2x default"
        );
    }

    #[test]
    fn unlimited_swap_stays_unlimited() {
        let hc = HostConfig {
            memory: Some(512 << 20),
            memory_swap: Some(-1),
            ..Default::default()
        };
        assert_eq!(limits(&hc).resized(1.0, 1 << 30).memory_swap, -1);
    }

    #[test]
    fn inspect_output_becomes_tuners_container() {
        use bollard::models::{
            ContainerConfig, ContainerState, EndpointSettings, HealthConfig, HealthcheckResult,
            MountPoint, NetworkSettings, PortBinding,
        };
        use std::collections::HashMap;
        let c = ContainerInspectResponse {
            id: Some("abc".into()),
            name: Some("/web".into()),
            config: Some(ContainerConfig {
                image: Some("local/web".into()),
                healthcheck: Some(HealthConfig {
                    test: Some(vec!["CMD".into(), "true".into()]),
                    ..Default::default()
                }),
                exposed_ports: Some(vec!["9090/tcp".into(), "8080/tcp".into()]),
                stop_signal: Some("SIGINT".into()),
                ..Default::default()
            }),
            state: Some(ContainerState {
                running: Some(true),
                oom_killed: Some(true),
                health: Some(bollard::models::Health {
                    status: Some(HealthStatusEnum::UNHEALTHY),
                    log: Some(vec![HealthcheckResult {
                        exit_code: Some(1),
                        output: Some("refused".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            mounts: Some(vec![MountPoint {
                typ: Some("volume".into()),
                name: Some("data".into()),
                destination: Some("/data".into()),
                ..Default::default()
            }]),
            network_settings: Some(NetworkSettings {
                ports: Some(HashMap::from([(
                    "8080/tcp".to_string(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some("27001".into()),
                    }]),
                )])),
                networks: Some(HashMap::from([
                    (
                        "z".to_string(),
                        EndpointSettings {
                            ip_address: Some("10.0.0.9".into()),
                            ..Default::default()
                        },
                    ),
                    (
                        "a".to_string(),
                        EndpointSettings {
                            ip_address: Some(String::new()),
                            ..Default::default()
                        },
                    ),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = container(&c);
        assert_eq!((c.name.as_str(), c.health), ("web", Health::Unhealthy));
        assert!(c.has_healthcheck && c.oom_killed && !c.serving());
        assert_eq!(c.last_check.as_ref().unwrap().output, "refused");
        assert_eq!(c.mounts[0].kind, "volume");
        assert_eq!(c.published[0].host_port, "27001");
        assert_eq!(c.exposed, vec!["8080/tcp", "9090/tcp"]);
        assert_eq!(c.first_ip(), Some("10.0.0.9"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn healthcheck_none_is_no_healthcheck() {
        use bollard::models::{ContainerConfig, HealthConfig};
        let with = |test: Option<Vec<&str>>| {
            container(&ContainerInspectResponse {
                config: Some(ContainerConfig {
                    healthcheck: Some(HealthConfig {
                        test: test.map(|t| t.into_iter().map(String::from).collect()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .has_healthcheck
        };
        assert!(with(Some(vec!["CMD-SHELL", "true"])));
        assert!(!with(Some(vec!["NONE"])));
        assert!(!with(Some(vec![])));
        assert!(!with(None));
    }
}
