//! Which containers make up a service: Compose labels first, then the
//! container name.

use std::collections::HashMap;

pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
pub const COMPOSE_ONEOFF: &str = "com.docker.compose.oneoff";
pub const COMPOSE_NUMBER: &str = "com.docker.compose.container-number";
pub const COMPOSE_CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const COMPOSE_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const COMPOSE_CONFIG_FILES: &str = "com.docker.compose.project.config_files";

/// A service as the user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceQuery {
    /// Compose service name or container name.
    pub service: String,
    /// Compose project, when given.
    pub project: Option<String>,
}

impl std::fmt::Display for ServiceQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.project {
            Some(p) => write!(f, "service {:?} of Compose project {p:?}", self.service),
            None => write!(f, "service {:?}", self.service),
        }
    }
}

/// One container found for a service, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: String,
    pub name: String,
    pub state: String,
    pub labels: HashMap<String, String>,
}

impl Found {
    pub fn describe(&self) -> String {
        let project = self
            .labels
            .get(COMPOSE_PROJECT)
            .map(|p| format!(" project={p}"))
            .unwrap_or_default();
        let service = self
            .labels
            .get(COMPOSE_SERVICE)
            .map(|s| format!(" service={s}"))
            .unwrap_or_default();
        format!(
            "{} ({}{project}{service}, {})",
            self.name,
            short_id(&self.id),
            self.state
        )
    }
}

/// Containers of `query` among `all`: by Compose labels (one-off `run`
/// containers excluded), else by exact container name.
pub fn select<'a>(query: &ServiceQuery, all: &'a [Found]) -> Vec<&'a Found> {
    let by_label: Vec<&Found> = all
        .iter()
        .filter(|c| c.labels.get(COMPOSE_SERVICE) == Some(&query.service))
        .filter(|c| {
            query
                .project
                .as_ref()
                .is_none_or(|p| c.labels.get(COMPOSE_PROJECT) == Some(p))
        })
        .filter(|c| {
            c.labels
                .get(COMPOSE_ONEOFF)
                .map(|o| o.eq_ignore_ascii_case("true"))
                != Some(true)
        })
        .collect();
    if !by_label.is_empty() {
        return by_label;
    }
    all.iter().filter(|c| c.name == query.service).collect()
}

pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str, project: &str, service: &str) -> Found {
        let mut labels = HashMap::new();
        if !service.is_empty() {
            labels.insert(COMPOSE_SERVICE.to_string(), service.to_string());
            labels.insert(COMPOSE_PROJECT.to_string(), project.to_string());
        }
        Found {
            id: format!("{name}0123456789abcdef"),
            name: name.to_string(),
            state: "running".into(),
            labels,
        }
    }

    #[test]
    fn labels_win_and_project_narrows() {
        let all = vec![
            found("a_web_1", "a", "web"),
            found("b_web_1", "b", "web"),
            found("web", "", ""),
        ];
        let q = ServiceQuery {
            service: "web".into(),
            project: None,
        };
        assert_eq!(select(&q, &all).len(), 2);
        let q = ServiceQuery {
            service: "web".into(),
            project: Some("b".into()),
        };
        assert_eq!(select(&q, &all)[0].name, "b_web_1");
    }

    #[test]
    fn falls_back_to_container_name() {
        let all = vec![found("a_web_1", "a", "web"), found("plain", "", "")];
        let q = ServiceQuery {
            service: "plain".into(),
            project: None,
        };
        assert_eq!(select(&q, &all)[0].name, "plain");
        let q = ServiceQuery {
            service: "nothing".into(),
            project: None,
        };
        assert!(select(&q, &all).is_empty());
    }

    #[test]
    fn one_off_run_containers_are_not_the_service() {
        let mut run = found("a_web_run_1", "a", "web");
        run.labels.insert(COMPOSE_ONEOFF.into(), "True".into());
        let all = vec![found("a_web_1", "a", "web"), run];
        let q = ServiceQuery {
            service: "web".into(),
            project: None,
        };
        assert_eq!(select(&q, &all).len(), 1);
    }
}
