//! Restarting a PostgreSQL container through the container runtime.
//!
//! The restart uses the container's own stop signal (the official image
//! sets SIGINT, PostgreSQL's "fast shutdown"), and the long stop timeout
//! gives a checkpoint time to finish instead of being SIGKILLed into crash
//! recovery.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::restart::Restarter;
use super::PostgresError;
use crate::runtime::{FileIn, Runtime};

#[derive(Clone)]
pub struct DockerRestarter {
    /// The engine the container runs on: the same connection (and
    /// `docker.host`) as every other command.
    pub runtime: Arc<dyn Runtime>,
    /// Container name or id.
    pub container: String,
    /// PostgreSQL's data directory inside the container.
    pub data_dir: String,
    /// Seconds the engine waits after the stop signal before SIGKILL.
    pub stop_timeout_secs: u32,
    /// Owner of the restored `postgresql.auto.conf` inside the container
    /// (the official image's `postgres` user is 999:999).
    pub file_uid: u64,
    pub file_gid: u64,
}

impl std::fmt::Debug for DockerRestarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The runtime is a connection: nothing worth printing.
        f.debug_struct("DockerRestarter")
            .field("container", &self.container)
            .field("data_dir", &self.data_dir)
            .field("stop_timeout_secs", &self.stop_timeout_secs)
            .finish()
    }
}

impl DockerRestarter {
    /// Defaults for the official `postgres` image.
    pub fn new(runtime: Arc<dyn Runtime>, container: impl Into<String>) -> DockerRestarter {
        DockerRestarter {
            runtime,
            container: container.into(),
            data_dir: "/var/lib/postgresql/data".into(),
            stop_timeout_secs: 120,
            file_uid: 999,
            file_gid: 999,
        }
    }
}

#[async_trait]
impl Restarter for DockerRestarter {
    fn describe(&self) -> String {
        format!(
            "docker container {} (stop timeout {}s)",
            self.container, self.stop_timeout_secs
        )
    }

    async fn restart(&self) -> Result<(), PostgresError> {
        // Restart also starts a container that has stopped, which is what a
        // recovery after a failed start needs.
        let timeout = Duration::from_secs(u64::from(self.stop_timeout_secs));
        Ok(self.runtime.restart(&self.container, Some(timeout)).await?)
    }

    async fn gave_up(&self) -> Option<String> {
        let c = self.runtime.inspect(&self.container).await.ok()?;
        // A restart policy brings it back by itself: keep waiting.
        if c.running || c.restarting {
            return None;
        }
        let oom = if c.oom_killed {
            ", killed for running out of memory"
        } else {
            ""
        };
        Some(format!(
            "container {} exited with code {}{oom}",
            self.container, c.exit_code
        ))
    }

    async fn restore_auto_conf(&self, contents: &[u8]) -> Result<(), PostgresError> {
        let file = FileIn {
            name: "postgresql.auto.conf",
            contents,
            mode: 0o600,
            uid: self.file_uid,
            gid: self.file_gid,
        };
        Ok(self
            .runtime
            .copy_in(&self.container, &self.data_dir, file)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fake::{FakeContainer, FakeRuntime, Op};

    fn restarter() -> (Arc<FakeRuntime>, DockerRestarter) {
        let fake = Arc::new(FakeRuntime::new());
        fake.add(FakeContainer::serving("db", &[]));
        let restarter = DockerRestarter::new(fake.clone(), "db");
        (fake, restarter)
    }

    #[tokio::test]
    async fn restores_auto_conf_into_a_stopped_container_then_restarts_it() {
        let (fake, restarter) = restarter();
        fake.stop("db", None).await.unwrap();
        let gave_up = restarter.gave_up().await.unwrap_or_default();
        assert!(gave_up.contains("container db exited"), "{gave_up}");
        restarter.restore_auto_conf(b"x = 1\n").await.unwrap();
        restarter.restart().await.unwrap();
        let db = fake.get("db").unwrap();
        assert_eq!(
            db.files["/var/lib/postgresql/data/postgresql.auto.conf"],
            b"x = 1\n"
        );
        assert!(db.running && db.restarts == 1);
        assert_eq!(restarter.gave_up().await, None);
    }

    #[tokio::test]
    async fn engine_errors_name_the_container() {
        let (fake, restarter) = restarter();
        fake.fail_once(Op::Restart, Some("db"));
        let e = restarter.restart().await.unwrap_err().to_string();
        assert!(e.contains("restart container db"), "{e}");
        fake.fail_once(Op::CopyIn, None);
        let e = restarter.restore_auto_conf(b"").await.unwrap_err();
        assert!(
            e.to_string().contains("copy a file into container db"),
            "{e}"
        );
    }
}
