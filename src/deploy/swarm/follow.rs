//! Following a Swarm update (or rollback) until Swarm says it is over,
//! reporting every task's progress as events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::deploy::DeployError;
use crate::journal::Events;
use crate::runtime::swarm::{Swarm, Task, UpdateState};
use crate::runtime::Limits;

const POLL: Duration = Duration::from_millis(250);

/// How an update ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Swarm finished: every task runs the spec written.
    Completed,
    /// Swarm rolled the service back to the spec before (its message).
    RolledBack(String),
    /// Swarm paused the update or the rollback (its message).
    Paused(String),
    /// Still going when the time was up.
    TimedOut,
}

pub struct Follow<'a> {
    pub swarm: &'a dyn Swarm,
    pub events: &'a dyn Events,
    pub service: &'a str,
    pub service_id: &'a str,
    /// The update status's start before our request: a status with the
    /// same start is the previous update's, not ours.
    pub started_before: Option<String>,
    /// The limits the new tasks run with, to count them.
    pub target: Limits,
    pub replicas: Option<u64>,
    pub timeout: Duration,
}

impl Follow<'_> {
    pub async fn run(&self) -> Result<(Ending, Vec<Task>), DeployError> {
        let deadline = Instant::now() + self.timeout;
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut done = 0;
        self.events.waiting(
            &format!(
                "Swarm rolling {} onto {}",
                self.service,
                self.target.describe()
            ),
            self.replicas,
        );
        let ending = loop {
            let tasks = self.swarm.tasks(self.service_id).await?;
            for t in &tasks {
                let state = format!("{} (desired {})", t.state, t.desired);
                if seen.get(&t.id) != Some(&state) {
                    if seen.contains_key(&t.id) || t.desired == "running" {
                        let err = t
                            .error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default();
                        self.events.step(&format!(
                            "task {} on {} with {}: {}{err}",
                            t.label(self.service),
                            t.node,
                            t.limits.describe(),
                            state
                        ));
                    }
                    seen.insert(t.id.clone(), state);
                }
            }
            let now = tasks
                .iter()
                .filter(|t| t.serving() && t.limits.same_size(&self.target))
                .count() as u64;
            if now != done {
                done = now;
                self.events.advanced(done);
            }
            let service = self.swarm.service(self.service_id).await?;
            let status = service.and_then(|s| s.update);
            if let Some(u) = status.filter(|u| Some(&u.started_at) != self.started_before.as_ref())
            {
                if u.state.is_final() {
                    break match u.state {
                        UpdateState::Completed => Ending::Completed,
                        UpdateState::RollbackCompleted => Ending::RolledBack(u.message),
                        _ => Ending::Paused(u.message),
                    };
                }
            }
            if Instant::now() >= deadline {
                break Ending::TimedOut;
            }
            tokio::time::sleep(POLL).await;
        };
        self.events.finished();
        let tasks = self.swarm.tasks(self.service_id).await?;
        Ok((ending, tasks))
    }
}
