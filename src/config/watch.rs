//! The `watch:` section of tuner.yaml: which services `tuner watch` keeps
//! sized, where it reads their usage, and every number of its policy.
//! Defaults are seed 001's; the memory floor, the OOM rule and the 10%
//! minimum step come from Kubernetes VPA and krr.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::de_duration;
use super::units::{parse_bytes, parse_percent, Limit};

/// Where usage comes from, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The kernel's cgroup files (v1 or v2): microseconds per container.
    #[default]
    Cgroup,
    /// cAdvisor-style series in Prometheus: one query per metric for all services.
    Prometheus,
    /// The Docker stats API: about a second per container; the last resort.
    Docker,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Compose services (or container names) to keep sized. Empty: every
    /// running container of `compose.project`.
    pub services: Vec<String>,
    /// Services resized by a blue-green swap (the deploy code) instead of a
    /// live update.
    pub blue_green: Vec<String>,
    #[serde(deserialize_with = "de_duration")]
    pub interval: Duration,
    pub source: SourceKind,
    /// Where the cgroup hierarchy is mounted.
    pub cgroup_root: PathBuf,
    /// `/health` and `/metrics` while watching; a loopback address.
    pub listen: String,
    pub prometheus: PromQueries,
    /// Above this share of its limit for `checks` checks in a row: raise.
    #[serde(deserialize_with = "de_share")]
    pub high: f64,
    /// Below this share for `checks` checks in a row: lower.
    #[serde(deserialize_with = "de_share")]
    pub low: f64,
    pub checks: u32,
    #[serde(deserialize_with = "de_share")]
    pub raise_by: f64,
    #[serde(deserialize_with = "de_share")]
    pub lower_by: f64,
    #[serde(deserialize_with = "de_duration")]
    pub cooldown: Duration,
    /// Adjustments per service in any 24 hours.
    pub max_per_day: u32,
    pub cpu_min: f64,
    pub cpu_max: f64,
    #[serde(deserialize_with = "de_bytes")]
    pub memory_min: u64,
    #[serde(deserialize_with = "de_bytes")]
    pub memory_max: u64,
    /// Memory is never lowered below the observed peak plus this share.
    #[serde(deserialize_with = "de_share")]
    pub peak_margin: f64,
    /// An OOM kill raises memory at once by this share...
    #[serde(deserialize_with = "de_share")]
    pub oom_raise_by: f64,
    /// ...and at least this much.
    #[serde(deserialize_with = "de_bytes")]
    pub oom_raise_min: u64,
    /// How long after an OOM kill memory is never lowered.
    #[serde(deserialize_with = "de_duration")]
    pub oom_block: Duration,
    /// Changes smaller than this share of the current limit are skipped.
    #[serde(deserialize_with = "de_share")]
    pub min_change: f64,
}

/// PromQL for `source: prometheus`. Each runs once per check for all
/// services and returns one series per container, labelled with `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromQueries {
    /// CPU seconds used per second.
    pub cpu: String,
    /// Bytes in use minus inactive file cache.
    pub memory: String,
    /// CPU limit in cores.
    pub cpu_limit: String,
    pub memory_limit: String,
    /// OOM kills since the container started (a counter).
    pub oom: String,
    /// The label that holds the container's name.
    pub name_label: String,
}

impl Default for PromQueries {
    fn default() -> PromQueries {
        PromQueries {
            cpu: "rate(container_cpu_usage_seconds_total{name!=\"\"}[1m])".into(),
            memory: "container_memory_working_set_bytes{name!=\"\"}".into(),
            cpu_limit:
                "container_spec_cpu_quota{name!=\"\"} / container_spec_cpu_period{name!=\"\"}"
                    .into(),
            memory_limit: "container_spec_memory_limit_bytes{name!=\"\"}".into(),
            oom: "container_oom_events_total{name!=\"\"}".into(),
            name_label: "name".into(),
        }
    }
}

impl Default for WatchConfig {
    fn default() -> WatchConfig {
        WatchConfig {
            services: Vec::new(),
            blue_green: Vec::new(),
            interval: Duration::from_secs(300),
            source: SourceKind::Cgroup,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            listen: "127.0.0.1:9479".into(),
            prometheus: PromQueries::default(),
            high: 0.8,
            low: 0.3,
            checks: 3,
            raise_by: 0.25,
            lower_by: 0.25,
            cooldown: Duration::from_secs(30 * 60),
            max_per_day: 6,
            cpu_min: 0.1,
            cpu_max: 8.0,
            memory_min: 64 << 20,
            memory_max: 8192 << 20,
            peak_margin: 0.15,
            oom_raise_by: 0.2,
            oom_raise_min: 100 << 20,
            oom_block: Duration::from_secs(24 * 3600),
            min_change: 0.1,
        }
    }
}

