//! `tune:` in tuner.yaml: how long the closed loop waits and how often it
//! samples. Command-line flags override these.

use std::time::Duration;

use serde::Deserialize;

use super::de_duration;
use super::units::Limit;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TuneConfig {
    /// How long each change is watched before it is judged.
    #[serde(deserialize_with = "de_duration")]
    pub observe: Duration,
    /// How long to wait after a change before watching, so the first samples
    /// do not straddle the change (rate() windows, a restart's warm-up).
    #[serde(deserialize_with = "de_duration")]
    pub settle: Duration,
    /// Time between two samples of every SLA metric.
    #[serde(deserialize_with = "de_duration")]
    pub sample_interval: Duration,
    /// The argv that recreates a Compose service after an `env` lever edits
    /// its env file; `{service}` is replaced. Run without a shell in
    /// `compose.project_dir`. Unset: the Compose command (`compose.command`
    /// or the one found) with `up -d --no-deps {service}`.
    pub recreate: Option<Vec<String>>,
    /// Longest a `command` lever or the recreate argv may run.
    #[serde(deserialize_with = "de_duration")]
    pub command_timeout: Duration,
    /// How PostgreSQL is restarted for `postmaster` settings. Unset: restart
    /// levers are skipped with that reason.
    pub restarter: Option<RestarterConfig>,
    /// The share of a guard metric's headroom to its objective a change may
    /// use up before its worsening vetoes the change, as a fraction (`10%`
    /// in the file is 0.1).
    #[serde(deserialize_with = "de_margin")]
    pub guard_margin: f64,
    /// Levers that restart PostgreSQL may run without a question, even
    /// unattended (as `--yes` allows). Off: a terminal is asked once; an
    /// unattended run skips them.
    pub allow_restart: bool,
}

/// `tune.guard_margin` when the file does not set it; also the judge's default.
pub const DEFAULT_GUARD_MARGIN: f64 = 0.1;

fn de_margin<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let s = String::deserialize(d)?;
    let percent = super::units::parse_percent(&s).map_err(serde::de::Error::custom)?;
    if !(0.0..=100.0).contains(&percent) {
        return Err(serde::de::Error::custom(format!(
            "guard_margin must be between 0% and 100%, got {s}"
        )));
    }
    Ok(percent / 100.0)
}

/// Exactly one of `container` (restarted through the Docker API with its own
/// stop signal) or `argv` (run without a shell; `data_dir` lets a failed
/// start's `postgresql.auto.conf` be restored).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestarterConfig {
    /// A Compose service of `compose.project`, or a container name.
    pub container: Option<String>,
    pub argv: Option<Vec<String>>,
    pub data_dir: Option<std::path::PathBuf>,
    #[serde(default = "default_restart_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

fn default_restart_timeout() -> Duration {
    Duration::from_secs(180)
}

impl TuneConfig {
    /// Every duration of the section with its key and its limit, for
    /// `config::load` to check.
    pub fn durations(&self) -> Vec<(&'static str, Duration, Limit)> {
        let mut out = vec![
            ("observe", self.observe, Limit::Window),
            ("settle", self.settle, Limit::Window),
            ("sample_interval", self.sample_interval, Limit::Interval),
            ("command_timeout", self.command_timeout, Limit::Timeout),
        ];
        if let Some(r) = &self.restarter {
            out.push(("restarter.timeout", r.timeout, Limit::Timeout));
        }
        out
    }
}

impl Default for TuneConfig {
    fn default() -> TuneConfig {
        TuneConfig {
            observe: Duration::from_secs(15 * 60),
            settle: Duration::from_secs(60),
            sample_interval: Duration::from_secs(15),
            recreate: None,
            command_timeout: Duration::from_secs(300),
            restarter: None,
            guard_margin: DEFAULT_GUARD_MARGIN,
            allow_restart: false,
        }
    }
}
