//! Which services a blue-green swap may clone.

use bollard::models::ContainerInspectResponse;

use super::DeployError;
use crate::config::deploy::DeployConfig;

/// Container label that marks a service `stateful` or `stateless`.
pub const ROLE_LABEL: &str = "tuner.role";

/// Refuses stateful services: by name from the config list, by the
/// `tuner.role` label, or because they mount a named volume. The config's
/// `stateless` list, then a `tuner.role=stateless` label, allow a clone.
pub fn check_clonable(
    service: &str,
    blue: &ContainerInspectResponse,
    config: &DeployConfig,
) -> Result<(), DeployError> {
    if config.stateless.iter().any(|s| s == service) {
        return Ok(());
    }
    let hint =
        format!("; to clone it anyway, list {service:?} under deploy.stateless in the config");
    if config.stateful.iter().any(|s| s == service) {
        return Err(DeployError::Stateful {
            service: service.to_string(),
            reason: "listed under deploy.stateful".into(),
            hint: String::new(),
        });
    }
    let role = blue
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|l| l.get(ROLE_LABEL))
        .map(String::as_str);
    match role {
        Some("stateful") => {
            return Err(DeployError::Stateful {
                service: service.to_string(),
                reason: format!("labelled {ROLE_LABEL}=stateful"),
                hint: String::new(),
            })
        }
        Some("stateless") => return Ok(()),
        _ => {}
    }
    let named: Vec<String> = blue
        .mounts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|m| m.typ.as_deref() == Some("volume"))
        .filter_map(|m| {
            m.name
                .clone()
                .map(|n| (n, m.destination.clone().unwrap_or_default()))
        })
        .filter(|(n, _)| !is_anonymous(n))
        .map(|(n, d)| format!("{n} at {d}"))
        .collect();
    if !named.is_empty() {
        return Err(DeployError::Stateful {
            service: service.to_string(),
            reason: format!("named volume {}", named.join(", ")),
            hint,
        });
    }
    Ok(())
}

/// Anonymous volumes are named by 64 hex digits.
fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::MountPoint;

    fn with_volume(name: &str) -> ContainerInspectResponse {
        ContainerInspectResponse {
            mounts: Some(vec![MountPoint {
                typ: Some("volume".into()),
                name: Some(name.into()),
                destination: Some("/data".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn default_list_and_named_volumes_are_refused() {
        let cfg = DeployConfig::default();
        let err = check_clonable("postgres", &Default::default(), &cfg)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--strategy in-place") && err.contains("maintenance window"),
            "{err}"
        );
        assert!(check_clonable("grafana", &with_volume("demo_grafana"), &cfg).is_err());
        check_clonable("grafana", &with_volume(&"a".repeat(64)), &cfg).unwrap();
        check_clonable("grafana", &Default::default(), &cfg).unwrap();
    }

    #[test]
    fn role_label_decides_before_volumes() {
        let cfg = DeployConfig::default();
        let mut c = with_volume("demo_grafana");
        c.config = Some(bollard::models::ContainerConfig {
            labels: Some(
                [(ROLE_LABEL.to_string(), "stateless".to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        });
        check_clonable("grafana", &c, &cfg).unwrap();
        c.config = Some(bollard::models::ContainerConfig {
            labels: Some(
                [(ROLE_LABEL.to_string(), "stateful".to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        });
        assert!(check_clonable("grafana", &Default::default(), &cfg).is_ok());
        assert!(check_clonable("grafana", &c, &cfg).is_err());
    }

    #[test]
    fn stateless_list_allows_named_volumes() {
        let cfg = DeployConfig {
            stateless: vec!["grafana".into()],
            ..Default::default()
        };
        check_clonable("grafana", &with_volume("demo_grafana"), &cfg).unwrap();
    }
}