impl WatchConfig {
    pub fn durations(&self) -> Vec<(&'static str, Duration, Limit)> {
        vec![
            ("interval", self.interval, Limit::Interval),
            ("cooldown", self.cooldown, Limit::Window),
            ("oom_block", self.oom_block, Limit::Window),
        ]
    }

    /// Problems as (key, message), for `config::load` to locate.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.low >= self.high {
            out.push((
                "low",
                format!(
                    "low ({:.0}%) must be below high ({:.0}%)",
                    self.low * 100.0,
                    self.high * 100.0
                ),
            ));
        }
        if self.checks == 0 {
            out.push(("checks", "must be at least 1".to_string()));
        }
        if self.lower_by >= 1.0 {
            out.push(("lower_by", "must be below 100%".to_string()));
        }
        if !(self.cpu_min > 0.0 && self.cpu_min <= self.cpu_max) {
            out.push((
                "cpu_min",
                format!(
                    "must be above 0 and at most cpu_max ({}), got {}",
                    self.cpu_max, self.cpu_min
                ),
            ));
        }
        if self.memory_min < 6 << 20 || self.memory_min > self.memory_max {
            out.push((
                "memory_min",
                "must be at least 6M (Docker's minimum) and at most memory_max".to_string(),
            ));
        }
        if self.interval.is_zero() {
            out.push(("interval", "must be longer than 0s".to_string()));
        }
        match self.listen.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => {}
            Ok(a) => out.push((
                "listen",
                format!(
                    "{a} is not a loopback address; use 127.0.0.1:PORT so only this host reads it"
                ),
            )),
            Err(e) => out.push((
                "listen",
                format!("{:?} is not an address: {e}", self.listen),
            )),
        }
        out
    }
}

/// A share written as a percent (`80%` or `80`), kept as a fraction.
fn de_share<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Number(f64),
    }
    let text = match Written::deserialize(d)? {
        Written::Text(s) => s,
        Written::Number(n) => n.to_string(),
    };
    let percent = parse_percent(&text).map_err(serde::de::Error::custom)?;
    if !(0.0..=1000.0).contains(&percent) {
        return Err(serde::de::Error::custom(format!(
            "{text} is out of range (0% to 1000%)"
        )));
    }
    Ok(percent / 100.0)
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    let bytes = parse_bytes(&s).map_err(serde::de::Error::custom)?;
    if bytes == 0 {
        return Err(serde::de::Error::custom(format!(
            "{s} is zero; give a size such as 64M"
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const BASE: &str = "prometheus:\n  url: http://127.0.0.1:9090\npostgres:\n  dsn: postgres://u@h/db\nprofile: t\nmetrics:\n  up:\n    query: up\n    unit: ratio\n    window: 30s\nprofiles:\n  t: {}\n";

    fn load(watch: &str) -> Result<super::WatchConfig, String> {
        let text = format!("{BASE}watch:\n{watch}");
        crate::config::load::from_str(Path::new("tuner.yaml"), &text)
            .map(|c| c.watch.unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_number_is_configurable_with_units() {
        let c = load("  high: 90%\n  low: 20\n  checks: 5\n  cooldown: 1h\n  memory_min: 32M\n  oom_raise_min: 1G\n  cpu_max: 4\n").unwrap();
        assert_eq!((c.high, c.low, c.checks), (0.9, 0.2, 5));
        assert_eq!(c.cooldown.as_secs(), 3600);
        assert_eq!((c.memory_min, c.oom_raise_min), (32 << 20, 1 << 30));
        assert_eq!(c.cpu_max, 4.0);
        assert_eq!(c.max_per_day, 6, "the rest keeps its default");
    }

    #[test]
    fn bad_values_name_their_line() {
        let e = load("  checks: 3\n  hihg: 80%\n").unwrap_err();
        assert!(e.contains("tuner.yaml:") && e.contains("hihg"), "{e}");
        let e = load("  memory_min: 0\n").unwrap_err();
        assert!(e.contains("tuner.yaml:") && e.contains("zero"), "{e}");
        let e = load("  memory_min: lots\n").unwrap_err();
        assert!(e.contains("tuner.yaml:"), "{e}");
        let e = load("  interval: 2h\n  low: 95%\n  listen: 10.0.0.1:80\n").unwrap_err();
        assert!(e.contains("tuner.yaml:14:3: watch.interval"), "{e}");
        assert!(e.contains("tuner.yaml:15:3: watch.low"), "{e}");
        assert!(
            e.contains("tuner.yaml:16:3: watch.listen") && e.contains("loopback"),
            "{e}"
        );
    }
}
