//! Prometheus HTTP API v1 client: instant and range queries, targets, alerts.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

use super::http::{self, Auth};
use super::{Metrics, MetricsError, Point};
use crate::config::PrometheusConfig;

#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    auth: Auth,
}

/// A scrape target as `/api/v1/targets` reports it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub scrape_url: String,
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub last_error: String,
}

impl Target {
    pub fn job(&self) -> &str {
        self.labels.get("job").map(String::as_str).unwrap_or("?")
    }
}

/// An alert as `/api/v1/alerts` reports it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub active_at: Option<DateTime<Utc>>,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("?")
    }
    pub fn firing(&self) -> bool {
        self.state == "firing"
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "camelCase")]
enum QueryData {
    Vector(Vec<VectorSample>),
    Matrix(Vec<MatrixSeries>),
    Scalar((f64, String)),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// The error for a query that answers with several series, naming the
/// first few by their labels so the user sees what to aggregate over.
fn several_series<'a>(
    metric: &str,
    query: &str,
    series: impl ExactSizeIterator<Item = &'a BTreeMap<String, String>>,
) -> MetricsError {
    let count = series.len();
    let mut shown: Vec<String> = series
        .take(2)
        .map(|labels| {
            let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!("{{{}}}", inner.join(", "))
        })
        .collect();
    if count > 2 {
        shown.push("...".into());
    }
    MetricsError::SeveralSeries {
        metric: metric.into(),
        query: query.into(),
        count,
        labels: shown.join(", "),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetsData {
    active_targets: Vec<Target>,
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<Alert>,
}

/// Prometheus encodes values as strings, including "NaN" and "+Inf".
fn finite(raw: &str) -> Option<f64> {
    raw.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn timestamp(secs: f64) -> DateTime<Utc> {
    let millis = (secs * 1000.0).round() as i64;
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or_else(Utc::now)
}

impl PrometheusClient {
    /// A client without credentials or TLS options.
    pub fn new(url: &str, timeout: Duration) -> Result<PrometheusClient, MetricsError> {
        PrometheusClient::from_config(&PrometheusConfig {
            url: url.to_string(),
            timeout,
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            headers: Default::default(),
            tls_config: Default::default(),
        })
    }

    /// A client as `prometheus:` in tuner.yaml describes it: credentials
    /// (files read now), extra headers, TLS roots and client certificate.
    pub fn from_config(config: &PrometheusConfig) -> Result<PrometheusClient, MetricsError> {
        Ok(PrometheusClient {
            http: http::client(config)?,
            base: config.url.trim_end_matches('/').to_string(),
            timeout: config.timeout,
            auth: http::auth(config)?,
        })
    }

    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        self.auth
            .apply(self.http.get(format!("{}{path}", self.base)))
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    fn transport_error(&self, e: reqwest::Error) -> MetricsError {
        if e.is_timeout() {
            MetricsError::Timeout {
                url: self.base.clone(),
                timeout: self.timeout,
            }
        } else {
            // reqwest's outer messages repeat the URL; the innermost cause
            // ("Connection refused") is what the operator needs.
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                reason = s.to_string();
                source = s.source();
            }
            if reason.contains("certificate") || reason.contains("UnknownIssuer") {
                reason.push_str(
                    "; if an internal CA signed Prometheus' certificate, set prometheus.tls_config.ca_file to it",
                );
            }
            MetricsError::Unreachable {
                url: self.base.clone(),
                reason,
            }
        }
    }

    /// GETs an API path and unwraps the `{status, data}` envelope. `metric`
    /// and `query` only label errors.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        metric: &str,
        query: &str,
    ) -> Result<T, MetricsError> {
        let response = self
            .request(path)
            .query(params)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.transport_error(e))?;
        let envelope: Envelope<T> = match serde_json::from_str(&body) {
            Ok(e) => e,
            Err(e) if status.is_success() => {
                return Err(MetricsError::Decode {
                    metric: metric.into(),
                    query: query.into(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                let body: String = body.chars().take(300).collect();
                return Err(MetricsError::Http {
                    url: self.base.clone(),
                    metric: metric.into(),
                    query: query.into(),
                    status: status.as_u16(),
                    body,
                });
            }
        };
        if envelope.status != "success" {
            return Err(MetricsError::Query {
                metric: metric.into(),
                query: query.into(),
                error_type: envelope.error_type.unwrap_or_else(|| "error".into()),
                message: envelope.error.unwrap_or_default(),
            });
        }
        envelope.data.ok_or_else(|| MetricsError::Decode {
            metric: metric.into(),
            query: query.into(),
            reason: "success without data".into(),
        })
    }

    pub async fn targets(&self) -> Result<Vec<Target>, MetricsError> {
        let data: TargetsData = self
            .get(
                "/api/v1/targets",
                &[("state", "active".into())],
                "targets",
                "",
            )
            .await?;
        Ok(data.active_targets)
    }

    /// `/-/ready`: Prometheus answers, has loaded its TSDB and config.
    pub async fn ready(&self) -> Result<(), MetricsError> {
        let response = self
            .request("/-/ready")
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(MetricsError::Unreachable {
                url: self.base.clone(),
                reason: format!(
                    "/-/ready answered HTTP {}{}",
                    response.status(),
                    super::http_hint(response.status().as_u16())
                ),
            })
        }
    }
}

impl PrometheusClient {
    /// Every series of an instant query with its labels, for a query meant
    /// to answer for many containers at once (`tuner watch`). Non-finite
    /// values are left out.
    pub async fn vector(
        &self,
        metric: &str,
        query: &str,
    ) -> Result<Vec<(BTreeMap<String, String>, f64)>, MetricsError> {
        let data: QueryData = self
            .get(
                "/api/v1/query",
                &[("query", query.to_string())],
                metric,
                query,
            )
            .await?;
        match data {
            QueryData::Vector(samples) => Ok(samples
                .into_iter()
                .filter_map(|s| finite(&s.value.1).map(|v| (s.metric, v)))
                .collect()),
            _ => Err(MetricsError::Decode {
                metric: metric.into(),
                query: query.into(),
                reason: "expected an instant vector with one series per container".into(),
            }),
        }
    }
}

#[async_trait]
impl Metrics for PrometheusClient {
    async fn instant(&self, metric: &str, query: &str) -> Result<Option<f64>, MetricsError> {
        let data: QueryData = self
            .get(
                "/api/v1/query",
                &[("query", query.to_string())],
                metric,
                query,
            )
            .await?;
        let values: Vec<f64> = match data {
            QueryData::Vector(samples) => {
                if samples.len() > 1 {
                    return Err(several_series(
                        metric,
                        query,
                        samples.iter().map(|s| &s.metric),
                    ));
                }
                samples.iter().filter_map(|s| finite(&s.value.1)).collect()
            }
            QueryData::Scalar((_, v)) => finite(&v).into_iter().collect(),
            QueryData::Matrix(_) | QueryData::String(_) => {
                return Err(MetricsError::Decode {
                    metric: metric.into(),
                    query: query.into(),
                    reason: "expected an instant vector or scalar; drop the range selector `[..]` at the end".into(),
                })
            }
        };
        Ok(values.into_iter().next())
    }

    async fn range(
        &self,
        metric: &str,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Point>, MetricsError> {
        let step_secs = step.as_secs_f64().max(0.001);
        let params = [
            ("query", query.to_string()),
            (
                "start",
                format!("{:.3}", start.timestamp_millis() as f64 / 1000.0),
            ),
            (
                "end",
                format!("{:.3}", end.timestamp_millis() as f64 / 1000.0),
            ),
            ("step", format!("{step_secs}")),
        ];
        let data: QueryData = self
            .get("/api/v1/query_range", &params, metric, query)
            .await?;
        let series = match data {
            QueryData::Matrix(series) => series,
            _ => {
                return Err(MetricsError::Decode {
                    metric: metric.into(),
                    query: query.into(),
                    reason: "expected a matrix".into(),
                })
            }
        };
        // Reducing several series to one (the max, say) would flatter a
        // higher-is-better metric and hide which series moved: refuse it.
        if series.len() > 1 {
            return Err(several_series(
                metric,
                query,
                series.iter().map(|s| &s.metric),
            ));
        }
        let mut merged: BTreeMap<i64, f64> = BTreeMap::new();
        for s in series {
            for (t, raw) in s.values {
                if let Some(v) = finite(&raw) {
                    let key = (t * 1000.0).round() as i64;
                    merged
                        .entry(key)
                        .and_modify(|old| *old = old.max(v))
                        .or_insert(v);
                }
            }
        }
        Ok(merged
            .into_iter()
            .map(|(ms, value)| Point {
                at: timestamp(ms as f64 / 1000.0),
                value,
            })
            .collect())
    }

    async fn alerts(&self) -> Result<Vec<Alert>, MetricsError> {
        let data: AlertsData = self.get("/api/v1/alerts", &[], "alerts", "").await?;
        Ok(data.alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_inf_are_no_data() {
        assert_eq!(finite("NaN"), None);
        assert_eq!(finite("+Inf"), None);
        assert_eq!(finite("-Inf"), None);
        assert_eq!(finite("1.5"), Some(1.5));
    }

    #[test]
    fn decodes_vector_and_error_envelopes() {
        let ok: Envelope<QueryData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.0,"2.5"]}]}}"#,
        )
        .unwrap();
        assert!(matches!(ok.data, Some(QueryData::Vector(ref v)) if v.len() == 1));
        let err: Envelope<QueryData> = serde_json::from_str(
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#,
        )
        .unwrap();
        assert_eq!(err.error_type.as_deref(), Some("bad_data"));
    }
}
