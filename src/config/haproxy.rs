//! The `deploy.router.haproxy` section: HAProxy's admin socket, the
//! backend, and green's health checks. Typed here so a wrong key or unit is
//! reported at its line in tuner.yaml; `deploy::router::haproxy` drives it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::de_duration;
use super::units::Limit;

/// HAProxy's health-check parameters for the green server, passed on
/// `add server`. Defaults: `inter 500ms fastinter 100ms downinter 100ms
/// rise 1 fall 2`. A new server starts in a transitional state, so its first
/// check comes after `fastinter`; green is often not listening yet then,
/// and the next check comes after `downinter`, hence as short.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckParams {
    #[serde(deserialize_with = "de_duration")]
    pub inter: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub fastinter: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub downinter: Duration,
    pub rise: u32,
    pub fall: u32,
}

impl Default for CheckParams {
    fn default() -> CheckParams {
        CheckParams {
            inter: Duration::from_millis(500),
            fastinter: Duration::from_millis(100),
            downinter: Duration::from_millis(100),
            rise: 1,
            fall: 2,
        }
    }
}

impl CheckParams {
    /// `check inter 500ms fastinter 100ms downinter 100ms rise 1 fall 2`.
    pub fn to_args(&self) -> String {
        format!(
            "check inter {}ms fastinter {}ms downinter {}ms rise {} fall {}",
            self.inter.as_millis(),
            self.fastinter.as_millis(),
            self.downinter.as_millis(),
            self.rise,
            self.fall
        )
    }
}

/// The `router: haproxy` section of the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxyConfig {
    /// HAProxy's admin socket (`stats socket <path> level admin`).
    pub socket: PathBuf,
    /// The backend holding the service's servers.
    pub backend: String,
    /// Health checks for green.
    #[serde(default)]
    pub check: CheckParams,
    /// Green's weight once promoted (1-256, absolute).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Time between two reads of `show stat` while waiting.
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
    /// Extra wait once a drained server has no session left: a request can
    /// be between HAProxy's accounting and the server.
    #[serde(default = "default_grace", deserialize_with = "de_duration")]
    pub drain_grace: Duration,
    /// Bound on each exchange with the admin socket.
    #[serde(default = "default_command_timeout", deserialize_with = "de_duration")]
    pub command_timeout: Duration,
    /// How long `retire` and `remove` wait for HAProxy to let go of a
    /// server's last connections before giving up.
    #[serde(default = "default_retire_timeout", deserialize_with = "de_duration")]
    pub retire_timeout: Duration,
    /// HAProxy's `server-state-file`, as tuner reaches it: rewritten from
    /// `show servers state` after every swap, so a reload
    /// (`load-server-state-from-file`) keeps the new container.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
}

fn default_weight() -> u32 {
    1
}
/// A drain ends one poll after blue's last session: 50 ms between reads
/// of `show stat` keeps that small while costing HAProxy little.
fn default_poll() -> Duration {
    Duration::from_millis(50)
}
/// One more poll: two readings of no session in a row, so a request
/// HAProxy had just dispatched when drain began is seen.
fn default_grace() -> Duration {
    Duration::from_millis(50)
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_retire_timeout() -> Duration {
    Duration::from_secs(10)
}

impl HaproxyConfig {
    /// A config with every default but the socket and the backend.
    pub fn new(socket: impl Into<PathBuf>, backend: impl Into<String>) -> HaproxyConfig {
        HaproxyConfig {
            socket: socket.into(),
            backend: backend.into(),
            check: CheckParams::default(),
            weight: default_weight(),
            poll_interval: default_poll(),
            drain_grace: default_grace(),
            command_timeout: default_command_timeout(),
            retire_timeout: default_retire_timeout(),
            state_file: None,
        }
    }

    /// Every duration of the section with its key and its limit.
    pub fn durations(&self) -> [(&'static str, Duration, Limit); 7] {
        [
            ("check.inter", self.check.inter, Limit::Interval),
            ("check.fastinter", self.check.fastinter, Limit::Interval),
            ("check.downinter", self.check.downinter, Limit::Interval),
            ("poll_interval", self.poll_interval, Limit::Interval),
            ("drain_grace", self.drain_grace, Limit::Timeout),
            ("command_timeout", self.command_timeout, Limit::Timeout),
            ("retire_timeout", self.retire_timeout, Limit::Timeout),
        ]
    }

    /// Every problem with the config, each naming its key and the fix.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for (key, d, limit) in self.durations() {
            if let Err(e) = limit.check(key, d) {
                problems.push(e);
            }
        }
        if let Err(e) = check_name("backend", &self.backend) {
            problems.push(e);
        }
        if !(1..=256).contains(&self.weight) {
            problems.push(format!(
                "weight: {} is out of range; HAProxy takes an absolute weight of 1-256 (0 would send green nothing)",
                self.weight
            ));
        }
        for (key, d) in [
            ("check.inter", self.check.inter),
            ("check.fastinter", self.check.fastinter),
            ("check.downinter", self.check.downinter),
            ("poll_interval", self.poll_interval),
            ("command_timeout", self.command_timeout),
        ] {
            if d < Duration::from_millis(1) {
                problems.push(format!("{key}: must be at least 1ms, e.g. `500ms`"));
            }
        }
        if self.check.rise == 0 || self.check.fall == 0 {
            problems.push("check.rise and check.fall: must be at least 1".to_string());
        }
        if self.socket.as_os_str().is_empty() {
            problems.push(
                "socket: empty; give the path of HAProxy's `stats socket ... level admin`"
                    .to_string(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// HAProxy identifiers: letters, digits, `-_.:`. Anything else could split
/// or extend a runtime API command.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} is not a valid HAProxy name; use letters, digits, `-`, `_`, `.`, `:`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml;

    #[test]
    fn check_params_are_explicit() {
        assert_eq!(
            CheckParams::default().to_args(),
            "check inter 500ms fastinter 100ms downinter 100ms rise 1 fall 2"
        );
    }

    #[test]
    fn config_reads_units_and_defaults() {
        let yaml = "socket: /run/haproxy/admin.sock\nbackend: web\ncheck:\n  inter: 1s\n  rise: 2\nweight: 10\ndrain_grace: 150ms\n";
        let c: HaproxyConfig = yaml::from_str(yaml).unwrap();
        assert_eq!(c.socket, PathBuf::from("/run/haproxy/admin.sock"));
        assert_eq!(c.check.inter, Duration::from_secs(1));
        assert_eq!(c.check.rise, 2);
        assert_eq!(c.check.fall, 2);
        assert_eq!(c.check.fastinter, Duration::from_millis(100));
        assert_eq!(c.weight, 10);
        assert_eq!(c.drain_grace, Duration::from_millis(150));
        assert_eq!(c.command_timeout, Duration::from_secs(2));
        assert_eq!(c.state_file, None);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn config_refuses_unknown_keys_and_bare_numbers() {
        let err =
            yaml::from_str::<HaproxyConfig>("socket: /s\nbackend: b\nweigth: 3\n").unwrap_err();
        assert!(err.to_string().contains("weigth"), "{err}");
        let err = yaml::from_str::<HaproxyConfig>("socket: /s\nbackend: b\ncheck:\n  inter: 500\n")
            .unwrap_err();
        assert!(err.to_string().contains("unit"), "{err}");
    }
}
