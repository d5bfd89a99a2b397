//! Typed configuration: loading, validation with file:line:col errors, units.

pub mod analysis;
pub mod deploy;
pub mod dsn;
pub mod envfile;
pub mod haproxy;
pub mod interpolate;
pub mod load;
pub mod notify;
pub mod objective;
pub mod prometheus;
pub mod tune;
pub mod units;
pub mod watch;
pub mod yaml;

pub use dsn::redact_dsn;
pub use load::{load, load_for_deploy, ConfigError};
pub use objective::{Comparison, Objective, Threshold};
pub use prometheus::{PrometheusConfig, Secret};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use units::MetricUnit;

/// The whole of `tuner.yaml`, paths already resolved against its folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    // The SLA sections default only so `tuner deploy` can read a config
    // without them (`load_for_deploy`); `load` still requires each one.
    #[serde(default)]
    pub prometheus: PrometheusConfig,
    #[serde(default)]
    pub postgres: PostgresConfig,
    #[serde(default)]
    pub docker: DockerConfig,
    #[serde(default)]
    pub compose: Option<ComposeConfig>,
    /// The active environment profile; must name one of `profiles`.
    #[serde(default)]
    pub profile: String,
    #[serde(default)]
    pub paths: Paths,
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricDef>,
    /// SLA objectives per profile: metric name -> objective.
    #[serde(default)]
    pub profiles: BTreeMap<String, BTreeMap<String, Objective>>,
    /// Closed-loop tuning windows; defaults when absent.
    #[serde(default)]
    pub tune: Option<tune::TuneConfig>,
    /// Blue-green deploy settings; defaults when absent.
    #[serde(default)]
    pub deploy: Option<deploy::DeployConfig>,
    /// `tuner watch`: services kept sized to their use; defaults when absent.
    #[serde(default)]
    pub watch: Option<watch::WatchConfig>,
    /// node_exporter's textfile-collector folder: what tuner did and what it
    /// read, as Prometheus text (`tuner_*.prom`), for every command. Deploy
    /// metrics go there too unless `deploy.metrics_textfile_dir` says
    /// otherwise.
    #[serde(default)]
    pub metrics_textfile_dir: Option<PathBuf>,
    /// Where tuner announces its changes (Alertmanager); nothing when absent.
    #[serde(default)]
    pub notify: Option<notify::NotifyConfig>,
    /// Where the file was read from (set by `load`).
    #[serde(skip)]
    pub source: PathBuf,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// libpq-style DSN or URL. `TUNER_PG_DSN` overrides it. Never printed.
    pub dsn: String,
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect_timeout", deserialize_with = "de_duration")]
    pub connect_timeout: Duration,
}

impl Default for PostgresConfig {
    fn default() -> PostgresConfig {
        PostgresConfig {
            dsn: String::new(),
            connect_timeout: default_connect_timeout(),
        }
    }
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("dsn", &redact_dsn(&self.dsn))
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// `unix:///var/run/docker.sock` or `tcp://…`; `DOCKER_HOST` overrides.
    #[serde(default)]
    pub host: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeConfig {
    /// The folder holding the Compose file (`compose.yaml`, `docker-compose.yml`, …)
    /// and the override file tuner writes.
    pub project_dir: PathBuf,
    /// The Compose project name (`COMPOSE_PROJECT_NAME`).
    pub project: String,
    /// The env file the `env` levers edit.
    #[serde(default)]
    pub env_file: Option<PathBuf>,
    /// The argv that runs Compose (`[docker, compose]`, `[docker-compose]`,
    /// `[podman, compose]`). Unset: `docker compose` when the plugin answers,
    /// else `docker-compose`.
    #[serde(default, deserialize_with = "de_command")]
    pub command: Option<Vec<String>>,
}

fn de_command<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let argv = Vec::<String>::deserialize(d)?;
    if argv.first().is_none_or(|p| p.trim().is_empty()) {
        return Err(serde::de::Error::custom(
            "command must name a program, e.g. [docker, compose] or [docker-compose]; leave it out to detect Compose",
        ));
    }
    Ok(Some(argv))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub baseline: PathBuf,
    pub changelog: PathBuf,
    pub tuning_log: PathBuf,
    pub state_dir: PathBuf,
    pub backups_dir: PathBuf,
    pub levers: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            baseline: "baseline.yaml".into(),
            changelog: "CHANGELOG_TUNING.md".into(),
            tuning_log: "tuning.log".into(),
            state_dir: ".tuner".into(),
            backups_dir: "backups".into(),
            levers: "levers.yaml".into(),
        }
    }
}

/// What a rate metric is judged per (`per: transaction`): a rate that scales
/// with the work done, such as WAL bytes/s, falls whenever less work is done,
/// so the judge divides it by the database's throughput before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Transaction,
}

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    LowerIsBetter,
    HigherIsBetter,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    /// PromQL; should aggregate to one series (the worst is used otherwise).
    pub query: String,
    pub unit: MetricUnit,
    #[serde(default)]
    pub direction: Direction,
    /// How far back `baseline` averages.
    #[serde(deserialize_with = "de_duration")]
    pub window: Duration,
    /// What a violation of this metric's objective means, for lever choice.
    #[serde(default)]
    pub symptom: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Judge the metric per unit of work (a per-second rate only).
    #[serde(default)]
    pub per: Option<Per>,
}

impl Config {
    /// The objectives of the active profile (validated to exist at load).
    pub fn objectives(&self) -> &BTreeMap<String, Objective> {
        static EMPTY: BTreeMap<String, Objective> = BTreeMap::new();
        self.profiles.get(&self.profile).unwrap_or(&EMPTY)
    }

    /// Where tuner's own metrics go: `metrics_textfile_dir`, else the
    /// deploy metrics' folder, so one collector folder serves both.
    pub fn textfile_dir(&self) -> Option<PathBuf> {
        self.metrics_textfile_dir.clone().or_else(|| {
            let dir = self.deploy.as_ref()?.metrics_textfile_dir.as_ref()?;
            Some(if dir.is_relative() {
                self.base_dir().join(dir)
            } else {
                dir.clone()
            })
        })
    }

    /// The folder relative paths in the file resolve against.
    pub fn base_dir(&self) -> PathBuf {
        match self.source.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// A duration as written in the file; `load` checks its [`units::Limit`]
/// afterwards, where it can name the key.
pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    units::parse_duration_unbounded(&s).map_err(serde::de::Error::custom)
}
