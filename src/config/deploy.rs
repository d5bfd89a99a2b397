//! The `deploy:` section of tuner.yaml: which services are stateful, how
//! traffic is switched, where deploy metrics go.

use std::path::PathBuf;

use serde::Deserialize;

pub use super::analysis::{AnalysisConfig, CheckConfig};
pub use super::haproxy::HaproxyConfig;

/// Services a blue-green swap refuses by default: two copies of a database,
/// cache or socket proxy at once risk data loss or a split brain.
pub const DEFAULT_STATEFUL: [&str; 6] = [
    "postgres",
    "postgres-exporter",
    "redis",
    "redis-exporter",
    "redis-commander",
    "socket-proxy",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployConfig {
    /// Services refused by blue-green (replaces the default list).
    pub stateful: Vec<String>,
    /// Services that are safe to clone even though they mount a named volume.
    pub stateless: Vec<String>,
    pub router: RouterConfig,
    /// node_exporter textfile-collector directory for deploy metrics.
    pub metrics_textfile_dir: Option<PathBuf>,
    /// Promotion gate: SLO checks the new version must pass.
    pub analysis: Option<AnalysisConfig>,
}

impl Default for DeployConfig {
    fn default() -> DeployConfig {
        DeployConfig {
            stateful: DEFAULT_STATEFUL.iter().map(|s| s.to_string()).collect(),
            stateless: Vec::new(),
            router: RouterConfig::default(),
            metrics_textfile_dir: None,
            analysis: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterKind {
    #[default]
    None,
    Haproxy,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    pub kind: RouterKind,
    /// Name of the service's current (blue) server in the router, when it
    /// is not the service name. Later deploys read it from green's
    /// `tuner.router.server` label.
    pub server: Option<String>,
    /// The HAProxy router's own section (socket, backend, checks); required
    /// when `kind: haproxy`. Typed here so a wrong key or unit is reported
    /// at its line in tuner.yaml.
    pub haproxy: Option<HaproxyConfig>,
}
