//! The real [`Database`]: a PostgreSQL server reached through a DSN.
//!
//! Every operation opens its own short connection. Tuning is rare and a
//! restart kills connections anyway, so there is no pool to heal.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::{Client, Config, NoTls};

use super::catalog::{self, Context, SettingInfo};
use super::plan::{Activation, Applied, Plan, PlanAction};
use super::restart::Restarter;
use super::safety::durability_risk;
use super::sql::{alter_system_reset, alter_system_set};
use super::value::validate;
use super::{Database, PostgresError, SettingChange};
use crate::journal::{Events, Silent};

#[derive(Debug, Clone)]
pub struct PgOptions {
    /// How long a reload may take to reach our session.
    pub reload_timeout: Duration,
    /// How long the restarter plus start-up may take before we restore the
    /// previous `postgresql.auto.conf`.
    pub restart_timeout: Duration,
    pub connect_timeout: Duration,
    /// The container's memory limit in bytes; restarts whose shared memory
    /// would not fit are refused.
    pub memory_limit_bytes: Option<u64>,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            reload_timeout: Duration::from_secs(10),
            restart_timeout: Duration::from_secs(180),
            connect_timeout: Duration::from_secs(5),
            memory_limit_bytes: None,
        }
    }
}

pub struct PgDatabase {
    config: Config,
    target: String,
    pub(super) restarter: Option<Arc<dyn Restarter>>,
    pub(super) options: PgOptions,
    /// Where a restart's wait is reported: it can take minutes.
    pub(super) events: Arc<dyn Events>,
}

/// Never prints the DSN: it holds the password.
impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase")
            .field("target", &self.target)
            .field("restarter", &self.restarter)
            .field("options", &self.options)
            .finish()
    }
}

pub(super) fn query_error(
    doing: impl Into<String>,
) -> impl FnOnce(tokio_postgres::Error) -> PostgresError {
    let doing = doing.into();
    move |source| PostgresError::Query { doing, source }
}

impl PgDatabase {
    /// `dsn` is a libpq-style URL or key=value string. Restart levers are
    /// refused when `restarter` is `None`.
    pub fn new(
        dsn: &str,
        restarter: Option<Arc<dyn Restarter>>,
        options: PgOptions,
    ) -> Result<PgDatabase, PostgresError> {
        let mut config: Config =
            dsn.parse()
                .map_err(|e: tokio_postgres::Error| PostgresError::InvalidDsn {
                    reason: e.to_string(),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let target = crate::config::dsn::describe(&config);
        Ok(PgDatabase {
            config,
            target,
            restarter,
            options,
            events: Arc::new(Silent),
        })
    }

    /// Reports the waits of restarts to `events` (by default nobody).
    pub fn with_events(mut self, events: Arc<dyn Events>) -> PgDatabase {
        self.events = events;
        self
    }

    /// The server, without credentials, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub(super) async fn connect(&self) -> Result<Client, PostgresError> {
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|source| PostgresError::Connect {
                    target: self.target.clone(),
                    source,
                })?;
        // The connection future drives the socket; it ends when `client` is
        // dropped or the server goes away (which a restart makes normal).
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("postgres connection closed: {e}");
            }
        });
        Ok(client)
    }

    /// Whether setting `name` back to `value` is what `ALTER SYSTEM RESET`
    /// gives: the value postgresql.conf (or the built-in default) provides.
    /// Rollbacks then RESET instead of SET, so `postgresql.auto.conf` ends up
    /// as it was before tuning, not with a pinned copy of the old value.
    pub async fn is_fallback_value(&self, name: &str, value: &str) -> Result<bool, PostgresError> {
        let client = self.connect().await?;
        let info = super::catalog::lookup(&client, name).await?;
        let wanted = super::value::validate(&info, value)?;
        // The server already runs on `value` and not because of
        // postgresql.auto.conf: removing the entry keeps exactly that. This is
        // a restart-only setting written but never restarted into (a crash
        // before the restart), including automatic values such as
        // wal_buffers = -1, which the files spell `-1` but SHOW as `1MB`.
        // Without a visible sourcefile the origin is unknown: not assumed.
        let live_not_from_auto_conf =
            info.source == "default" || (info.sourcefile.is_some() && !info.from_auto_conf());
        if live_not_from_auto_conf
            && super::value::validate(&info, &info.human_value())
                .is_ok_and(|live| live.normalized == wanted.normalized)
        {
            return Ok(true);
        }
        let query = |doing: &str| {
            let doing = doing.to_string();
            move |source| PostgresError::Query { doing, source }
        };
        let from_files = client
            .query_opt(
                "SELECT setting FROM pg_catalog.pg_file_settings \
                 WHERE lower(name) = lower($1) AND error IS NULL \
                 AND sourcefile NOT LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1",
                &[&info.name],
            )
            .await
            .map_err(query("reading pg_file_settings"))?
            .map(|row| row.get::<_, String>(0));
        let fallback = match from_files {
            Some(raw) => raw,
            None => client
                .query_one(
                    "SELECT coalesce(boot_val, '') FROM pg_catalog.pg_settings WHERE name = $1",
                    &[&info.name],
                )
                .await
                .map_err(query("reading boot_val"))?
                .get::<_, String>(0),
        };
        Ok(super::value::validate(&info, &fallback)
            .is_ok_and(|f| f.normalized == wanted.normalized))
    }

    /// The raw value `postgresql.auto.conf` holds for `name` (`None`: no
    /// entry), so a change can later put the file back as it was.
    pub async fn auto_conf_value(&self, name: &str) -> Result<Option<String>, PostgresError> {
        let client = self.connect().await?;
        let info = super::catalog::lookup(&client, name).await?;
        auto_conf_entry(&client, &info.name).await
    }

    /// Like [`Database::plan`], for `ALTER SYSTEM RESET`.
    pub async fn plan_reset(&self, name: &str) -> Result<Plan, PostgresError> {
        let client = self.connect().await?;
        self.build_reset_plan(&client, name).await
    }

    pub(super) async fn build_plan(
        &self,
        client: &Client,
        change: &SettingChange,
    ) -> Result<Plan, PostgresError> {
        let info = settable(client, &change.name).await?;
        let validated = validate(&info, &change.value)?;
        let mut warnings = Vec::new();
        if let Some(reason) = durability_risk(&info, &validated.normalized) {
            if !change.allow_unsafe {
                return Err(PostgresError::UnsafeValue {
                    name: info.name,
                    value: change.value.clone(),
                    reason,
                });
            }
            tracing::warn!(
                setting = %info.name,
                value = %validated.value,
                "UNSAFE: {reason}; applying anyway because allow_unsafe is set"
            );
            warnings.push(format!("UNSAFE, allowed by allow_unsafe: {reason}"));
        }
        if info.context.per_session() {
            warnings.push(format!(
                "{} ({}) only applies to sessions started after the reload",
                info.name, info.context
            ));
        }
        // A restart is needed only if the live value actually differs:
        // re-applying the running value is a harmless reload.
        let activation = if info.context == Context::Postmaster
            && !validated.normalized.matches(&info.setting)
        {
            Activation::Restart
        } else {
            Activation::Reload
        };
        let restarter = self
            .check_restart(client, &info, activation, Some(&validated))
            .await?;
        Ok(Plan {
            name: info.name.clone(),
            sql: alter_system_set(&info.name, &validated.literal),
            action: PlanAction::Set(validated),
            activation,
            context: info.context,
            current: info,
            restarter,
            warnings,
        })
    }

    pub(super) async fn build_reset_plan(
        &self,
        client: &Client,
        name: &str,
    ) -> Result<Plan, PostgresError> {
        let info = settable(client, name).await?;
        let in_auto_conf = auto_conf_entry(client, &info.name).await?.is_some();
        let activation =
            if info.context == Context::Postmaster && (in_auto_conf || info.pending_restart) {
                Activation::Restart
            } else {
                Activation::Reload
            };
        let restarter = self.check_restart(client, &info, activation, None).await?;
        Ok(Plan {
            name: info.name.clone(),
            sql: alter_system_reset(&info.name),
            action: PlanAction::Reset,
            activation,
            context: info.context,
            current: info,
            restarter,
            warnings: Vec::new(),
        })
    }
}

