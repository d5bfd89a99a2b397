//! An in-memory container engine for unit tests: containers with names,
//! labels, limits, a published port and scripted health transitions,
//! answering the way Docker does (name conflicts, 404 on a missing
//! container, "already stopped" is fine, removing a missing one is fine).
//! Any call can be made to fail, and a hook sees every call before it runs
//! so a test can snapshot the world at each point a crash could hit.

mod world;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::container::{CheckRun, CloneSpec, Container, Engine, FileIn, Health};
use super::find::Found;
use super::limits::Limits;
use super::port::Runtime;
use super::{DockerError, Usage};
use world::{engine_error, inspect, Failure};
pub use world::{FakeContainer, Op, World};

type Hook = Arc<dyn Fn(Op, &str) + Send + Sync>;

#[derive(Default)]
pub struct FakeRuntime {
    world: Mutex<World>,
    hook: Mutex<Option<Hook>>,
}

impl FakeRuntime {
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    pub fn from_world(mut world: World) -> FakeRuntime {
        world.failures.clear();
        world.calls.clear();
        FakeRuntime {
            world: Mutex::new(world),
            hook: Mutex::new(None),
        }
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a container; returns its id.
    pub fn add(&self, c: FakeContainer) -> String {
        self.world().add(c)
    }

    /// The container `reference` names, if any.
    pub fn get(&self, reference: &str) -> Option<FakeContainer> {
        let w = self.world();
        w.resolve(reference)
            .and_then(|id| w.containers.get(&id).cloned())
    }

    pub fn names(&self) -> Vec<String> {
        self.world()
            .containers
            .values()
            .map(|c| c.name.clone())
            .collect()
    }

    /// The next call of `op` on `target` (id or name; any when `None`) fails.
    pub fn fail_once(&self, op: Op, target: Option<&str>) {
        self.fail_after(op, target, 0);
    }

    /// The `skip + 1`-th call of `op` on `target` fails.
    pub fn fail_after(&self, op: Op, target: Option<&str>, skip: usize) {
        self.world().failures.push(Failure {
            op: Some(op),
            target: target.map(str::to_string),
            skip,
            once: true,
        });
    }

    /// The `n`-th call (from 0), whatever it is, fails.
    pub fn fail_call(&self, n: usize) {
        self.world().failures.push(Failure {
            op: None,
            target: None,
            skip: n,
            once: true,
        });
    }

    /// Every call of `op` on `target` fails from now on.
    pub fn fail_always(&self, op: Op, target: Option<&str>) {
        self.world().failures.push(Failure {
            op: Some(op),
            target: target.map(str::to_string),
            skip: 0,
            once: false,
        });
    }

    /// Calls `hook` before each call runs, with the world as it is then.
    pub fn on_call(&self, hook: impl Fn(Op, &str) + Send + Sync + 'static) {
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
    }

    pub fn calls(&self) -> Vec<(Op, String)> {
        self.world().calls.clone()
    }

    /// Records the call, runs the hook, then fails it if asked to.
    fn enter(&self, op: Op, target: &str) -> Result<(), DockerError> {
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook(op, target);
        }
        let mut w = self.world();
        w.calls.push((op, target.to_string()));
        if w.should_fail(op, target) {
            return Err(engine_error(op, target, 500, "injected failure"));
        }
        Ok(())
    }
}

