//! The fake engine's state: containers, scripted health, the call log and
//! the failures waiting for their call. Cloned whole to snapshot a crash.

use std::collections::{BTreeMap, VecDeque};

use crate::runtime::container::{Container, Health, NetworkAddress, Published};
use crate::runtime::limits::{CpuKnob, Limits, MemoryUsage};
use crate::runtime::DockerError;

/// The operations of `Runtime`, to aim failures at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Engine,
    List,
    Inspect,
    UpdateLimits,
    CloneSpec,
    CreateClone,
    Start,
    Stop,
    Remove,
    Rename,
    Restart,
    CopyIn,
    Usage,
    Exec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub limits: Limits,
    pub running: bool,
    /// `created`, `running`, `exited`.
    pub state: String,
    pub health: Health,
    /// Health states the next inspections report, one each, while running.
    pub health_script: VecDeque<Health>,
    pub has_healthcheck: bool,
    /// Published on `127.0.0.1:<port>`.
    pub port: u16,
    pub usage: MemoryUsage,
    pub restarts: u32,
    /// `dir/name` -> contents, from `copy_in`.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Exit codes the next runs of its healthcheck through `exec` return,
    /// one each; once empty, 0 while healthy, else 1.
    pub exec_script: VecDeque<i64>,
    /// Commands run through `exec`.
    pub execs: Vec<Vec<String>>,
}

impl FakeContainer {
    /// A running, healthy container with a healthcheck, 1 CPU and 256M.
    pub fn serving(name: &str, labels: &[(&str, &str)]) -> FakeContainer {
        FakeContainer {
            id: String::new(),
            name: name.to_string(),
            image: "local/web".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            limits: Limits {
                cpus: 1.0,
                memory: 256 << 20,
                memory_swap: 512 << 20,
                knob: CpuKnob::NanoCpus,
            },
            running: true,
            state: "running".into(),
            health: Health::Healthy,
            health_script: VecDeque::new(),
            has_healthcheck: true,
            port: 0,
            usage: MemoryUsage {
                usage: 40 << 20,
                inactive_file: 8 << 20,
                limit: 256 << 20,
            },
            restarts: 0,
            files: BTreeMap::new(),
            exec_script: VecDeque::new(),
            execs: Vec::new(),
        }
    }
}

/// A failure waiting for its call.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Failure {
    /// `None`: any call, counted over all calls.
    pub(super) op: Option<Op>,
    /// Container id or name the call must name; `None` for any.
    pub(super) target: Option<String>,
    /// Matching calls to let through first.
    pub(super) skip: usize,
    pub(super) once: bool,
}

/// Everything the fake engine holds: clone it to snapshot, hand it to
/// `FakeRuntime::from_world` to restore.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub containers: BTreeMap<String, FakeContainer>,
    /// Health a container goes through after each start (clones included).
    pub start_health: Vec<Health>,
    /// Exit codes its healthcheck gives through `exec` after each start.
    pub start_exec: Vec<i64>,
    pub cpus: i64,
    pub calls: Vec<(Op, String)>,
    pub(super) next_id: u64,
    pub(super) next_port: u16,
    pub(super) failures: Vec<Failure>,
}

impl Default for World {
    fn default() -> World {
        World {
            containers: BTreeMap::new(),
            start_health: vec![Health::Starting, Health::Healthy],
            start_exec: Vec::new(),
            cpus: 2,
            calls: Vec::new(),
            next_id: 1,
            next_port: 27001,
            failures: Vec::new(),
        }
    }
}

impl World {
    /// The id of the container `reference` names: id, name or id prefix.
    pub(super) fn resolve(&self, reference: &str) -> Option<String> {
        if self.containers.contains_key(reference) {
            return Some(reference.to_string());
        }
        if let Some(c) = self.containers.values().find(|c| c.name == reference) {
            return Some(c.id.clone());
        }
        let mut prefixed = self
            .containers
            .keys()
            .filter(|id| id.starts_with(reference));
        match (prefixed.next(), prefixed.next()) {
            (Some(id), None) if !reference.is_empty() => Some(id.clone()),
            _ => None,
        }
    }

    pub(super) fn add(&mut self, mut c: FakeContainer) -> String {
        let id = format!("{:064x}", 0xfa4e_0000_u64 + self.next_id);
        self.next_id += 1;
        c.id = id.clone();
        if c.port == 0 {
            c.port = self.next_port;
            self.next_port += 1;
        }
        self.containers.insert(id.clone(), c);
        id
    }