/// Looks a parameter up and refuses the ones that can never be set.
async fn settable(client: &Client, name: &str) -> Result<SettingInfo, PostgresError> {
    let info = catalog::lookup(client, name).await?;
    if info.context == Context::Internal {
        return Err(PostgresError::InternalParameter { name: info.name });
    }
    Ok(info)
}

/// The value `postgresql.auto.conf` holds for `name`, if any.
pub(super) async fn auto_conf_entry(
    client: &Client,
    name: &str,
) -> Result<Option<String>, PostgresError> {
    let rows = client
        .query(
            "SELECT setting FROM pg_catalog.pg_file_settings \
             WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1",
            &[&name],
        )
        .await
        .map_err(query_error(format!("reading {name} from postgresql.auto.conf")))?;
    Ok(rows
        .first()
        .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten()))
}

#[async_trait]
impl Database for PgDatabase {
    async fn current(&self, name: &str) -> Result<SettingInfo, PostgresError> {
        let client = self.connect().await?;
        catalog::lookup(&client, name).await
    }

    async fn plan(&self, change: &SettingChange) -> Result<Plan, PostgresError> {
        let client = self.connect().await?;
        self.build_plan(&client, change).await
    }

    async fn apply(&self, change: &SettingChange) -> Result<Applied, PostgresError> {
        let client = self.connect().await?;
        let plan = self.build_plan(&client, change).await?;
        self.execute(client, plan).await
    }

    async fn reset(&self, name: &str) -> Result<Applied, PostgresError> {
        let client = self.connect().await?;
        let plan = self.build_reset_plan(&client, name).await?;
        self.execute(client, plan).await
    }

    async fn non_default_settings(&self) -> Result<Vec<SettingInfo>, PostgresError> {
        let client = self.connect().await?;
        catalog::non_default(&client).await
    }

    async fn checkpoint(&self) -> Result<(), PostgresError> {
        let client = self.connect().await?;
        client
            .batch_execute("CHECKPOINT")
            .await
            .map_err(|source| PostgresError::Query {
                doing: "running CHECKPOINT (needs a superuser or the pg_checkpoint role)".into(),
                source,
            })
    }

    async fn transactions(&self) -> Result<u64, PostgresError> {
        let client = self.connect().await?;
        // Backends flush their counters to shared statistics at most once a
        // second (PG 15): a lag far below a sample interval.
        let row = client
            .query_one(
                "SELECT coalesce(sum(xact_commit + xact_rollback), 0)::bigint FROM pg_stat_database",
                &[],
            )
            .await
            .map_err(|source| PostgresError::Query {
                doing: "reading transaction counts from pg_stat_database".into(),
                source,
            })?;
        let n: i64 = row.get(0);
        Ok(n.max(0) as u64)
    }
}
