//! Executing a [`Plan`]: write with `ALTER SYSTEM`, make it effective by a
//! reload or a restart, and confirm from the live server.
//!
//! A change that cannot be confirmed is reverted (the previous
//! `postgresql.auto.conf` entry put back), so the server never keeps a
//! setting the journal does not know about.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::catalog::{self, SettingInfo};
use super::client::{auto_conf_entry, query_error, PgDatabase};
use super::plan::{Activation, Applied, Plan, PlanAction};
use super::restart::Restarter;
use super::restart_checks::config_file_problems;
use super::sql::{alter_system_reset, alter_system_set, quote_literal};
use super::PostgresError;

const POLL: Duration = Duration::from_millis(100);

impl PgDatabase {
    pub(super) async fn execute(
        &self,
        client: Client,
        plan: Plan,
    ) -> Result<Applied, PostgresError> {
        tracing::info!(setting = %plan.name, sql = %plan.sql, activation = %plan.activation, "applying PostgreSQL setting");
        match plan.activation {
            Activation::Reload => self.execute_reload(client, plan).await,
            Activation::Restart => self.execute_restart(client, plan).await,
        }
    }

    async fn execute_reload(&self, client: Client, plan: Plan) -> Result<Applied, PostgresError> {
        let previous_entry = auto_conf_entry(&client, &plan.name).await?;
        // ALTER SYSTEM refuses to run in a transaction block; the simple
        // query protocol runs this single statement on its own.
        client
            .batch_execute(&plan.sql)
            .await
            .map_err(query_error(format!("running {}", plan.sql)))?;
        crate::crash::at(crate::crash::Point::Written);
        self.reload(&client, &plan.name).await?;
        let current = self.read_back(&client, &plan).await?;
        if let Err(e) = confirm(&plan, &current) {
            let reverted = self
                .revert(&client, &plan.name, previous_entry.as_deref())
                .await;
            return Err(with_reverted(e, reverted.is_ok()));
        }
        Ok(Applied::confirmed(plan, current))
    }

