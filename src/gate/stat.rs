//! Which statistic of a distribution an objective is on, spelled as in k6
//! (`p(95)`, `med`) or plainly (`p95`, `median`).

use std::fmt;

use serde::Serialize;

/// Which statistic of a distribution an objective is on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// `p95`, `p99.9`: percent in (0, 100].
    Percentile(f64),
    Median,
    Avg,
    Min,
    Max,
    Count,
    Rate,
    Value,
}

pub const STAT_FORMS: &str =
    "`p50`, `p90`, `p95`, `p99`, `p99.9` (any percentile), `med`, `avg`, `min`, `max`, `count`, `rate`, `value`";

impl Stat {
    pub fn parse(input: &str) -> Result<Stat, String> {
        let s = input.trim().to_ascii_lowercase();
        let stat = match s.as_str() {
            "med" | "median" => Stat::Median,
            "avg" | "mean" => Stat::Avg,
            "min" => Stat::Min,
            "max" => Stat::Max,
            "count" => Stat::Count,
            "rate" => Stat::Rate,
            "value" => Stat::Value,
            p if p.starts_with('p') => {
                let n = p[1..].trim_start_matches('(').trim_end_matches(')');
                match n.parse::<f64>() {
                    Ok(v) if v > 0.0 && v <= 100.0 => Stat::Percentile(v),
                    _ => return Err(format!("stat {input:?}: a percentile is p0.1 to p100")),
                }
            }
            _ => {
                return Err(format!(
                    "stat {input:?} is not known; accepted: {STAT_FORMS}"
                ))
            }
        };
        Ok(stat)
    }

    /// True for statistics of a distribution (needs every sample).
    pub fn is_distribution(self) -> bool {
        matches!(
            self,
            Stat::Percentile(_) | Stat::Median | Stat::Avg | Stat::Min | Stat::Max
        )
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stat::Percentile(p) => write!(f, "p{p}"),
            Stat::Median => f.write_str("med"),
            Stat::Avg => f.write_str("avg"),
            Stat::Min => f.write_str("min"),
            Stat::Max => f.write_str("max"),
            Stat::Count => f.write_str("count"),
            Stat::Rate => f.write_str("rate"),
            Stat::Value => f.write_str("value"),
        }
    }
}
