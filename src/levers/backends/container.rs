//! `container` levers: a live CPU or memory update of a running container
//! through the container runtime (no restart), kept across `docker-compose up` by
//! writing the value into the project's `docker-compose.override.yml`.
//!
//! Before the first change to a service, the override file's exact text and
//! the container's limits are saved under `.tuner/`; when a rollback brings
//! the limits back to those, the file is restored byte for byte (or removed
//! if there was none), so a rolled-back run leaves no trace.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::units::{format_bytes, parse_bytes, parse_cpus};
use crate::journal::write_atomic;
use crate::levers::catalog::{Lever, Resource, Target};
use crate::levers::port::{BackendError, Disruption, LeverBackend, Move, Plan};
use crate::postgres::{Database, PgDatabase};
use crate::runtime::compose_hash::side_effects;
use crate::runtime::compose_override::ServiceLimits;
use crate::runtime::find::{COMPOSE_CONFIG_FILES, COMPOSE_PROJECT};
use crate::runtime::limits::trim;
use crate::runtime::{Limits, OverrideFile, Runtime, ServiceQuery, COMPOSE_WORKING_DIR};

pub struct ContainerLevers {
    pub runtime: Arc<dyn Runtime>,
    pub project: Option<String>,
    pub state_dir: PathBuf,
    /// The Compose service PostgreSQL runs in: its memory may not drop below
    /// what shared memory needs.
    pub postgres_service: Option<String>,
    pub postgres: Option<PgDatabase>,
    /// The configured Compose project folder, for backups of its override file.
    pub project_dir: Option<PathBuf>,
}

/// What the override file and limits were before tuning touched a service.
#[derive(Debug, Serialize, Deserialize)]
struct Original {
    text: Option<String>,
    cpus: f64,
    memory: u64,
}

struct Resolved {
    name: String,
    service: String,
    resource: Resource,
    project_dir: Option<PathBuf>,
    /// Compose project name and config files, from the container's labels.
    project: Option<String>,
    config_files: Vec<String>,
}

fn rejected(lever: &Lever, reason: impl Into<String>) -> BackendError {
    BackendError::Rejected {
        lever: lever.name.clone(),
        reason: reason.into(),
    }
}

fn failed(lever: &Lever, reason: impl Into<String>) -> BackendError {
    BackendError::Failed {
        lever: lever.name.clone(),
        reason: reason.into(),
    }
}

/// Bytes Postgres' shared memory needs (shared_buffers + wal_buffers) plus a
/// margin for connections and the OS, mirroring the restart check.
const SHARED_MEMORY_MARGIN: u64 = 64 << 20;

