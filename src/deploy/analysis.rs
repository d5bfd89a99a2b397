//! The promotion gate: once the new containers or tasks are healthy, each
//! SLO check of `deploy.analysis` is measured `count` times, `interval`
//! apart, through the Prometheus client. As in Argo Rollouts' analysis, a
//! check fails after more than `failure_limit` failed measurements, or
//! more than `error_limit` consecutive ones without a value. Fail closed:
//! no data and an unreachable Prometheus are errors, never passes, and a
//! gate that fails means the new version is rolled back. Every measured
//! value is printed (an event) and journaled.

use std::time::Duration;

use serde::Serialize;

use super::record::ServiceJournal;
use super::DeployError;
use crate::config::deploy::{AnalysisConfig, CheckConfig};
use crate::journal::Events;
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// No value: no data, or Prometheus did not answer.
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub check: String,
    pub value: Option<f64>,
    pub verdict: Verdict,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub passed: bool,
    pub measurements: Vec<Measurement>,
    /// Why the gate failed, with the values that failed it.
    pub reason: Option<String>,
}

/// The promotion gate of one deploy: its checks and the Prometheus they
/// are read from. The container swap and the Swarm rollout judge through
/// the same gate.
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    pub metrics: &'a dyn Metrics,
    pub config: &'a AnalysisConfig,
}

impl Gate<'_> {
    /// Announces the gate, then runs it for deploy `deploy_id` of `what`.
    pub async fn judge(
        &self,
        what: &str,
        events: &dyn Events,
        journal: &ServiceJournal,
        deploy_id: &str,
    ) -> Result<Analysis, DeployError> {
        events.step(&format!(
            "promotion gate for {what}: {} check(s), {} measurement(s) {:.0}s apart",
            self.config.checks.len(),
            self.config.count,
            self.config.interval.as_secs_f64()
        ));
        run(self.metrics, self.config, events, journal, deploy_id).await
    }
}

/// Refuses a gate that could never judge anything (before any change).
pub fn validate(cfg: &AnalysisConfig) -> Result<(), DeployError> {
    let bad = |p: String| Err(DeployError::InvalidLimit(format!("deploy.analysis: {p}")));
    if cfg.checks.is_empty() {
        return bad("no checks; list at least one under checks, or remove deploy.analysis".into());
    }
    if cfg.count == 0 {
        return bad("count is 0; measure each check at least once".into());
    }
    for (i, c) in cfg.checks.iter().enumerate() {
        if c.max.is_none() && c.min.is_none() {
            return bad(format!(
                "checks[{i}] ({}): set max (the value must stay at or below) or min",
                c.name
            ));
        }
    }
    Ok(())
}

fn judge(c: &CheckConfig, value: f64) -> Verdict {
    let over = c.max.is_some_and(|m| value > m);
    let under = c.min.is_some_and(|m| value < m);
    if value.is_nan() || over || under {
        Verdict::Fail
    } else {
        Verdict::Pass
    }
}

/// What a check's value must be, as shown to users.
pub fn bound(c: &CheckConfig) -> String {
    match (c.min, c.max) {
        (Some(lo), Some(hi)) => format!("{lo}..{hi}"),
        (None, Some(hi)) => format!("<= {hi}"),
        (Some(lo), None) => format!(">= {lo}"),
        (None, None) => "any".into(),
    }
}