/// What `clone_spec` hands back in `CloneSpec::request`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Request {
    image: String,
    labels: BTreeMap<String, String>,
    limits: Limits,
    has_healthcheck: bool,
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn engine(&self) -> Result<Engine, DockerError> {
        self.enter(Op::Engine, "fake")?;
        Ok(Engine {
            version: "fake".into(),
            api_version: "1.41".into(),
            cpus: self.world().cpus,
        })
    }

    async fn list(&self) -> Result<Vec<Found>, DockerError> {
        self.enter(Op::List, "fake")?;
        Ok(self
            .world()
            .containers
            .values()
            .map(|c| Found {
                id: c.id.clone(),
                name: c.name.clone(),
                state: c.state.clone(),
                labels: c.labels.clone().into_iter().collect(),
            })
            .collect())
    }

    async fn inspect(&self, container: &str) -> Result<Container, DockerError> {
        self.enter(Op::Inspect, container)?;
        let mut w = self.world();
        Ok(inspect(w.get(Op::Inspect, container)?))
    }

    async fn update_limits(
        &self,
        container: &str,
        cpus: Option<f64>,
        memory: Option<u64>,
    ) -> Result<Limits, DockerError> {
        self.enter(Op::UpdateLimits, container)?;
        let mut w = self.world();
        let c = w.get(Op::UpdateLimits, container)?;
        let current = c.limits;
        c.limits = current.resized(
            cpus.unwrap_or(current.cpus),
            memory.unwrap_or(current.memory),
        );
        Ok(c.limits)
    }

    async fn clone_spec(
        &self,
        blue: &str,
        limits: &Limits,
        labels: &[(String, String)],
    ) -> Result<CloneSpec, DockerError> {
        self.enter(Op::CloneSpec, blue)?;
        let mut w = self.world();
        let b = w.get(Op::CloneSpec, blue)?;
        let mut green_labels = b.labels.clone();
        green_labels.extend(labels.iter().cloned());
        let request = Request {
            image: b.image.clone(),
            labels: green_labels,
            limits: *limits,
            has_healthcheck: b.has_healthcheck,
        };
        let blue_view =
            serde_json::json!({"Image": b.image, "Labels": b.labels, "Limits": b.limits});
        let green_view = serde_json::json!({"Image": request.image, "Labels": request.labels, "Limits": request.limits});
        Ok(CloneSpec {
            request: serde_json::to_value(&request).map_err(|e| DockerError::Invalid {
                container: blue.to_string(),
                problem: e.to_string(),
            })?,
            blue_view,
            green_view,
            extra_networks: Vec::new(),
            // Fake containers publish no fixed host port (a swap with
            // router `none` refuses those).
            moved_ports: Vec::new(),
            address: None,
        })
    }

    async fn create_clone(&self, name: &str, spec: &CloneSpec) -> Result<String, DockerError> {
        self.enter(Op::CreateClone, name)?;
        let request: Request =
            serde_json::from_value(spec.request.clone()).map_err(|e| DockerError::Invalid {
                container: name.to_string(),
                problem: e.to_string(),
            })?;
        let mut w = self.world();
        if w.name_taken(name, None) {
            return Err(engine_error(
                Op::CreateClone,
                name,
                409,
                &format!("Conflict. The container name \"/{name}\" is already in use"),
            ));
        }
        let mut c = FakeContainer::serving(name, &[]);
        c.image = request.image;
        c.labels = request.labels;
        c.limits = request.limits;
        c.has_healthcheck = request.has_healthcheck;
        c.running = false;
        c.state = "created".into();
        c.health = Health::Starting;
        Ok(w.add(c))
    }

    async fn start(&self, container: &str) -> Result<(), DockerError> {
        self.enter(Op::Start, container)?;
        let mut w = self.world();
        let c = w.get(Op::Start, container)?;
        if !c.running {
            let id = c.id.clone();
            w.started(&id);
        }
        Ok(())
    }

    async fn stop(&self, container: &str, _timeout: Option<Duration>) -> Result<(), DockerError> {
        self.enter(Op::Stop, container)?;
        let mut w = self.world();
        let c = w.get(Op::Stop, container)?;
        c.running = false;
        c.state = "exited".into();
        c.health_script.clear();
        Ok(())
    }

    async fn remove(&self, container: &str, force: bool) -> Result<(), DockerError> {
        self.enter(Op::Remove, container)?;
        let mut w = self.world();
        let Some(id) = w.resolve(container) else {
            return Ok(());
        };
        if w.containers[&id].running && !force {
            return Err(engine_error(
                Op::Remove,
                container,
                409,
                "You cannot remove a running container. Stop the container before attempting removal or force remove",
            ));
        }
        w.containers.remove(&id);
        Ok(())
    }

    async fn rename(&self, container: &str, new_name: &str) -> Result<(), DockerError> {
        self.enter(Op::Rename, container)?;
        let mut w = self.world();
        let id = w.get(Op::Rename, container)?.id.clone();
        if w.containers[&id].name == new_name {
            return Err(engine_error(
                Op::Rename,
                container,
                400,
                "Renaming a container with the same name as its current name",
            ));
        }
        if w.name_taken(new_name, Some(&id)) {
            return Err(engine_error(
                Op::Rename,
                container,
                409,
                &format!("Conflict. The container name \"/{new_name}\" is already in use"),
            ));
        }
        if let Some(c) = w.containers.get_mut(&id) {
            c.name = new_name.to_string();
        }
        Ok(())
    }

    async fn restart(
        &self,
        container: &str,
        _stop_timeout: Option<Duration>,
    ) -> Result<(), DockerError> {
        self.enter(Op::Restart, container)?;
        let mut w = self.world();
        let c = w.get(Op::Restart, container)?;
        c.restarts += 1;
        let id = c.id.clone();
        w.started(&id);
        Ok(())
    }

    async fn copy_in(
        &self,
        container: &str,
        dir: &str,
        file: FileIn<'_>,
    ) -> Result<(), DockerError> {
        self.enter(Op::CopyIn, container)?;
        let mut w = self.world();
        let c = w.get(Op::CopyIn, container)?;
        c.files
            .insert(format!("{dir}/{}", file.name), file.contents.to_vec());
        Ok(())
    }

    async fn exec(
        &self,
        container: &str,
        argv: &[String],
        _timeout: Duration,
    ) -> Result<CheckRun, DockerError> {
        self.enter(Op::Exec, container)?;
        let mut w = self.world();
        let c = w.get(Op::Exec, container)?;
        if !c.running {
            return Err(engine_error(
                Op::Exec,
                container,
                409,
                &format!("Container {container} is not running"),
            ));
        }
        c.execs.push(argv.to_vec());
        let exit_code = c
            .exec_script
            .pop_front()
            .unwrap_or(if c.health == Health::Healthy { 0 } else { 1 });
        Ok(CheckRun {
            exit_code,
            output: if exit_code == 0 { "ok" } else { "not ready" }.into(),
        })
    }

    async fn usage(
        &self,
        container: &str,
        oom_since: Option<DateTime<Utc>>,
    ) -> Result<Usage, DockerError> {
        self.enter(Op::Usage, container)?;
        let mut w = self.world();
        let c = w.get(Op::Usage, container)?;
        Ok(Usage {
            read_at: Utc::now(),
            cpu_seconds: 0.0,
            memory: c.usage,
            oom_events: oom_since.map(|_| 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_unique_and_removal_is_idempotent() {
        let rt = FakeRuntime::new();
        let blue = rt.add(FakeContainer::serving("web", &[]));
        rt.add(FakeContainer::serving("web_old", &[]));
        let err = rt.rename(&blue, "web_old").await.unwrap_err().to_string();
        assert!(err.contains("already in use"), "{err}");
        assert!(rt.rename("web", "web").await.is_err());
        assert!(rt.remove("web", false).await.is_err(), "running");
        rt.remove("web", true).await.unwrap();
        rt.remove("web", true).await.unwrap();
        let err = rt.inspect("web").await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(rt.try_inspect("web").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_clone_starts_then_turns_healthy() {
        let rt = FakeRuntime::new();
        let blue = rt.add(FakeContainer::serving("web", &[("a", "1")]));
        let bigger = Limits {
            cpus: 2.0,
            ..rt.inspect(&blue).await.unwrap().limits
        };
        let spec = rt
            .clone_spec(&blue, &bigger, &[("b".into(), "2".into())])
            .await
            .unwrap();
        let green = rt.create_clone("web_green", &spec).await.unwrap();
        assert!(rt.create_clone("web_green", &spec).await.is_err());
        assert!(!rt.inspect(&green).await.unwrap().running);
        rt.start(&green).await.unwrap();
        let first = rt.inspect(&green).await.unwrap();
        assert_eq!((first.health, first.limits.cpus), (Health::Starting, 2.0));
        assert_eq!(first.labels["a"], "1");
        assert_eq!(first.labels["b"], "2");
        assert!(rt.inspect(&green).await.unwrap().serving());
    }

    #[tokio::test]
    async fn failures_hit_the_call_they_aim_at() {
        let rt = FakeRuntime::new();
        rt.add(FakeContainer::serving("a", &[]));
        rt.add(FakeContainer::serving("b", &[]));
        rt.fail_once(Op::Inspect, Some("b"));
        rt.inspect("a").await.unwrap();
        let err = rt.inspect("b").await.unwrap_err().to_string();
        assert!(err.contains("cannot inspect container b"), "{err}");
        rt.inspect("b").await.unwrap();
        rt.fail_call(4);
        rt.list().await.unwrap();
        assert!(rt.list().await.is_err(), "the fifth call of all");
        rt.fail_after(Op::Stop, None, 1);
        rt.stop("a", None).await.unwrap();
        assert!(rt.stop("a", None).await.is_err());
        rt.stop("a", None).await.unwrap();
    }
}
