//! The real lever backends for `tune` and `rollback`: PostgreSQL through the
//! safe applier, containers through the one Docker runtime (shared with the
//! PostgreSQL restarter), plus the env-file and command backends.

use std::sync::Arc;

use anyhow::Context as _;

use crate::config::Config;
use crate::exit::UsageError;
use crate::journal::Events;
use crate::levers::backends::{ContainerLevers, PostgresLevers, Router};
use crate::levers::LeverBackend;
use crate::postgres::{ArgvRestarter, DockerRestarter, PgDatabase, PgOptions, Restarter};
use crate::runtime::{DockerRuntime, Runtime, ServiceQuery};

/// `events` hears the waits of PostgreSQL restarts.
pub async fn real(config: &Config, events: Arc<dyn Events>) -> anyhow::Result<Router> {
    let runtime: Option<Arc<dyn Runtime>> = DockerRuntime::connect(config.docker.host.as_deref())
        .await
        .ok()
        .map(|r| Arc::new(r) as Arc<dyn Runtime>);
    let project = config.compose.as_ref().map(|c| c.project.clone());
    let settings = config.tune.clone().unwrap_or_default();

    let mut postgres_container = None;
    let restarter: Option<Arc<dyn Restarter>> = match &settings.restarter {
        None => None,
        Some(r) => match (&r.container, &r.argv) {
            (Some(service), None) => {
                let runtime = runtime.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("tune.restarter.container {service:?} needs the Docker engine, which is not reachable")
                })?;
                let found = runtime
                    .find_one(&ServiceQuery { service: service.clone(), project: project.clone() })
                    .await
                    .with_context(|| format!("cannot find the PostgreSQL container for tune.restarter.container {service:?}"))?;
                postgres_container = Some((service.clone(), found.name.clone()));
                let mut restarter = DockerRestarter::new(runtime.clone(), found.name);
                restarter.stop_timeout_secs = r.timeout.as_secs().min(u32::MAX as u64) as _;
                Some(Arc::new(restarter))
            }
            (None, Some(argv)) => {
                let data_dir = r.data_dir.clone().ok_or_else(|| {
                    UsageError(format!("{}: tune.restarter.argv needs tune.restarter.data_dir (to restore postgresql.auto.conf after a failed start)", config.source.display()))
                })?;
                Some(Arc::new(ArgvRestarter {
                    argv: argv.clone(),
                    timeout: r.timeout,
                    data_dir,
                }))
            }
            _ => {
                return Err(UsageError(format!(
                    "{}: tune.restarter needs exactly one of `container` or `argv`",
                    config.source.display()
                ))
                .into())
            }
        },
    };
    let mut options = PgOptions {
        connect_timeout: config.postgres.connect_timeout,
        ..PgOptions::default()
    };
    if let Some(r) = &settings.restarter {
        options.restart_timeout = r.timeout;
    }
    // Shared memory must fit the container's memory limit before a restart.
    if let (Some(runtime), Some((_, name))) = (&runtime, &postgres_container) {
        if let Ok(c) = runtime.inspect(name).await {
            if c.limits.memory > 0 {
                options.memory_limit_bytes = Some(c.limits.memory);
            }
        }
    }
    let db = PgDatabase::new(&config.postgres.dsn, restarter, options)?.with_events(events);
    let postgres: Arc<dyn LeverBackend> = Arc::new(PostgresLevers {
        db,
        state_dir: config.paths.state_dir.clone(),
    });
    let container: Option<Arc<dyn LeverBackend>> = runtime.map(|runtime| {
        let db_for_memory = PgDatabase::new(&config.postgres.dsn, None, PgOptions::default()).ok();
        Arc::new(ContainerLevers {
            runtime,
            project,
            state_dir: config.paths.state_dir.clone(),
            postgres_service: postgres_container.map(|(service, _)| service),
            postgres: db_for_memory,
            project_dir: config.compose.as_ref().map(|c| c.project_dir.clone()),
        }) as Arc<dyn LeverBackend>
    });
    Ok(super::tune::levers(config, Some(postgres), container))
}
