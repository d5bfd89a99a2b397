//! The two files `tuner alerts` writes, as data: a Prometheus rule file and
//! a `promtool test rules` file. Field order is the order people read.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct RuleFile {
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Rule {
    Record(Record),
    Alert(Alert),
}

#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub record: String,
    pub expr: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestFile {
    pub rule_files: Vec<String>,
    pub evaluation_interval: String,
    pub tests: Vec<UnitTest>,
}

/// One scenario: input series, then the alerts expected at given times.
#[derive(Debug, Clone, Serialize)]
pub struct UnitTest {
    pub name: String,
    pub interval: String,
    pub input_series: Vec<Series>,
    pub alert_rule_test: Vec<AlertCase>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub series: String,
    pub values: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertCase {
    pub eval_time: String,
    pub alertname: String,
    pub exp_alerts: Vec<Expected>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Expected {
    pub exp_labels: BTreeMap<String, String>,
    pub exp_annotations: BTreeMap<String, String>,
}

impl Expected {
    /// What promtool must see of `alert` firing: its own labels plus the
    /// series labels its expression keeps.
    pub fn of(alert: &Alert, series_labels: &[(String, String)]) -> Expected {
        let mut exp_labels = alert.labels.clone();
        for (k, v) in series_labels {
            exp_labels.insert(k.clone(), v.clone());
        }
        Expected {
            exp_labels,
            exp_annotations: alert.annotations.clone(),
        }
    }
}

/// `1h`, `5m`, `90s`: the Prometheus spelling of a whole-second duration.
pub fn prom_duration(d: std::time::Duration) -> String {
    crate::config::units::format_duration(d)
}

/// `p95_write_latency` -> `P95WriteLatency`.
pub fn camel(name: &str) -> String {
    name.split(['_', '-', '.'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}