    async fn execute_restart(&self, client: Client, plan: Plan) -> Result<Applied, PostgresError> {
        let restarter = self
            .restarter
            .clone()
            .ok_or_else(|| PostgresError::NoRestarter {
                name: plan.name.clone(),
            })?;
        // Saved before the change: with the server down, these bytes are
        // the only way back.
        let saved: Vec<u8> = client
            .query_one(
                "SELECT pg_catalog.pg_read_binary_file('postgresql.auto.conf')",
                &[],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(query_error(
                "saving postgresql.auto.conf (needs superuser or pg_read_server_files)",
            ))?;
        let previous_entry = auto_conf_entry(&client, &plan.name).await?;
        client
            .batch_execute(&plan.sql)
            .await
            .map_err(query_error(format!("running {}", plan.sql)))?;
        // pg_file_settings re-reads the files: what would the restart see?
        let errors = config_file_problems(&client).await?;
        if !errors.is_empty() {
            let _ = self
                .revert(&client, &plan.name, previous_entry.as_deref())
                .await;
            return Err(PostgresError::ConfigFileErrors {
                name: plan.name.clone(),
                errors,
            });
        }
        drop(client);
        crate::crash::at(crate::crash::Point::Restart);

        let timeout = self.options.restart_timeout;
        match self.restart_and_wait(restarter.as_ref(), timeout).await {
            Ok(client) => {
                crate::crash::at(crate::crash::Point::Restarted);
                let current = catalog::lookup(&client, &plan.name).await?;
                confirm(&plan, &current)?;
                Ok(Applied::confirmed(plan, current))
            }
            Err(first) => {
                tracing::error!(setting = %plan.name, "PostgreSQL did not come back after the restart: {first}; restoring the previous postgresql.auto.conf");
                let recovery = async {
                    restarter.restore_auto_conf(&saved).await?;
                    match self.restart_and_wait(restarter.as_ref(), timeout).await {
                        Ok(client) => Ok(client),
                        // A restarter that failed without stopping anything
                        // leaves the old server running, and with the file
                        // restored that is the state we wanted.
                        Err(e) => {
                            let grace = Instant::now() + self.options.connect_timeout;
                            self.wait_ready(grace, None).await.map_err(|_| e)
                        }
                    }
                };
                let restored = match recovery.await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::error!(setting = %plan.name, "recovery failed too: {e}");
                        false
                    }
                };
                Err(PostgresError::RestartFailed {
                    name: plan.name.clone(),
                    seconds: timeout.as_secs(),
                    reason: first.to_string(),
                    restored,
                })
            }
        }
    }

    /// Restarts through `restarter` and waits until PostgreSQL answers a
    /// query, all within `timeout`, reported as one open-ended wait.
    async fn restart_and_wait(
        &self,
        restarter: &dyn Restarter,
        timeout: Duration,
    ) -> Result<Client, PostgresError> {
        self.events.waiting(
            &format!(
                "restarting PostgreSQL through {} and waiting up to {}s until it answers",
                restarter.describe(),
                timeout.as_secs()
            ),
            None,
        );
        let result = self.restart_and_wait_silently(restarter, timeout).await;
        self.events.finished();
        result
    }

    async fn restart_and_wait_silently(
        &self,
        restarter: &dyn Restarter,
        timeout: Duration,
    ) -> Result<Client, PostgresError> {
        let deadline = Instant::now() + timeout;
        let fail = |reason: String| PostgresError::Restarter {
            restarter: restarter.describe(),
            reason,
        };
        tokio::time::timeout(timeout, restarter.restart())
            .await
            .map_err(|_| fail(format!("did not finish within {}s", timeout.as_secs())))??;
        self.wait_ready(deadline, Some(restarter))
            .await
            .map_err(|reason| fail(format!("PostgreSQL not ready: {reason}")))
    }

    /// Polls until PostgreSQL answers `SELECT 1` or `deadline` passes (or
    /// the restarter says it has stopped for good); the error is the last
    /// reason it did not.
    async fn wait_ready(
        &self,
        deadline: Instant,
        restarter: Option<&dyn Restarter>,
    ) -> Result<Client, String> {
        loop {
            // "the database system is starting up" is the normal answer for a while.
            let last = match self.connect().await {
                Ok(client) => match client.simple_query("SELECT 1").await {
                    Ok(_) => return Ok(client),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(format!("not ready in time: {last}"));
            }
            if let Some(r) = restarter {
                if let Some(reason) = r.gave_up().await {
                    return Err(format!("{reason} ({last})"));
                }
            }
            tokio::time::sleep(POLL * 2).await;
        }
    }

    /// `pg_reload_conf()`, then wait until our own session has re-read the
    /// files (its `pg_conf_load_time()` moves), so reads after this see them.
    async fn reload(&self, client: &Client, name: &str) -> Result<(), PostgresError> {
        let load_time = || async {
            client
                .query_one("SELECT pg_catalog.pg_conf_load_time()::text", &[])
                .await
                .and_then(|r| r.try_get::<_, String>(0))
                .map_err(query_error("reading pg_conf_load_time()"))
        };
        let before = load_time().await?;
        client
            .query_one("SELECT pg_catalog.pg_reload_conf()", &[])
            .await
            .map_err(query_error("calling pg_reload_conf()"))?;
        let deadline = Instant::now() + self.options.reload_timeout;
        loop {
            if load_time().await? != before {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PostgresError::ReloadTimeout {
                    name: name.to_string(),
                    seconds: self.options.reload_timeout.as_secs(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Reads the setting as new sessions see it. `backend` settings do not
    /// change in an existing session, so those are read from a fresh one.
    async fn read_back(&self, client: &Client, plan: &Plan) -> Result<SettingInfo, PostgresError> {
        if plan.context.per_session() {
            let fresh = self.connect().await?;
            return catalog::lookup(&fresh, &plan.name).await;
        }
        catalog::lookup(client, &plan.name).await
    }

    /// Puts the previous `postgresql.auto.conf` entry back and reloads.
    async fn revert(
        &self,
        client: &Client,
        name: &str,
        previous: Option<&str>,
    ) -> Result<(), PostgresError> {
        let sql = match previous {
            Some(v) => alter_system_set(name, &quote_literal(v)),
            None => alter_system_reset(name),
        };
        tracing::warn!(setting = %name, sql = %sql, "reverting an unconfirmed change");
        client
            .batch_execute(&sql)
            .await
            .map_err(query_error(format!("running {sql}")))?;
        self.reload(client, name).await
    }
}

/// Whether the live server shows what the plan asked for.
fn confirm(plan: &Plan, current: &SettingInfo) -> Result<(), PostgresError> {
    let ok = match &plan.action {
        PlanAction::Set(v) => v.normalized.matches(&current.setting),
        PlanAction::Reset => !current.from_auto_conf(),
    } && !current.pending_restart;
    if ok {
        return Ok(());
    }
    let expected = match &plan.action {
        PlanAction::Set(v) => v.normalized.to_string(),
        PlanAction::Reset => "a value not from postgresql.auto.conf".into(),
    };
    let pending = if current.pending_restart {
        ", pending restart"
    } else {
        ""
    };
    Err(PostgresError::NotConfirmed {
        name: plan.name.clone(),
        expected,
        actual: current.setting.clone(),
        source_kind: format!("{}{pending}", current.source),
        reverted: false,
    })
}

fn with_reverted(e: PostgresError, reverted: bool) -> PostgresError {
    match e {
        PostgresError::NotConfirmed {
            name,
            expected,
            actual,
            source_kind,
            ..
        } => PostgresError::NotConfirmed {
            name,
            expected,
            actual,
            source_kind,
            reverted,
        },
        other => other,
    }
}
