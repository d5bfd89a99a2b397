//! Restarting a PostgreSQL container through the Docker Engine API.
//!
//! `restart` without a signal makes Docker use the container's own stop
//! signal (the official image sets SIGINT, PostgreSQL's "fast shutdown"),
//! and the long stop timeout gives a checkpoint time to finish instead of
//! being SIGKILLed into crash recovery.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::query_parameters::{RestartContainerOptionsBuilder, UploadToContainerOptionsBuilder};
use bollard::Docker;

use super::restart::Restarter;
use super::tar::{single_file, TarFile};
use super::PostgresError;

#[derive(Debug, Clone)]
pub struct DockerRestarter {
    /// Container name or id.
    pub container: String,
    /// PostgreSQL's data directory inside the container.
    pub data_dir: String,
    /// Seconds Docker waits after the stop signal before SIGKILL.
    pub stop_timeout_secs: u32,
    /// Owner of the restored `postgresql.auto.conf` inside the container
    /// (the official image's `postgres` user is 999:999).
    pub file_uid: u64,
    pub file_gid: u64,
}

impl DockerRestarter {
    /// Defaults for the official `postgres` image.
    pub fn new(container: impl Into<String>) -> DockerRestarter {
        DockerRestarter {
            container: container.into(),
            data_dir: "/var/lib/postgresql/data".into(),
            stop_timeout_secs: 120,
            file_uid: 999,
            file_gid: 999,
        }
    }

    /// Connects honouring `DOCKER_HOST`, agreeing on an API version the
    /// daemon speaks. The HTTP timeout outlasts the stop timeout, or a slow
    /// shutdown would look like a failed restart.
    async fn docker(&self) -> Result<Docker, PostgresError> {
        let docker = Docker::connect_with_defaults()
            .map_err(|source| PostgresError::Docker {
                doing: "connecting to the Docker daemon".into(),
                source,
            })?
            .with_timeout(Duration::from_secs(u64::from(self.stop_timeout_secs) + 60));
        docker
            .negotiate_version()
            .await
            .map_err(|source| PostgresError::Docker {
                doing: "negotiating the Docker API version".into(),
                source,
            })
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
        let docker = self.docker().await?;
        let t = i32::try_from(self.stop_timeout_secs).unwrap_or(i32::MAX);
        // Restart also starts a container that has stopped, which is what a
        // recovery after a failed start needs.
        docker
            .restart_container(
                &self.container,
                Some(RestartContainerOptionsBuilder::new().t(t).build()),
            )
            .await
            .map_err(|source| PostgresError::Docker {
                doing: format!("restarting container {}", self.container),
                source,
            })
    }

    async fn gave_up(&self) -> Option<String> {
        let docker = self.docker().await.ok()?;
        let state = docker
            .inspect_container(&self.container, None)
            .await
            .ok()?
            .state?;
        // A restart policy brings it back by itself: keep waiting.
        if state.running == Some(true) || state.restarting == Some(true) {
            return None;
        }
        let oom = if state.oom_killed == Some(true) {
            ", killed for running out of memory"
        } else {
            ""
        };
        Some(format!(
            "container {} exited with code {}{oom}",
            self.container,
            state.exit_code.unwrap_or(-1)
        ))
    }

    async fn restore_auto_conf(&self, contents: &[u8]) -> Result<(), PostgresError> {
        let mtime = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let archive = single_file(&TarFile {
            name: "postgresql.auto.conf",
            contents,
            mode: 0o600,
            uid: self.file_uid,
            gid: self.file_gid,
            mtime,
        })
        .map_err(|reason| PostgresError::Restarter {
            restarter: self.describe(),
            reason,
        })?;
        let docker = self.docker().await?;
        // The archive API works on stopped containers too, so this restores
        // a server that no longer starts.
        docker
            .upload_to_container(
                &self.container,
                Some(
                    UploadToContainerOptionsBuilder::new()
                        .path(&self.data_dir)
                        .build(),
                ),
                bollard::body_full(archive.into()),
            )
            .await
            .map_err(|source| PostgresError::Docker {
                doing: format!(
                    "writing {}/postgresql.auto.conf in container {}",
                    self.data_dir, self.container
                ),
                source,
            })
    }
}
