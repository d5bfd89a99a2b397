//! One reading of every SLA metric at an instant.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Every SLA metric at one instant; `None` is no data, never 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub values: BTreeMap<String, Option<f64>>,
}

impl Sample {
    pub fn get(&self, metric: &str) -> Option<f64> {
        self.values.get(metric).copied().flatten()
    }
}
