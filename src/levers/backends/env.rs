//! `env` levers: `KEY=value` in a Compose env file (the demo's `.env`
//! holds `BATCH_SIZE`), then the service is recreated so it reads it.
//! The file is rewritten atomically; its pre-tuning copy is in backups/.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::run::{display, run, substitute};
use crate::config::envfile;
use crate::journal::write_atomic;
use crate::levers::catalog::{Lever, Target};
use crate::levers::port::{BackendError, Disruption, LeverBackend, Move, Plan};

pub struct EnvLevers {
    /// `compose.env_file`, for levers that name no `file`.
    pub default_file: Option<PathBuf>,
    /// Where the recreate command runs (`compose.project_dir`).
    pub project_dir: Option<PathBuf>,
    /// `tune.recreate`, with `{service}`.
    pub recreate: Vec<String>,
    pub timeout: Duration,
}

struct EnvTarget<'l> {
    file: PathBuf,
    key: &'l str,
    service: &'l str,
}

impl EnvLevers {
    fn target<'l>(&self, lever: &'l Lever) -> Result<EnvTarget<'l>, BackendError> {
        let rejected = |reason: &str| BackendError::Rejected {
            lever: lever.name.clone(),
            reason: reason.into(),
        };
        let Target::Env { file, key, service } = &lever.target else {
            return Err(rejected("not an env lever"));
        };
        let file = file
            .clone()
            .or_else(|| self.default_file.clone())
            .ok_or_else(|| {
                rejected("no env file: set `file:` on the lever or compose.env_file in tuner.yaml")
            })?;
        Ok(EnvTarget { file, key, service })
    }

    fn read(lever: &Lever, path: &Path) -> Result<String, BackendError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(BackendError::Failed {
                lever: lever.name.clone(),
                reason: format!("cannot read {}: {e}", path.display()),
            }),
        }
    }

    /// A file compose would refuse (or an impossible edit) is the user's
    /// to fix: the lever is passed over with the reason, not the run failed.
    fn rejected(lever: &Lever, path: &Path, e: envfile::EnvFileError) -> BackendError {
        BackendError::Rejected {
            lever: lever.name.clone(),
            reason: format!("env file {}: {e}", path.display()),
        }
    }

    fn recreate_argv(&self, service: &str) -> Vec<String> {
        substitute(&self.recreate, "{service}", service)
    }
}

#[async_trait]
impl LeverBackend for EnvLevers {
    async fn current(&self, lever: &Lever) -> Result<Option<String>, BackendError> {
        let t = self.target(lever)?;
        envfile::get(&Self::read(lever, &t.file)?, t.key)
            .map_err(|e| Self::rejected(lever, &t.file, e))
    }

    async fn plan(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        let t = self.target(lever)?;
        let edit = match &mv.to {
            Some(v) => format!("set {}={v} in {}", t.key, t.file.display()),
            None => format!("remove {} from {}", t.key, t.file.display()),
        };
        let recreate = format!("run: {}", display(&self.recreate_argv(t.service)));
        Ok(Plan {
            steps: vec![edit, recreate],
            disruption: Disruption::Recreate,
        })
    }

    async fn apply(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        let t = self.target(lever)?;
        let failed = |reason: String| BackendError::Failed {
            lever: lever.name.clone(),
            reason,
        };
        let text = Self::read(lever, &t.file)?;
        let edited = envfile::set(&text, t.key, mv.to.as_deref())
            .map_err(|e| Self::rejected(lever, &t.file, e))?;
        if edited != text {
            write_atomic(&t.file, edited.as_bytes()).map_err(|e| failed(e.to_string()))?;
        }
        crate::crash::at(crate::crash::Point::EnvWritten);
        // Recreate even when the file already held the value: a crash may
        // have come between the write and the recreate.
        run(
            &self.recreate_argv(t.service),
            self.project_dir.as_deref(),
            self.timeout,
        )
        .await
        .map(|_| ())
        .map_err(failed)
    }

    async fn settings_snapshot(&self) -> Result<String, BackendError> {
        Ok(String::new())
    }

    fn files_touched(&self, lever: &Lever) -> Vec<PathBuf> {
        self.target(lever).map(|t| vec![t.file]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::levers::catalog::{Cost, Symptom};

    fn lever() -> Lever {
        Lever {
            name: "app_batch_size".into(),
            cost: Cost::Low,
            symptoms: vec![Symptom::HighWalRate],
            values: vec!["500".into()],
            description: None,
            target: Target::Env {
                file: None,
                key: "BATCH_SIZE".into(),
                service: "app".into(),
            },
        }
    }

    #[tokio::test]
    async fn edits_the_env_file_and_recreates_the_service() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        let original = "# demo\r\nexport BATCH_SIZE=\"100\" # rows per tx\r\nOTHER=x\r\n";
        std::fs::write(&env, original).unwrap();
        let marker = dir.path().join("recreated");
        let backend = EnvLevers {
            default_file: Some(env.clone()),
            project_dir: Some(dir.path().to_path_buf()),
            recreate: vec![
                "cp".into(),
                "/dev/null".into(),
                format!("{}-{{service}}", marker.display()),
            ],
            timeout: Duration::from_secs(10),
        };
        let l = lever();
        assert_eq!(backend.current(&l).await.unwrap().as_deref(), Some("100"));
        let mv = Move {
            from: Some("100".into()),
            to: Some("500".into()),
        };
        let plan = backend.plan(&l, &mv).await.unwrap();
        assert_eq!(plan.disruption, Disruption::Recreate);
        assert!(
            plan.steps[0].starts_with("set BATCH_SIZE=500 in "),
            "{plan:?}"
        );
        backend.apply(&l, &mv).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&env).unwrap(),
            original.replace("\"100\"", "\"500\"")
        );
        assert!(dir.path().join("recreated-app").exists());
        backend.revert(&l, &mv).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&env).unwrap(),
            original,
            "the rollback restores the file byte for byte"
        );
        assert_eq!(backend.files_touched(&l), [env]);
    }

    #[tokio::test]
    async fn without_an_env_file_the_lever_is_rejected_not_failed() {
        let backend = EnvLevers {
            default_file: None,
            project_dir: None,
            recreate: vec!["true".into()],
            timeout: Duration::from_secs(1),
        };
        let err = backend.current(&lever()).await.unwrap_err();
        assert!(matches!(err, BackendError::Rejected { .. }), "{err}");
    }
}