impl ContainerLevers {
    async fn resolve(&self, lever: &Lever) -> Result<Resolved, BackendError> {
        let Target::Container { service, resource } = &lever.target else {
            return Err(rejected(lever, "not a container lever"));
        };
        let found = self
            .runtime
            .find_one(&ServiceQuery {
                service: service.clone(),
                project: self.project.clone(),
            })
            .await
            .map_err(|e| rejected(lever, e.to_string()))?;
        Ok(Resolved {
            name: found.name.clone(),
            service: service.clone(),
            resource: *resource,
            project_dir: found.labels.get(COMPOSE_WORKING_DIR).map(PathBuf::from),
            project: found.labels.get(COMPOSE_PROJECT).cloned(),
            config_files: found
                .labels
                .get(COMPOSE_CONFIG_FILES)
                .map(|f| f.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        })
    }

    /// The container a move targets and the limit it asks for, refused
    /// before anything changes when the value does not parse or the memory
    /// would not fit.
    async fn requested(
        &self,
        lever: &Lever,
        mv: &Move,
    ) -> Result<(Resolved, Option<f64>, Option<u64>), BackendError> {
        let r = self.resolve(lever).await?;
        let value = mv
            .to
            .as_deref()
            .ok_or_else(|| rejected(lever, "a container limit cannot be removed, only changed"))?;
        let (cpus, memory) = match r.resource {
            Resource::Cpus => parse_cpus(value)
                .map(|c| (Some(c), None))
                .map_err(|e| rejected(lever, e.to_string()))?,
            Resource::Memory => parse_bytes(value)
                .map(|m| (None, Some(m)))
                .map_err(|e| rejected(lever, e.to_string()))?,
        };
        if let Some(m) = memory {
            self.check_memory(lever, &r, m).await?;
        }
        Ok((r, cpus, memory))
    }

    async fn limits(&self, lever: &Lever, container: &str) -> Result<Limits, BackendError> {
        self.runtime
            .inspect(container)
            .await
            .map(|c| c.limits)
            .map_err(|e| failed(lever, e.to_string()))
    }

    fn show(resource: Resource, limits: &Limits) -> Option<String> {
        match resource {
            Resource::Cpus if limits.cpus > 0.0 => Some(trim(limits.cpus)),
            Resource::Memory if limits.memory > 0 => Some(format_bytes(limits.memory)),
            _ => None,
        }
    }

    /// Refuses a memory limit below what the container uses now (plus a
    /// margin), or below PostgreSQL's shared memory for its container.
    async fn check_memory(
        &self,
        lever: &Lever,
        r: &Resolved,
        memory: u64,
    ) -> Result<(), BackendError> {
        self.runtime
            .check_memory_fits(&r.name, memory)
            .await
            .map_err(|e| rejected(lever, e.to_string()))?;
        if self.postgres_service.as_deref() == Some(r.service.as_str()) {
            if let Some(db) = &self.postgres {
                let mut need = SHARED_MEMORY_MARGIN;
                for name in ["shared_buffers", "wal_buffers"] {
                    let info = db
                        .current(name)
                        .await
                        .map_err(|e| failed(lever, e.to_string()))?;
                    let blocks: f64 = info.setting.parse().unwrap_or(0.0);
                    let unit = match info.unit.as_deref() {
                        Some("8kB") => 8192.0,
                        Some("kB") => 1024.0,
                        Some("MB") => 1048576.0,
                        _ => 8192.0,
                    };
                    need += (blocks.max(0.0) * unit) as u64;
                }
                if memory < need {
                    return Err(rejected(
                        lever,
                        format!(
                            "memory {} is below what PostgreSQL's shared memory needs in {} ({} incl. a {} margin)",
                            format_bytes(memory),
                            r.name,
                            format_bytes(need),
                            format_bytes(SHARED_MEMORY_MARGIN)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Refuses a change whose override would make the next `docker-compose
    /// up -d` recreate other services (Compose 1.29 re-sorts every service's
    /// lists once an override exists): tuning grafana must not restart the
    /// database. A restore of the original text is never refused.
    fn check_side_effects(
        &self,
        lever: &Lever,
        r: &Resolved,
        target: &Limits,
    ) -> Result<(), BackendError> {
        let (Some(dir), Some(project)) = (&r.project_dir, &r.project) else {
            return Ok(());
        };
        if let Ok(bytes) = std::fs::read(self.original_path(r)) {
            if let Ok(original) = serde_json::from_slice::<Original>(&bytes) {
                if (original.cpus - target.cpus).abs() < 0.001 && original.memory == target.memory {
                    return Ok(());
                }
            }
        }
        let file = OverrideFile::in_dir(dir);
        let before = file.read().map_err(|e| failed(lever, e.to_string()))?;
        let after = file
            .with_limits(
                &r.service,
                ServiceLimits {
                    cpus: target.cpus,
                    memory: target.memory,
                    memory_swap: target.memory_swap,
                },
            )
            .map_err(|e| failed(lever, e.to_string()))?;
        let effects = side_effects(
            dir,
            project,
            &r.config_files,
            before.as_deref(),
            Some(&after),
            &r.service,
        )
        .map_err(|e| failed(lever, e.to_string()))?;
        if effects.others.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = effects.others.iter().map(|o| o.to_string()).collect();
        Err(rejected(
            lever,
            format!(
                "writing {} would make the next `docker-compose up -d` recreate other services too: {}",
                file.path.display(),
                list.join("; ")
            ),
        ))
    }

    fn original_path(&self, r: &Resolved) -> PathBuf {
        let project = self.project.clone().unwrap_or_else(|| "default".into());
        self.state_dir
            .join("override-original")
            .join(format!("{project}.{}.json", r.service))
    }

    fn save_original(
        &self,
        lever: &Lever,
        r: &Resolved,
        file: &OverrideFile,
        before: &Limits,
    ) -> Result<(), BackendError> {
        let path = self.original_path(r);
        if path.exists() {
            return Ok(());
        }
        let text = file.read().map_err(|e| failed(lever, e.to_string()))?;
        let original = Original {
            text,
            cpus: before.cpus,
            memory: before.memory,
        };
        let json = serde_json::to_vec(&original).map_err(|e| failed(lever, e.to_string()))?;
        write_atomic(&path, &json).map_err(|e| failed(lever, e.to_string()))
    }

    /// Writes the live limits into the override file, or restores its
    /// original text when the limits are back where tuning found them.
    fn record(&self, lever: &Lever, r: &Resolved, after: &Limits) -> Result<(), BackendError> {
        let Some(dir) = &r.project_dir else {
            return Ok(());
        };
        let file = OverrideFile::in_dir(dir);
        let original_path = self.original_path(r);
        if let Ok(bytes) = std::fs::read(&original_path) {
            if let Ok(original) = serde_json::from_slice::<Original>(&bytes) {
                if (original.cpus - after.cpus).abs() < 0.001 && original.memory == after.memory {
                    file.write(original.text.as_deref())
                        .map_err(|e| failed(lever, e.to_string()))?;
                    let _ = std::fs::remove_file(&original_path);
                    return Ok(());
                }
            }
        }
        let limits = ServiceLimits {
            cpus: after.cpus,
            memory: after.memory,
            memory_swap: after.memory_swap,
        };
        let text = file
            .with_limits(&r.service, limits)
            .map_err(|e| failed(lever, e.to_string()))?;
        file.write(Some(&text))
            .map_err(|e| failed(lever, e.to_string()))
    }
}

fn override_path(dir: &Option<PathBuf>) -> Option<PathBuf> {
    dir.as_deref().map(|d: &Path| OverrideFile::in_dir(d).path)
}

#[async_trait]
impl LeverBackend for ContainerLevers {
    async fn current(&self, lever: &Lever) -> Result<Option<String>, BackendError> {
        let r = self.resolve(lever).await?;
        let limits = self.limits(lever, &r.name).await?;
        Ok(Self::show(r.resource, &limits))
    }

    async fn plan(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        let (r, cpus, memory) = self.requested(lever, mv).await?;
        let current = self.limits(lever, &r.name).await?;
        let target = current.resized(
            cpus.unwrap_or(current.cpus),
            memory.unwrap_or(current.memory),
        );
        self.check_side_effects(lever, &r, &target)?;
        let flags = match r.resource {
            Resource::Cpus => format!("--cpus {}", trim(target.cpus)),
            Resource::Memory => format!(
                "--memory {} --memory-swap {}",
                format_bytes(target.memory),
                target.memory_swap
            ),
        };
        let mut steps = vec![format!(
            "docker update {flags} {} (live, no restart; was {})",
            r.name,
            current.describe()
        )];
        if let Some(path) = override_path(&r.project_dir) {
            steps.push(format!(
                "write {} service {} ({}) atomically",
                path.display(),
                r.service,
                target.describe()
            ));
        }
        Ok(Plan {
            steps,
            disruption: Disruption::None,
        })
    }

    async fn apply(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        let (r, cpus, memory) = self.requested(lever, mv).await?;
        let before = self.limits(lever, &r.name).await?;
        let target = before.resized(cpus.unwrap_or(before.cpus), memory.unwrap_or(before.memory));
        self.check_side_effects(lever, &r, &target)?;
        if let Some(dir) = &r.project_dir {
            self.save_original(lever, &r, &OverrideFile::in_dir(dir), &before)?;
        }
        let after = self
            .runtime
            .update_limits(&r.name, cpus, memory)
            .await
            .map_err(|e| failed(lever, e.to_string()))?;
        crate::crash::at(crate::crash::Point::Live);
        let confirmed = match r.resource {
            Resource::Cpus => cpus.is_some_and(|c| (c - after.cpus).abs() < 0.001),
            Resource::Memory => memory == Some(after.memory),
        };
        if !confirmed {
            return Err(failed(
                lever,
                format!(
                    "{} reads back as {} after the update",
                    r.name,
                    after.describe()
                ),
            ));
        }
        self.record(lever, &r, &after)
    }

    async fn settings_snapshot(&self) -> Result<String, BackendError> {
        Ok(String::new())
    }

    fn files_touched(&self, _lever: &Lever) -> Vec<PathBuf> {
        override_path(&self.project_dir).into_iter().collect()
    }
}
