//! `Swarm` over bollard's services, tasks and nodes API.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::models::{ServiceSpec, TaskState};
use bollard::query_parameters::{ListTasksOptions, UpdateServiceOptions};
use bollard::Docker;

use super::{spec, Service, Swarm, Task, UpdateState, UpdateStatus};
use crate::runtime::limits::{CpuKnob, Limits};
use crate::runtime::{api, DockerError};

/// The Swarm side of the one Docker connection (`DockerRuntime::swarm`).
#[derive(Clone)]
pub struct SwarmEngine {
    docker: Docker,
}

impl SwarmEngine {
    pub fn new(docker: Docker) -> SwarmEngine {
        SwarmEngine { docker }
    }
}

/// 404: no such service; 503: this engine is not in a swarm (or not a
/// manager). Both mean "not a Swarm service" to the caller.
fn absent(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 503,
            ..
        }
    )
}

fn text<T: serde::Serialize>(v: &Option<T>) -> String {
    match v.as_ref().map(serde_json::to_value) {
        Some(Ok(serde_json::Value::String(s))) => s,
        Some(Ok(other)) => other.to_string(),
        _ => String::new(),
    }
}

fn state_name(s: &Option<TaskState>) -> String {
    s.as_ref().map(|s| s.to_string()).unwrap_or_default()
}

#[async_trait]
impl Swarm for SwarmEngine {
    async fn service(&self, name: &str) -> Result<Option<Service>, DockerError> {
        let s = match self.docker.inspect_service(name, None).await {
            Ok(s) => s,
            Err(e) if absent(&e) => return Ok(None),
            Err(e) => return Err(api("inspect service", name)(e)),
        };
        let to_json = |spec: &Option<ServiceSpec>| {
            spec.as_ref()
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| DockerError::Invalid {
                    container: name.to_string(),
                    problem: format!("cannot read the service spec: {e}"),
                })
        };
        let spec = to_json(&s.spec)?.unwrap_or(serde_json::Value::Null);
        let update = s.update_status.as_ref().map(|u| UpdateStatus {
            state: UpdateState::parse(&text(&u.state)),
            started_at: text(&u.started_at),
            message: u.message.clone().unwrap_or_default(),
        });
        Ok(Some(Service {
            id: s.id.clone().unwrap_or_default(),
            name: spec["Name"].as_str().unwrap_or(name).to_string(),
            version: s.version.as_ref().and_then(|v| v.index).unwrap_or(0),
            spec,
            // bollard's model drops `PreviousSpec`; the journal knows it.
            previous_spec: None,
            update,
        }))
    }

    async fn update(
        &self,
        service: &Service,
        spec: &serde_json::Value,
        rollback: bool,
    ) -> Result<Vec<String>, DockerError> {
        let typed: ServiceSpec =
            serde_json::from_value(spec.clone()).map_err(|e| DockerError::Invalid {
                container: service.name.clone(),
                problem: format!("the new service spec does not fit the API: {e}"),
            })?;
        let options = UpdateServiceOptions {
            version: i32::try_from(service.version).unwrap_or(i32::MAX),
            rollback: rollback.then(|| "previous".to_string()),
            ..Default::default()
        };
        let op = if rollback {
            "roll back service"
        } else {
            "update service"
        };
        let answer = self
            .docker
            .update_service(&service.id, typed, options, None)
            .await
            .map_err(api(op, service.name.clone()))?;
        Ok(answer.warnings.unwrap_or_default())
    }

    async fn tasks(&self, service_id: &str) -> Result<Vec<Task>, DockerError> {
        let nodes: HashMap<String, String> = self
            .docker
            .list_nodes(None)
            .await
            .map_err(api("list nodes of", "the swarm"))?
            .into_iter()
            .filter_map(|n| {
                let id = n.id?;
                let host = n.description.and_then(|d| d.hostname).unwrap_or(id.clone());
                Some((id, host))
            })
            .collect();
        let filters = HashMap::from([("service".to_string(), vec![service_id.to_string()])]);
        let tasks = self
            .docker
            .list_tasks(Some(ListTasksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(api("list tasks of service", service_id))?;
        Ok(tasks
            .into_iter()
            .map(|t| {
                let status = t.status.clone().unwrap_or_default();
                let spec = t
                    .spec
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok())
                    .map(|s| serde_json::json!({ "TaskTemplate": s }))
                    .unwrap_or_default();
                let node = t.node_id.clone().unwrap_or_default();
                Task {
                    id: t.id.clone().unwrap_or_default(),
                    slot: t.slot,
                    node: if node.is_empty() {
                        "(unassigned)".to_string()
                    } else {
                        nodes.get(&node).cloned().unwrap_or(node)
                    },
                    state: state_name(&status.state),
                    desired: state_name(&t.desired_state),
                    message: status.message.clone().unwrap_or_default(),
                    error: status.err.clone(),
                    limits: if spec.is_null() {
                        Limits {
                            cpus: 0.0,
                            memory: 0,
                            memory_swap: 0,
                            knob: CpuKnob::NanoCpus,
                        }
                    } else {
                        spec::limits(&spec)
                    },
                    container_id: status.container_status.and_then(|c| c.container_id),
                }
            })
            .collect())
    }

    async fn max_node_cpus(&self) -> Result<f64, DockerError> {
        let nodes = self
            .docker
            .list_nodes(None)
            .await
            .map_err(api("list nodes of", "the swarm"))?;
        Ok(nodes
            .iter()
            .filter_map(|n| n.description.as_ref()?.resources.as_ref()?.nano_cpus)
            .max()
            .unwrap_or(0) as f64
            / 1e9)
    }

    async fn image_has_healthcheck(&self, image: &str) -> Result<bool, DockerError> {
        // A spec may pin `name:tag@sha256:...`; the local store knows `name:tag`.
        let local = image.split('@').next().unwrap_or(image);
        match self.docker.inspect_image(local).await {
            Ok(i) => Ok(i
                .config
                .and_then(|c| c.healthcheck)
                .and_then(|h| h.test)
                .is_some_and(|t| !t.is_empty() && t[0] != "NONE")),
            // Only on other nodes: unknown here, so not assumed.
            Err(e) if crate::runtime::is_not_found(&e) => Ok(false),
            Err(e) => Err(api("inspect image", local)(e)),
        }
    }
}
