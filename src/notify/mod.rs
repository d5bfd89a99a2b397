//! Announcing what tuner did through Alertmanager's API v2 (`POST
//! /api/v2/alerts`): every judged tuning change, every deploy and deploy
//! rollback becomes a short-lived alert (it resolves after
//! `notify.resolve_after`), labelled for routing and annotated with the
//! verdict, the numbers and the reason, so the team's existing routes
//! deliver it.
//!
//! A systems module: it knows HTTP and Alertmanager, not tuning or deploys.
//! The commands turn their reports into [`Notice`]s. Posting never fails a
//! run: the caller gets an error to print as a warning.

mod queue;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::metrics::http::{self, Auth};

pub use queue::Queue;

/// One thing worth announcing.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// `TunerChange`, `TunerDeploy`: the `alertname` routes match on.
    pub name: String,
    /// Routing labels: `event`, `verdict`, `service`, `lever`, ...
    pub labels: BTreeMap<String, String>,
    /// `summary`, `reason` and the numbers, for humans.
    pub annotations: BTreeMap<String, String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot set up the Alertmanager client for {url}: {problem}")]
    Setup { url: String, problem: String },
    #[error("cannot post {count} notice(s) to Alertmanager at {url}: {problem}")]
    Post {
        url: String,
        count: usize,
        problem: String,
    },
}

/// The wire form of one alert in API v2.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: BTreeMap<&'a str, &'a str>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

pub struct Notifier {
    client: reqwest::Client,
    auth: Auth,
    url: String,
    resolve_after: Duration,
    labels: BTreeMap<String, String>,
}

impl Notifier {
    /// The notifier `notify.alertmanager` describes; `None` when it is not
    /// configured.
    pub fn from_config(config: &Config) -> Result<Option<Notifier>, NotifyError> {
        let Some(notify) = &config.notify else {
            return Ok(None);
        };
        let Some(am) = &notify.alertmanager else {
            return Ok(None);
        };
        let setup = |e: crate::metrics::MetricsError| NotifyError::Setup {
            url: am.url.clone(),
            problem: e.to_string(),
        };
        Ok(Some(Notifier {
            client: http::client(am).map_err(setup)?,
            auth: http::auth(am).map_err(setup)?,
            url: format!("{}/api/v2/alerts", am.url.trim_end_matches('/')),
            resolve_after: notify.resolve_after,
            labels: notify.labels.clone(),
        }))
    }

    /// The request body for `notices`: each firing from its time until
    /// `resolve_after` later.
    fn body<'a>(&'a self, notices: &'a [Notice]) -> Vec<PostableAlert<'a>> {
        let resolve = chrono::Duration::from_std(self.resolve_after)
            .unwrap_or_else(|_| chrono::Duration::minutes(5));
        notices
            .iter()
            .map(|n| {
                let mut labels: BTreeMap<&str, &str> = self
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                labels.extend(n.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                labels.insert("alertname", &n.name);
                labels.insert("source", "tuner");
                PostableAlert {
                    labels,
                    annotations: &n.annotations,
                    starts_at: n.at,
                    ends_at: n.at + resolve,
                }
            })
            .collect()
    }

    pub async fn post(&self, notices: &[Notice]) -> Result<(), NotifyError> {
        if notices.is_empty() {
            return Ok(());
        }
        let failed = |problem: String| NotifyError::Post {
            url: self.url.clone(),
            count: notices.len(),
            problem,
        };
        let request = self
            .auth
            .apply(self.client.post(&self.url))
            .json(&self.body(notices));
        let response = request.send().await.map_err(|e| {
            failed(if e.is_timeout() {
                "timed out".into()
            } else if e.is_connect() {
                "connection refused or unreachable".into()
            } else {
                e.without_url().to_string()
            })
        })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            return Err(failed(format!("HTTP {status}: {}", text.trim())));
        }
        Ok(())
    }
}

/// Posts `notices` if `notify.alertmanager` is configured; any failure is a
/// warning on stderr, never the run's failure.
pub async fn announce(config: &Config, notices: &[Notice]) {
    if notices.is_empty() {
        return;
    }
    let result = match Notifier::from_config(config) {
        Ok(Some(n)) => n.post(notices).await,
        Ok(None) => return,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("warning: {e}; the run's result stands");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_resolve_after_the_configured_time_and_keep_tuner_labels() {
        let notifier = Notifier {
            client: reqwest::Client::new(),
            auth: Auth::None,
            url: "http://127.0.0.1:9/api/v2/alerts".into(),
            resolve_after: Duration::from_secs(120),
            labels: BTreeMap::from([("team".into(), "db".into()), ("source".into(), "x".into())]),
        };
        let at = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let notice = Notice {
            name: "TunerChange".into(),
            labels: BTreeMap::from([("verdict".into(), "improved".into())]),
            annotations: BTreeMap::from([("reason".into(), "WAL down 30%".into())]),
            at,
        };
        let json = serde_json::to_value(notifier.body(std::slice::from_ref(&notice))).unwrap();
        assert_eq!(json[0]["labels"]["alertname"], "TunerChange");
        assert_eq!(
            json[0]["labels"]["source"], "tuner",
            "tuner's own label wins"
        );
        assert_eq!(json[0]["labels"]["team"], "db");
        assert_eq!(json[0]["startsAt"], "2026-12-07T10:00:00Z");
        assert_eq!(json[0]["endsAt"], "2026-12-07T10:02:00Z");
        assert_eq!(json[0]["annotations"]["reason"], "WAL down 30%");
    }
}
