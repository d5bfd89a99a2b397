//! `command` levers: an argv to apply and one to roll back, run without a
//! shell. `{value}` in an argument is the value being set (apply) or the
//! value being restored, empty when there was none (rollback).
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

pub struct CommandLevers {
    /// The change ledger: a command's value is that of its last kept change.
    pub kept: Arc<dyn KeptValues>,
    /// Where the commands run (the Compose project folder).
    pub dir: Option<PathBuf>,
    pub timeout: Duration,
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
        Ok(plan_of(&forward(lever, mv)?))
    }

    async fn apply(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.exec(lever, &forward(lever, mv)?).await
    }

    async fn plan_revert(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        Ok(plan_of(&backward(lever, mv)?))
    }

    async fn revert(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.exec(lever, &backward(lever, mv)?).await
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
}
