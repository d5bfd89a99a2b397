//! The Compose override file (`docker-compose.override.yml`,
//! `compose.override.yaml`, …; see `compose_files`): the limits a resize
//! must keep across the next `compose up -d`.
//!
//! Read, change only the service's `cpus`/`mem_limit`/`memswap_limit` (and
//! `deploy.resources.limits` when the main file sizes the service there,
//! because Compose lets `deploy` win), write atomically. Other keys and
//! services are kept as they were; YAML comments are not preserved.

use std::path::{Path, PathBuf};

use crate::config::yaml::{self, Mapping, Value};

use crate::journal::write_atomic;

use super::compose_files::{self, ProjectFiles};

#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error("cannot read Compose file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Compose file {} is not valid YAML: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("Compose file {}: {problem}", path.display())]
    Shape { path: PathBuf, problem: String },
    #[error("cannot write Compose override {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: crate::journal::JournalError,
    },
    #[error("cannot compute the Compose config hash of service {service:?} in {}: {reason}", dir.display())]
    Hash {
        dir: PathBuf,
        service: String,
        reason: String,
    },
}

/// The override file of one Compose project.
#[derive(Debug, Clone)]
pub struct OverrideFile {
    pub project_dir: PathBuf,
    pub path: PathBuf,
    /// The main Compose file, when the folder has one.
    pub main: Option<PathBuf>,
}

/// New limits for one service, as Compose writes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceLimits {
    pub cpus: f64,
    pub memory: u64,
    /// -1 unlimited; 0 leaves `memswap_limit` out.
    pub memory_swap: i64,
}

impl OverrideFile {
    pub fn in_dir(project_dir: &Path) -> OverrideFile {
        let ProjectFiles {
            main,
            override_path,
        } = compose_files::discover(project_dir);
        OverrideFile {
            project_dir: project_dir.to_path_buf(),
            path: override_path,
            main,
        }
    }

