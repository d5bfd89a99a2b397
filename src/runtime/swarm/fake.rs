//! An in-memory Swarm for unit tests: one service whose next update
//! converges, is rolled back by "Swarm", or fails at the API.

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{spec, Service, Swarm, Task, UpdateState, UpdateStatus};
use crate::runtime::DockerError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Every task ends up on the new spec.
    Converge,
    /// The new tasks fail; Swarm rolls back to the spec before.
    RollBack,
    /// The engine refuses the request (e.g. a stale version).
    Refuse,
}

pub struct FakeSwarm {
    pub state: Mutex<State>,
}

pub struct State {
    pub service: Option<Service>,
    pub next: Next,
    /// Every spec written, with its rollback flag.
    pub writes: Vec<(Value, bool)>,
    pub image_healthcheck: bool,
    updates: u32,
}

impl FakeSwarm {
    /// A service `name` with `replicas` tasks of 1 CPU / 256M and a healthcheck.
    pub fn with_service(name: &str, replicas: u64) -> FakeSwarm {
        let spec = json!({
            "Name": name,
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "tswarm/web:1",
                    "HealthCheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000u64, "Retries": 2}
                },
                "Resources": {"Limits": {"NanoCPUs": 1_000_000_000u64, "MemoryBytes": 268435456u64}}
            },
            "Mode": {"Replicated": {"Replicas": replicas}}
        });
        FakeSwarm {
            state: Mutex::new(State {
                service: Some(Service {
                    id: format!("{name}-id"),
                    name: name.to_string(),
                    version: 10,
                    spec,
                    previous_spec: None,
                    update: None,
                }),
                next: Next::Converge,
                writes: Vec::new(),
                image_healthcheck: false,
                updates: 0,
            }),
        }
    }

    pub fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap());
    }

    pub fn service_now(&self) -> Service {
        self.state.lock().unwrap().service.clone().unwrap()
    }
}

#[async_trait]
impl Swarm for FakeSwarm {
    async fn service(&self, name: &str) -> Result<Option<Service>, DockerError> {
        let st = self.state.lock().unwrap();
        Ok(st
            .service
            .clone()
            .filter(|s| s.name == name || s.id == name))
    }

    async fn update(
        &self,
        service: &Service,
        new: &Value,
        rollback: bool,
    ) -> Result<Vec<String>, DockerError> {
        let mut st = self.state.lock().unwrap();
        st.writes.push((new.clone(), rollback));
        let next = st.next;
        st.updates += 1;
        let started_at = format!("t{}", st.updates);
        let Some(current) = st.service.as_mut() else {
            return Err(DockerError::Invalid {
                container: service.name.clone(),
                problem: "gone".into(),
            });
        };
        if next == Next::Refuse || current.version != service.version {
            return Err(DockerError::Invalid {
                container: service.name.clone(),
                problem: "update out of sequence".into(),
            });
        }
        current.version += 1;
        let before = current.spec.clone();
        let (spec_after, state, message) = match (rollback, next) {
            (true, _) => match current.previous_spec.clone() {
                Some(p) => (p, UpdateState::RollbackCompleted, "rollback completed"),
                None => (before.clone(), UpdateState::Paused, "no previous spec"),
            },
            (false, Next::RollBack) => (
                before.clone(),
                UpdateState::RollbackCompleted,
                "rollback completed: update paused due to failure of task x",
            ),
            (false, _) => (new.clone(), UpdateState::Completed, "update completed"),
        };
        current.previous_spec = Some(before);
        current.spec = spec_after;
        current.update = Some(UpdateStatus {
            state,
            started_at,
            message: message.to_string(),
        });
        Ok(Vec::new())
    }

    async fn tasks(&self, _service_id: &str) -> Result<Vec<Task>, DockerError> {
        let st = self.state.lock().unwrap();
        let Some(s) = st.service.as_ref() else {
            return Ok(Vec::new());
        };
        let n = spec::replicas(&s.spec).unwrap_or(1);
        Ok((1..=n as i64)
            .map(|slot| Task {
                id: format!("task{slot}"),
                slot: Some(slot),
                node: "node-1".into(),
                state: "running".into(),
                desired: "running".into(),
                message: "started".into(),
                error: None,
                limits: s.limits(),
                container_id: Some(format!("c{slot}")),
            })
            .collect())
    }

    async fn max_node_cpus(&self) -> Result<f64, DockerError> {
        Ok(2.0)
    }

    async fn image_has_healthcheck(&self, _image: &str) -> Result<bool, DockerError> {
        Ok(self.state.lock().unwrap().image_healthcheck)
    }
}
