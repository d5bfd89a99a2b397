//! `command` levers: an argv to apply and one to roll back, run without a
//! shell. `{value}` in an argument is the value being set (apply) or the
//! value being restored, empty when there was none (rollback). An argument
//! that is exactly `{compose}` becomes the Compose command tuner found
//! (`docker compose` or `docker-compose`, or `compose.command`), so a
//! shipped lever works with either.
//!
//! A program cannot be asked for its "current value", so the value is the
//! journal's: the `to` of the lever's last kept change, else unset.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::run::{display, run, substitute};
use crate::levers::catalog::{Lever, Target};
use crate::levers::port::{BackendError, Disruption, KeptValues, LeverBackend, Move, Plan};

pub const PLACEHOLDER: &str = "{value}";
pub const COMPOSE: &str = "{compose}";

pub struct CommandLevers {
    /// The change ledger: a command's value is that of its last kept change.
    pub kept: Arc<dyn KeptValues>,
    /// Where the commands run (the Compose project folder).
    pub dir: Option<PathBuf>,
    pub timeout: Duration,
    /// What a `{compose}` argument stands for.
    pub compose: Vec<String>,
}

/// `argv` with each `{compose}` argument replaced by the Compose argv.
fn with_compose(argv: Vec<String>, compose: &[String]) -> Vec<String> {
    argv.into_iter()
        .flat_map(|arg| {
            if arg == COMPOSE {
                compose.to_vec()
            } else {
                vec![arg]
            }
        })
        .collect()
}

/// The argv that moves the lever to `to`: the apply argv for a value, the
/// rollback argv (with the value restored) for "unset".
fn forward(lever: &Lever, mv: &Move) -> Result<Vec<String>, BackendError> {
    match (&lever.target, &mv.to) {
        (Target::Command { apply, .. }, Some(v)) => Ok(substitute(apply, PLACEHOLDER, v)),
        (Target::Command { rollback, .. }, None) => Ok(substitute(rollback, PLACEHOLDER, "")),
        _ => Err(BackendError::Rejected {
            lever: lever.name.clone(),
            reason: "not a command lever".into(),
        }),
    }
}

/// The argv that undoes `mv`: always the rollback argv.
fn backward(lever: &Lever, mv: &Move) -> Result<Vec<String>, BackendError> {
    match &lever.target {
        Target::Command { rollback, .. } => Ok(substitute(
            rollback,
            PLACEHOLDER,
            mv.from.as_deref().unwrap_or(""),
        )),
        _ => Err(BackendError::Rejected {
            lever: lever.name.clone(),
            reason: "not a command lever".into(),
        }),
    }
}

impl CommandLevers {
    async fn exec(&self, lever: &Lever, argv: &[String]) -> Result<(), BackendError> {
        run(argv, self.dir.as_deref(), self.timeout)
            .await
            .map(|_| ())
            .map_err(|reason| BackendError::Failed {
                lever: lever.name.clone(),
                reason,
            })
    }
}

fn plan_of(argv: &[String]) -> Plan {
    Plan {
        steps: vec![format!("run: {}", display(argv))],
        disruption: Disruption::None,
    }
}

#[async_trait]
impl LeverBackend for CommandLevers {
    async fn current(&self, lever: &Lever) -> Result<Option<String>, BackendError> {
        self.kept
            .last_kept(&lever.name)
            .map_err(|reason| BackendError::Failed {
                lever: lever.name.clone(),
                reason,
            })
    }

    async fn plan(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        Ok(plan_of(&with_compose(forward(lever, mv)?, &self.compose)))
    }

    async fn apply(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.exec(lever, &with_compose(forward(lever, mv)?, &self.compose))
            .await
    }

    async fn plan_revert(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        Ok(plan_of(&with_compose(backward(lever, mv)?, &self.compose)))
    }

    async fn revert(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.exec(lever, &with_compose(backward(lever, mv)?, &self.compose))
            .await
    }

    async fn settings_snapshot(&self) -> Result<String, BackendError> {
        Ok(String::new())
    }

    fn files_touched(&self, _: &Lever) -> Vec<PathBuf> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::levers::catalog::{Cost, Symptom};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Kept(Mutex<Option<String>>);

    impl KeptValues for Kept {
        fn last_kept(&self, _: &str) -> Result<Option<String>, String> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    fn lever(dir: &std::path::Path) -> Lever {
        let flag = dir.join("pool");
        Lever {
            name: "pooling".into(),
            cost: Cost::High,
            symptoms: vec![Symptom::CpuPressure],
            values: vec!["on".into()],
            description: None,
            target: Target::Command {
                apply: vec![
                    "cp".into(),
                    "/dev/null".into(),
                    format!("{}-{{value}}", flag.display()),
                ],
                rollback: vec!["rm".into(), "-f".into(), format!("{}-on", flag.display())],
            },
        }
    }

    #[tokio::test]
    async fn applies_reverts_and_reads_its_value_from_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Arc::new(Kept::default());
        let backend = CommandLevers {
            kept: kept.clone(),
            dir: None,
            timeout: Duration::from_secs(10),
            compose: vec!["docker".into(), "compose".into()],
        };
        let l = lever(dir.path());
        let mv = Move {
            from: None,
            to: Some("on".into()),
        };
        assert_eq!(backend.current(&l).await.unwrap(), None);
        let plan = backend.plan(&l, &mv).await.unwrap();
        assert!(
            plan.steps[0].starts_with("run: cp /dev/null ") && plan.steps[0].ends_with("pool-on"),
            "{plan:?}"
        );
        assert_eq!(plan.disruption, Disruption::None);

        backend.apply(&l, &mv).await.unwrap();
        assert!(dir.path().join("pool-on").exists());
        *kept.0.lock().unwrap() = Some("on".into());
        assert_eq!(backend.current(&l).await.unwrap().as_deref(), Some("on"));

        assert!(backend.plan_revert(&l, &mv).await.unwrap().steps[0].starts_with("run: rm -f "));
        backend.revert(&l, &mv).await.unwrap();
        assert!(!dir.path().join("pool-on").exists());
    }

    #[test]
    fn a_compose_argument_becomes_the_compose_command_found() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let v2 = argv(&["docker", "compose"]);
        assert_eq!(
            with_compose(argv(&["{compose}", "up", "-d", "pgbouncer"]), &v2),
            argv(&["docker", "compose", "up", "-d", "pgbouncer"])
        );
        // Only a whole argument: text around it is the user's own.
        assert_eq!(
            with_compose(argv(&["echo", "x{compose}"]), &v2),
            argv(&["echo", "x{compose}"])
        );
        assert_eq!(
            with_compose(argv(&["{compose}", "stop"]), &argv(&["docker-compose"])),
            argv(&["docker-compose", "stop"])
        );
    }
}