    pub(super) fn get(
        &mut self,
        op: Op,
        reference: &str,
    ) -> Result<&mut FakeContainer, DockerError> {
        match self.resolve(reference) {
            Some(id) => Ok(self.containers.get_mut(&id).expect("resolved id")),
            None => Err(engine_error(
                op,
                reference,
                404,
                &format!("No such container: {reference}"),
            )),
        }
    }

    pub(super) fn name_taken(&self, name: &str, except: Option<&str>) -> bool {
        self.containers
            .values()
            .any(|c| c.name == name && Some(c.id.as_str()) != except)
    }

    pub(super) fn started(&mut self, id: &str) {
        let script: VecDeque<Health> = self.start_health.iter().copied().collect();
        let execs: VecDeque<i64> = self.start_exec.iter().copied().collect();
        if let Some(c) = self.containers.get_mut(id) {
            c.running = true;
            c.state = "running".into();
            if c.has_healthcheck {
                c.health = Health::Starting;
                c.health_script = script;
                c.exec_script = execs;
            }
        }
    }

    /// Whether this call fails, consuming the failure it matches.
    pub(super) fn should_fail(&mut self, op: Op, target: &str) -> bool {
        let call = self.calls.len().saturating_sub(1);
        let resolved = self.resolve(target);
        let aimed: Vec<bool> = self
            .failures
            .iter()
            .map(|f| match f.op {
                None => true,
                Some(o) => {
                    o == op
                        && f.target.as_deref().is_none_or(|t| {
                            t == target || resolved.is_some() && self.resolve(t) == resolved
                        })
                }
            })
            .collect();
        for (i, aimed) in aimed.into_iter().enumerate() {
            if !aimed {
                continue;
            }
            let f = &mut self.failures[i];
            match f.op {
                None if call != f.skip => continue,
                Some(_) if f.skip > 0 => {
                    f.skip -= 1;
                    continue;
                }
                _ => {}
            }
            if f.once {
                self.failures.remove(i);
            }
            return true;
        }
        false
    }
}

pub(super) fn engine_error(op: Op, object: &str, status_code: u16, message: &str) -> DockerError {
    DockerError::Api {
        op: op_name(op),
        object: object.to_string(),
        source: bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.to_string(),
        },
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Engine => "read engine info from",
        Op::List => "list containers on",
        Op::Inspect => "inspect container",
        Op::UpdateLimits => "update the limits of container",
        Op::CloneSpec => "describe a clone of container",
        Op::CreateClone => "create container",
        Op::Start => "start container",
        Op::Stop => "stop container",
        Op::Remove => "remove container",
        Op::Rename => "rename container",
        Op::Restart => "restart container",
        Op::CopyIn => "copy a file into container",
        Op::Usage => "read stats of container",
        Op::Exec => "run a command in container",
    }
}

/// Inspecting moves a running container on to its next health state.
pub(super) fn inspect(c: &mut FakeContainer) -> Container {
    if c.running {
        if let Some(next) = c.health_script.pop_front() {
            c.health = next;
        }
    }
    c.view()
}

impl FakeContainer {
    /// What inspecting it shows now, without moving its health script on.
    pub fn view(&self) -> Container {
        let c = self;
        Container {
            id: c.id.clone(),
            name: c.name.clone(),
            image: c.image.clone(),
            state: c.state.clone(),
            running: c.running,
            exit_code: 0,
            health: if c.has_healthcheck {
                c.health
            } else {
                Health::None
            },
            limits: c.limits,
            labels: c.labels.clone().into_iter().collect(),
            restarting: false,
            oom_killed: false,
            has_healthcheck: c.has_healthcheck,
            last_check: None,
            healthcheck: c.has_healthcheck.then(|| crate::runtime::HealthCommand {
                argv: vec!["/bin/check".into()],
                timeout: std::time::Duration::from_secs(1),
            }),
            mounts: Vec::new(),
            published: vec![Published {
                port: "8080/tcp".into(),
                host_ip: "127.0.0.1".into(),
                host_port: if c.running {
                    c.port.to_string()
                } else {
                    String::new()
                },
            }],
            exposed: vec!["8080/tcp".into()],
            networks: vec![NetworkAddress {
                network: "fake".into(),
                ip: if c.running {
                    format!("10.0.0.{}", c.port % 250)
                } else {
                    String::new()
                },
            }],
            stop_signal: None,
            stop_timeout: None,
        }
    }
}
