//! `baseline.yaml`: what "normal" looked like, in seed 000's shape.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::units::MetricUnit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub captured_at: DateTime<Utc>,
    pub profile: String,
    /// The longest metric window, for the record; each metric has its own.
    pub window: String,
    pub metrics: BTreeMap<String, BaselineMetric>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineMetric {
    pub query: String,
    /// Mean over the window; `null` when Prometheus had no data.
    pub value: Option<f64>,
    /// Highest point over the window.
    pub peak: Option<f64>,
    pub unit: MetricUnit,
    pub window: String,
    /// How many points the mean is made of.
    pub samples: usize,
}

impl Baseline {
    /// Reads a baseline; a missing file is `Ok(None)` (status shows "no baseline").
    pub fn load(path: &Path) -> Result<Option<Baseline>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read baseline {}: {e}", path.display())),
        };
        crate::config::load::parse_yaml(path, &text).map(Some)
    }

    pub fn to_yaml(&self) -> String {
        let body = crate::config::yaml::to_string(self).unwrap_or_default();
        format!(
            "# Written by `tuner baseline`; values are means over each metric's window.\n{body}"
        )
    }

    /// (mean, peak) for a metric, when both were measured.
    pub fn reference(&self, metric: &str) -> Option<(f64, f64)> {
        let m = self.metrics.get(metric)?;
        Some((m.value?, m.peak.or(m.value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_yaml() {
        let mut metrics = BTreeMap::new();
        metrics.insert(
            "wal_rate".to_string(),
            BaselineMetric {
                query: "rate(x[1m])".into(),
                value: Some(1234.5),
                peak: Some(2000.0),
                unit: MetricUnit::BytesPerSecond,
                window: "5m".into(),
                samples: 20,
            },
        );
        let b = Baseline {
            captured_at: Utc::now(),
            profile: "development".into(),
            window: "5m".into(),
            metrics,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.yaml");
        std::fs::write(&path, b.to_yaml()).unwrap();
        assert_eq!(Baseline::load(&path).unwrap(), Some(b.clone()));
        assert_eq!(b.reference("wal_rate"), Some((1234.5, 2000.0)));
        assert_eq!(Baseline::load(&dir.path().join("none.yaml")).unwrap(), None);
    }
}
