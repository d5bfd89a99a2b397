//! Which services a blue-green swap may clone.

use super::DeployError;
use crate::config::deploy::DeployConfig;
use crate::runtime::Container;

/// Container label that marks a service `stateful` or `stateless`.
pub const ROLE_LABEL: &str = "tuner.role";

/// Refuses stateful services: by name from the config list, by the
/// `tuner.role` label, or because they mount a named volume. The config's
/// `stateless` list, then a `tuner.role=stateless` label, allow a clone.
pub fn check_clonable(
    service: &str,
    blue: &Container,
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
    let role = blue.labels.get(ROLE_LABEL).map(String::as_str);
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
        .iter()
        .filter(|m| m.kind == "volume")
        .filter_map(|m| m.name.as_ref().map(|n| (n, &m.destination)))
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
    use crate::runtime::fake::FakeContainer;
    use crate::runtime::Mount;

    fn plain() -> Container {
        FakeContainer::serving("grafana", &[]).view()
    }

    fn with_volume(name: &str) -> Container {
        Container {
            mounts: vec![Mount {
                kind: "volume".into(),
                name: Some(name.into()),
                destination: "/data".into(),
            }],
            ..plain()
        }
    }

    #[test]
    fn default_list_and_named_volumes_are_refused() {
        let cfg = DeployConfig::default();
        let err = check_clonable("postgres", &plain(), &cfg)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--strategy in-place") && err.contains("maintenance window"),
            "{err}"
        );
        assert!(check_clonable("grafana", &with_volume("demo_grafana"), &cfg).is_err());
        check_clonable("grafana", &with_volume(&"a".repeat(64)), &cfg).unwrap();
        check_clonable("grafana", &plain(), &cfg).unwrap();
    }

    #[test]
    fn role_label_decides_before_volumes() {
        let cfg = DeployConfig::default();
        let mut c = with_volume("demo_grafana");
        c.labels
            .insert(ROLE_LABEL.to_string(), "stateless".to_string());
        check_clonable("grafana", &c, &cfg).unwrap();
        c.labels
            .insert(ROLE_LABEL.to_string(), "stateful".to_string());
        assert!(check_clonable("grafana", &plain(), &cfg).is_ok());
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