    /// The current text, or `None` when there is no override file.
    pub fn read(&self) -> Result<Option<String>, OverrideError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(OverrideError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// The main compose file's text, if there is one.
    fn main_text(&self) -> Result<Option<(PathBuf, String)>, OverrideError> {
        let Some(path) = &self.main else {
            return Ok(None);
        };
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Some((path.clone(), t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(OverrideError::Read {
                path: path.clone(),
                source,
            }),
        }
    }

    /// The override text with `service` set to `limits`; nothing written.
    pub fn with_limits(
        &self,
        service: &str,
        limits: ServiceLimits,
    ) -> Result<String, OverrideError> {
        let current = self.read()?;
        let main = self.main_text()?;
        let (version, uses_deploy) = match &main {
            Some((path, text)) => main_facts(path, text, service)?,
            None => (None, false),
        };
        set_limits(
            &self.path,
            current.as_deref(),
            version,
            uses_deploy,
            service,
            limits,
        )
    }

    /// `current` (an override text, `None` for none) with `service` sized to
    /// `limits` and `reservations`; nothing read but the main file, nothing
    /// written.
    pub fn with_sizes(
        &self,
        current: Option<&str>,
        service: &str,
        limits: ServiceLimits,
        reservations: ServiceReservations,
    ) -> Result<String, OverrideError> {
        let main = self.main_text()?;
        let (version, uses_deploy) = match &main {
            Some((path, text)) => main_facts(path, text, service)?,
            None => (None, false),
        };
        let text = set_limits(&self.path, current, version, uses_deploy, service, limits)?;
        set_reservations(&self.path, &text, uses_deploy, service, reservations)
    }

    /// The main Compose file's path and its service names, if there is one.
    pub fn main_services(&self) -> Result<Option<(PathBuf, Vec<String>)>, OverrideError> {
        let Some((path, text)) = self.main_text()? else {
            return Ok(None);
        };
        let doc: Value = yaml::from_str(&text).map_err(|e| OverrideError::Parse {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let names = doc
            .get("services")
            .and_then(Value::as_mapping)
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some((path, names)))
    }

    /// Replaces the file atomically with `text`, or removes it for `None`
    /// (restoring "there was no override").
    pub fn write(&self, text: Option<&str>) -> Result<(), OverrideError> {
        match text {
            Some(t) => {
                write_atomic(&self.path, t.as_bytes()).map_err(|source| OverrideError::Write {
                    path: self.path.clone(),
                    source,
                })
            }
            None => match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(OverrideError::Write {
                    path: self.path.clone(),
                    source: crate::journal::JournalError::Io {
                        action: "remove",
                        path: self.path.clone(),
                        source: e,
                    },
                }),
            },
        }
    }
}

/// The main file's `version` and whether it sizes `service` under `deploy.resources.limits`.
fn main_facts(
    path: &Path,
    text: &str,
    service: &str,
) -> Result<(Option<Value>, bool), OverrideError> {
    let doc: Value = yaml::from_str(text).map_err(|e| OverrideError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let version = doc.get("version").cloned();
    let uses_deploy = doc
        .get("services")
        .and_then(|s| s.get(service))
        .and_then(|s| s.get("deploy"))
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("limits"))
        .is_some();
    Ok((version, uses_deploy))
}

/// Pure edit of override text; `path` only names the file in errors.
pub fn set_limits(
    path: &Path,
    current: Option<&str>,
    version: Option<Value>,
    uses_deploy: bool,
    service: &str,
    limits: ServiceLimits,
) -> Result<String, OverrideError> {
    let shape = |problem: &str| OverrideError::Shape {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    };
    let mut doc = match current.filter(|t| !t.trim().is_empty()) {
        Some(text) => yaml::from_str::<Value>(text).map_err(|e| OverrideError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?,
        None => {
            let mut m = Mapping::new();
            if let Some(v) = version {
                m.insert("version".into(), v);
            }
            Value::Mapping(m)
        }
    };
    let root = doc
        .as_mapping_mut()
        .ok_or_else(|| shape("the top level is not a mapping"))?;
    let services =
        entry_mapping(root, "services").ok_or_else(|| shape("`services` is not a mapping"))?;
    let svc = entry_mapping(services, service)
        .ok_or_else(|| shape(&format!("services.{service} is not a mapping")))?;
    svc.insert(
        "cpus".into(),
        Value::Number(yaml::Number::from(round3(limits.cpus))),
    );
    svc.insert(
        "mem_limit".into(),
        Value::String(compose_bytes(limits.memory)),
    );
    match limits.memory_swap {
        0 => {
            svc.remove("memswap_limit");
        }
        -1 => {
            svc.insert("memswap_limit".into(), Value::Number((-1).into()));
        }
        n => {
            svc.insert(
                "memswap_limit".into(),
                Value::String(compose_bytes(n as u64)),
            );
        }
    }
    if uses_deploy || has_deploy_limits(svc) {
        let lim = deploy_resources(svc, "limits").map_err(|p| shape(&p))?;
        lim.insert(
            "cpus".into(),
            Value::String(crate::runtime::limits::trim(limits.cpus)),
        );
        lim.insert("memory".into(), Value::String(compose_bytes(limits.memory)));
    }
    yaml::to_string(&doc).map_err(|e| OverrideError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// What a service is guaranteed, beside its limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceReservations {
    pub cpus: f64,
    pub memory: u64,
}

/// Pure edit: `mem_reservation` for file format 2; with `deploy` limits
/// (format 3), `deploy.resources.reservations` too. Format 2 has no CPU
/// reservation outside `deploy`, which docker-compose 1.29 ignores there
/// ("not supported and have been ignored"), so it is not written.
pub fn set_reservations(
    path: &Path,
    current: &str,
    uses_deploy: bool,
    service: &str,
    reservations: ServiceReservations,
) -> Result<String, OverrideError> {
    let shape = |problem: &str| OverrideError::Shape {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    };
    let mut doc = yaml::from_str::<Value>(current).map_err(|e| OverrideError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let root = doc
        .as_mapping_mut()
        .ok_or_else(|| shape("the top level is not a mapping"))?;
    let services =
        entry_mapping(root, "services").ok_or_else(|| shape("`services` is not a mapping"))?;
    let svc = entry_mapping(services, service)
        .ok_or_else(|| shape(&format!("services.{service} is not a mapping")))?;
    if uses_deploy || has_deploy_limits(svc) {
        let res = deploy_resources(svc, "reservations").map_err(|p| shape(&p))?;
        res.insert(
            "cpus".into(),
            Value::String(crate::runtime::limits::trim(reservations.cpus)),
        );
        res.insert(
            "memory".into(),
            Value::String(compose_bytes(reservations.memory)),
        );
    } else {
        svc.insert(
            "mem_reservation".into(),
            Value::String(compose_bytes(reservations.memory)),
        );
    }
    yaml::to_string(&doc).map_err(|e| OverrideError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Whether the service is sized under `deploy.resources.limits` (format 3).
fn has_deploy_limits(svc: &Mapping) -> bool {
    svc.get("deploy")
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("limits"))
        .is_some()
}

/// `deploy.resources.<key>` of a service, created where missing; the error
/// names the part of the path that is not a mapping.
fn deploy_resources<'a>(svc: &'a mut Mapping, key: &str) -> Result<&'a mut Mapping, String> {
    let deploy = entry_mapping(svc, "deploy").ok_or("deploy is not a mapping")?;
    let resources =
        entry_mapping(deploy, "resources").ok_or("deploy.resources is not a mapping")?;
    entry_mapping(resources, key).ok_or_else(|| format!("deploy.resources.{key} is not a mapping"))
}

fn entry_mapping<'a>(map: &'a mut Mapping, key: &str) -> Option<&'a mut Mapping> {
    let slot = map
        .entry(Value::String(key.to_string()))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if slot.is_null() {
        *slot = Value::Mapping(Mapping::new());
    }
    slot.as_mapping_mut()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Bytes the way docker-compose 1.29 parses them: whole units only.
pub fn compose_bytes(bytes: u64) -> String {
    for (suffix, size) in [("g", 1u64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{suffix}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ServiceLimits = ServiceLimits {
        cpus: 1.5,
        memory: 768 << 20,
        memory_swap: 1536 << 20,
    };

    #[test]
    fn creates_override_with_main_version() {
        let text = set_limits(
            Path::new("o.yml"),
            None,
            Some(Value::String("2.4".into())),
            false,
            "grafana",
            LIMITS,
        )
        .unwrap();
        let v: Value = yaml::from_str(&text).unwrap();
        assert_eq!(v["version"], Value::String("2.4".into()));
        assert_eq!(
            v["services"]["grafana"]["cpus"],
            Value::Number(yaml::Number::from(1.5))
        );
        assert_eq!(
            v["services"]["grafana"]["mem_limit"],
            Value::String("768m".into())
        );
        assert_eq!(
            v["services"]["grafana"]["memswap_limit"],
            Value::String("1536m".into())
        );
        assert!(v["services"]["grafana"].get("deploy").is_none());
    }

    #[test]
    fn keeps_other_content_and_follows_deploy_limits() {
        let current = "version: '3.8'\nservices:\n  grafana:\n    environment:\n      A: b\n  prometheus:\n    cpus: 0.5\n";
        let text = set_limits(
            Path::new("o.yml"),
            Some(current),
            None,
            true,
            "grafana",
            LIMITS,
        )
        .unwrap();
        let v: Value = yaml::from_str(&text).unwrap();
        assert_eq!(v["version"], Value::String("3.8".into()));
        assert_eq!(
            v["services"]["grafana"]["environment"]["A"],
            Value::String("b".into())
        );
        assert_eq!(
            v["services"]["prometheus"]["cpus"],
            Value::Number(yaml::Number::from(0.5))
        );
        assert_eq!(
            v["services"]["grafana"]["deploy"]["resources"]["limits"]["memory"],
            Value::String("768m".into())
        );
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_file() {
        let err = set_limits(
            Path::new("o.yml"),
            Some("services: [1]\n"),
            None,
            false,
            "x",
            LIMITS,
        )
        .unwrap_err();
        assert!(err.to_string().contains("o.yml"), "{err}");
    }

    #[test]
    fn a_compose_yaml_project_gets_compose_override_yaml_sized_like_its_main_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  app:\n    image: x\n    deploy:\n      resources:\n        limits:\n          cpus: '1'\n",
        )
        .unwrap();
        let file = OverrideFile::in_dir(dir.path());
        assert_eq!(file.path, dir.path().join("compose.override.yaml"));
        let text = file.with_limits("app", LIMITS).unwrap();
        let v: Value = yaml::from_str(&text).unwrap();
        assert_eq!(
            v["services"]["app"]["deploy"]["resources"]["limits"]["memory"],
            Value::String("768m".into())
        );
        file.write(Some(&text)).unwrap();
        assert_eq!(OverrideFile::in_dir(dir.path()).read().unwrap(), Some(text));
    }

    #[test]
    fn bytes_in_compose_units() {
        assert_eq!(compose_bytes(1536 << 20), "1536m");
        assert_eq!(compose_bytes(1 << 30), "1g");
        assert_eq!(compose_bytes(1000), "1000");
    }
}
