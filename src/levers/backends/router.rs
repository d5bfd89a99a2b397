//! One `LeverBackend` over several: each lever goes to the backend of its
//! kind. A kind with no backend rejects its levers, so the cycle skips them
//! (with the reason) instead of failing.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::levers::catalog::{Lever, Target};
use crate::levers::port::{BackendError, LeverBackend, Move, Plan};

#[derive(Default, Clone)]
pub struct Router {
    pub postgres: Option<Arc<dyn LeverBackend>>,
    pub container: Option<Arc<dyn LeverBackend>>,
    pub env: Option<Arc<dyn LeverBackend>>,
    pub command: Option<Arc<dyn LeverBackend>>,
}

impl Router {
    fn route(&self, lever: &Lever) -> Result<&dyn LeverBackend, BackendError> {
        let (backend, kind) = match &lever.target {
            Target::Postgres { .. } => (&self.postgres, "postgres"),
            Target::Container { .. } => (&self.container, "container"),
            Target::Env { .. } => (&self.env, "env"),
            Target::Command { .. } => (&self.command, "command"),
        };
        backend.as_deref().ok_or_else(|| BackendError::Rejected {
            lever: lever.name.clone(),
            reason: format!("no {kind} backend is configured"),
        })
    }
}

#[async_trait]
impl LeverBackend for Router {
    async fn current(&self, lever: &Lever) -> Result<Option<String>, BackendError> {
        self.route(lever)?.current(lever).await
    }

    async fn plan(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        self.route(lever)?.plan(lever, mv).await
    }

    async fn apply(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.route(lever)?.apply(lever, mv).await
    }

    async fn plan_revert(&self, lever: &Lever, mv: &Move) -> Result<Plan, BackendError> {
        self.route(lever)?.plan_revert(lever, mv).await
    }

    async fn revert(&self, lever: &Lever, mv: &Move) -> Result<(), BackendError> {
        self.route(lever)?.revert(lever, mv).await
    }

    /// The PostgreSQL settings come from the postgres backend alone.
    async fn settings_snapshot(&self) -> Result<String, BackendError> {
        match &self.postgres {
            Some(pg) => pg.settings_snapshot().await,
            None => Ok("# no postgres backend configured\n".into()),
        }
    }

    fn files_touched(&self, lever: &Lever) -> Vec<PathBuf> {
        self.route(lever)
            .map(|b| b.files_touched(lever))
            .unwrap_or_default()
    }

    async fn checkpoint(&self) -> Result<bool, BackendError> {
        match &self.postgres {
            Some(pg) => pg.checkpoint().await,
            None => Ok(false),
        }
    }

    async fn transactions(&self) -> Result<Option<u64>, BackendError> {
        match &self.postgres {
            Some(pg) => pg.transactions().await,
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::levers::fakes::FakeBackend;

    #[tokio::test]
    async fn routes_by_kind_and_rejects_missing_kinds() {
        let pg = Arc::new(FakeBackend::with(&[("max_wal_size", "1GB")]));
        let router = Router {
            postgres: Some(pg.clone()),
            ..Router::default()
        };
        let lever = Lever::postgres_probe("max_wal_size");
        assert_eq!(
            router.current(&lever).await.unwrap().as_deref(),
            Some("1GB")
        );
        let mut env = lever.clone();
        env.target = Target::Env {
            file: None,
            key: "K".into(),
            service: "app".into(),
        };
        let err = router.current(&env).await.unwrap_err();
        assert!(err.to_string().contains("no env backend"), "{err}");
        assert!(router
            .settings_snapshot()
            .await
            .unwrap()
            .contains("max_wal_size = 1GB"));
    }
}