/// Runs the gate; stops at the first check that can no longer pass.
pub async fn run(
    metrics: &dyn Metrics,
    cfg: &AnalysisConfig,
    events: &dyn Events,
    journal: &ServiceJournal,
    deploy_id: &str,
) -> Result<Analysis, DeployError> {
    let mut measurements = Vec::new();
    let mut failed = vec![0u32; cfg.checks.len()];
    let mut errors_in_a_row = vec![0u32; cfg.checks.len()];
    for round in 0..cfg.count {
        if round > 0 {
            // A wait the user sees (and `--output json` reports), as every
            // wait of a deploy is.
            events.waiting_for(
                &format!("gate: measurement {}/{} next", round + 1, cfg.count),
                cfg.interval,
            );
            tokio::time::sleep(cfg.interval).await;
            events.finished();
        }
        for (i, c) in cfg.checks.iter().enumerate() {
            let (value, error) = match metrics.instant(&c.name, &c.query).await {
                Ok(Some(v)) => (Some(v), None),
                Ok(None) => (None, Some("no data".to_string())),
                Err(e) => (None, Some(e.to_string())),
            };
            let verdict = value.map_or(Verdict::Error, |v| judge(c, v));
            let shown = value.map_or_else(|| error.clone().unwrap_or_default(), |v| format!("{v}"));
            let word = match verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
                Verdict::Error => "ERROR",
            };
            events.step(&format!(
                "gate {} {}/{}: {shown} (must be {}) {word}",
                c.name,
                round + 1,
                cfg.count,
                bound(c)
            ));
            journal.measured(deploy_id, &c.name, value, word)?;
            match verdict {
                Verdict::Pass => errors_in_a_row[i] = 0,
                Verdict::Fail => {
                    failed[i] += 1;
                    errors_in_a_row[i] = 0;
                }
                Verdict::Error => errors_in_a_row[i] += 1,
            }
            measurements.push(Measurement {
                check: c.name.clone(),
                value,
                verdict,
                error,
            });
            let reason = if failed[i] > cfg.failure_limit {
                Some(format!(
                    "check {} failed {} time(s) (failure_limit {}): measured {shown}, must be {}",
                    c.name,
                    failed[i],
                    cfg.failure_limit,
                    bound(c)
                ))
            } else if errors_in_a_row[i] > cfg.error_limit {
                Some(format!(
                    "check {} had no value {} time(s) in a row (error_limit {}): {shown}; failing closed",
                    c.name, errors_in_a_row[i], cfg.error_limit
                ))
            } else {
                None
            };
            if reason.is_some() {
                return Ok(Analysis {
                    passed: false,
                    measurements,
                    reason,
                });
            }
        }
    }
    // A check whose every measurement was an error never passed.
    for (i, c) in cfg.checks.iter().enumerate() {
        let passes = measurements
            .iter()
            .filter(|m| m.check == c.name && m.verdict == Verdict::Pass)
            .count();
        if passes == 0 && failed[i] == 0 {
            return Ok(Analysis {
                passed: false,
                measurements,
                reason: Some(format!(
                    "check {} never had a value; failing closed",
                    c.name
                )),
            });
        }
    }
    Ok(Analysis {
        passed: true,
        measurements,
        reason: None,
    })
}

/// Time the whole gate takes at most, for timeouts around it.
pub fn duration(cfg: &AnalysisConfig) -> Duration {
    cfg.interval * cfg.count.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::fake_metrics::ScriptedMetrics;
    use crate::journal::events::Silent;

    fn cfg(failure_limit: u32, error_limit: u32) -> AnalysisConfig {
        AnalysisConfig {
            interval: Duration::ZERO,
            count: 3,
            failure_limit,
            error_limit,
            checks: vec![CheckConfig {
                name: "error_rate".into(),
                query: "x".into(),
                max: Some(0.01),
                min: None,
            }],
        }
    }

    async fn gate(answers: Vec<Option<f64>>, c: AnalysisConfig) -> Analysis {
        let m = ScriptedMetrics::script("error_rate", &answers);
        let dir = tempfile::tempdir().unwrap();
        let j = ServiceJournal::new(dir.path(), "web");
        run(&m, &c, &Silent, &j, "d1").await.unwrap()
    }

    #[tokio::test]
    async fn passes_when_every_value_is_within() {
        let a = gate(vec![Some(0.0), Some(0.005), Some(0.01)], cfg(0, 0)).await;
        assert!(a.passed, "{a:?}");
        assert_eq!(a.measurements.len(), 3);
    }

    #[tokio::test]
    async fn a_failed_value_beyond_the_limit_fails_with_the_value() {
        let a = gate(vec![Some(0.0), Some(0.25), Some(0.0)], cfg(0, 0)).await;
        assert!(!a.passed);
        let reason = a.reason.unwrap();
        assert!(
            reason.contains("0.25") && reason.contains("<= 0.01"),
            "{reason}"
        );
        // Within the failure limit it passes.
        assert!(
            gate(vec![Some(0.0), Some(0.25), Some(0.0)], cfg(1, 0))
                .await
                .passed
        );
    }

    #[tokio::test]
    async fn no_data_fails_closed() {
        let a = gate(vec![None, Some(0.0), Some(0.0)], cfg(0, 0)).await;
        assert!(!a.passed);
        assert!(a.reason.unwrap().contains("no data"));
        assert!(
            gate(vec![None, Some(0.0), Some(0.0)], cfg(0, 1))
                .await
                .passed
        );
        let never = gate(vec![None, None, None], cfg(0, 5)).await;
        assert!(!never.passed && never.reason.unwrap().contains("never had a value"));
    }

    #[tokio::test]
    async fn measurements_are_journaled() {
        let m = ScriptedMetrics::script("error_rate", &[Some(0.0); 3]);
        let dir = tempfile::tempdir().unwrap();
        let j = ServiceJournal::new(dir.path(), "web");
        run(&m, &cfg(0, 0), &Silent, &j, "d1").await.unwrap();
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert_eq!(text.matches("\"measured\"").count(), 3, "{text}");
    }

    #[test]
    fn a_check_without_a_bound_is_refused() {
        let mut c = cfg(0, 0);
        c.checks[0].max = None;
        assert!(validate(&c).unwrap_err().to_string().contains("set max"));
    }
}
