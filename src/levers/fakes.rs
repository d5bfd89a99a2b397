//! An in-memory lever backend for unit tests: it holds lever values and
//! records every call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::catalog::{Lever, Target};
use super::port::{BackendError, Disruption, LeverBackend, Move, Plan};

pub type Levels = BTreeMap<String, Option<String>>;

/// Transactions per second as a function of the lever values.
pub type Throughput = Box<dyn Fn(&Levels) -> f64 + Send + Sync>;

#[derive(Default)]
pub struct FakeBackend {
    pub values: Mutex<Levels>,
    pub calls: Mutex<Vec<String>>,
    /// Levers whose plan restarts the database (as pg_settings.context says).
    pub restart: Vec<String>,
    pub fail_apply: Vec<String>,
    pub files: Vec<PathBuf>,
    /// Answers `checkpoint()` as a database would; off, as a backend with no
    /// postgres does.
    pub can_checkpoint: bool,
    pub checkpoints: AtomicUsize,
    /// With a value, `transactions()` counts this many per second of (tokio)
    /// time since it was first asked; without, it answers `None`.
    pub transactions_per_second: Option<f64>,
    /// A closed-loop load: the rate depends on the settings. Overrides
    /// `transactions_per_second`; each reading adds the rate at the time of
    /// reading over the time since the last one.
    pub throughput: Option<Throughput>,
    /// (last reading, transactions counted by then)
    pub counted: Mutex<Option<(tokio::time::Instant, f64)>>,
}

impl FakeBackend {
    pub fn with(values: &[(&str, &str)]) -> FakeBackend {
        FakeBackend {
            values: Mutex::new(
                values
                    .iter()
                    .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                    .collect(),
            ),
            ..FakeBackend::default()
        }
    }

    pub fn value(&self, lever: &str) -> Option<String> {
        self.values.lock().unwrap().get(lever).cloned().flatten()
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls that change something.
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with("apply") || c.starts_with("revert"))
            .collect()
    }

    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

/// What a lever moves: a PostgreSQL parameter is one setting whichever lever
/// names it; anything else is keyed by the lever's name.
fn key(lever: &Lever) -> String {
    match &lever.target {
        Target::Postgres { parameter, .. } => parameter.clone(),
        _ => lever.name.clone(),
    }
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("default")
}

#[async_trait]
impl LeverBackend for FakeBackend {
    async fn current(&self, lever: &Lever) -> Result<Option<String>, BackendError> {
        self.log(format!("current {}", lever.name));
        Ok(self.value(&key(lever)))
    }

    async fn plan(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        self.log(format!(
            "plan {} {}->{}",
            lever.name,
            show(&mv.from),
            show(&mv.to)
        ));
        let restart = self.restart.contains(&lever.name);
        let mut steps = vec![format!(
            "ALTER SYSTEM SET {} = '{}'",
            lever.name,
            show(&mv.to)
        )];
        steps.push(if restart {
            "restart postgres".into()
        } else {
            "SELECT pg_reload_conf()".into()
        });
        Ok(Plan {
            steps,
            disruption: if restart {
                Disruption::Restart
            } else {
                Disruption::Reload
            },
        })
    }

    async fn apply(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.log(format!(
            "apply {} {}->{}",
            lever.name,
            show(&mv.from),
            show(&mv.to)
        ));
        if self.fail_apply.contains(&lever.name) {
            return Err(BackendError::Failed {
                lever: lever.name.clone(),
                reason: "reload failed".into(),
            });
        }
        self.values
            .lock()
            .unwrap()
            .insert(key(lever), mv.to.clone());
        Ok(())
    }

    async fn revert(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.log(format!(
            "revert {} {}->{}",
            lever.name,
            show(&mv.to),
            show(&mv.from)
        ));
        self.values
            .lock()
            .unwrap()
            .insert(key(lever), mv.from.clone());
        Ok(())
    }

    async fn settings_snapshot(&self) -> Result<String, BackendError> {
        self.log("snapshot".into());
        Ok(self
            .values
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k} = {}\n", show(v)))
            .collect())
    }

    fn files_touched(&self, _: &Lever) -> Vec<PathBuf> {
        self.files.clone()
    }

    async fn checkpoint(&self) -> Result<bool, BackendError> {
        if self.can_checkpoint {
            self.log("checkpoint".into());
            self.checkpoints.fetch_add(1, Ordering::SeqCst);
        }
        Ok(self.can_checkpoint)
    }

    async fn transactions(&self) -> Result<Option<u64>, BackendError> {
        let rate = match &self.throughput {
            Some(model) => model(&self.values.lock().unwrap()),
            None => match self.transactions_per_second {
                Some(rate) => rate,
                None => return Ok(None),
            },
        };
        let now = tokio::time::Instant::now();
        let mut counted = self.counted.lock().unwrap();
        let (last, n) = counted.unwrap_or((now, 0.0));
        let n = n + now.duration_since(last).as_secs_f64() * rate;
        *counted = Some((now, n));
        Ok(Some(n as u64))
    }
}
