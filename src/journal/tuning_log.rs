//! `tuning.log`: every observation sample as one JSON line with the time and
//! all metrics, as in the runbook (`{"timestamp": ..., "wal_rate": ...}`),
//! plus the change it belongs to.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Journal, JournalError};

/// Builds one line. Metric names go at the top level like the runbook's
/// example; `timestamp`, `change_id` and `phase` are reserved.
pub fn line(
    at: DateTime<Utc>,
    change_id: &str,
    phase: &str,
    values: &BTreeMap<String, Option<f64>>,
) -> Value {
    let mut map = Map::new();
    map.insert(
        "timestamp".into(),
        Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    map.insert("change_id".into(), Value::String(change_id.to_string()));
    map.insert("phase".into(), Value::String(phase.to_string()));
    for (name, value) in values {
        let v = value
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null);
        map.entry(name.clone()).or_insert(v);
    }
    Value::Object(map)
}

/// Appends a line and fsyncs it: a crash loses at most the torn last line.
pub fn append(path: &Path, line: &Value) -> Result<(), JournalError> {
    Journal::new(path).append(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn one_json_object_per_sample_with_nulls_for_no_data() {
        let at = Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0).unwrap();
        let values = BTreeMap::from([
            ("wal_rate".to_string(), Some(1234567.0)),
            ("cpu_temp".to_string(), None),
        ]);
        let v = line(at, "c1", "observe", &values);
        assert_eq!(
            v.to_string(),
            r#"{"change_id":"c1","cpu_temp":null,"phase":"observe","timestamp":"2024-01-15T10:30:00Z","wal_rate":1234567.0}"#
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tuning.log");
        append(&path, &v).unwrap();
        append(&path, &v).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }
}
