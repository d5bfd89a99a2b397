//! `notify:` in tuner.yaml: where tuner announces what it changed. Today
//! one target, Alertmanager (API v2), reached exactly as `prometheus:` is
//! (basic auth, bearer token, headers, TLS), so the team's existing routes
//! (Slack, email, webhooks) deliver tuner's news.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{de_duration, PrometheusConfig};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Alertmanager's base URL and credentials, keys as in `prometheus:`.
    #[serde(default)]
    pub alertmanager: Option<PrometheusConfig>,
    /// How long after it is posted a notice resolves (its `endsAt`).
    #[serde(default = "default_resolve_after", deserialize_with = "de_duration")]
    pub resolve_after: Duration,
    /// Labels added to every notice (e.g. `team: db`), for routing.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_resolve_after() -> Duration {
    Duration::from_secs(300)
}
