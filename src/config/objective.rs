//! SLA objectives as written in `profiles:` — `<= 200ms`, `< 25%`,
//! `<= 1.5x baseline`, `<= 1.2x baseline_peak`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::units::MetricUnit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Comparison {
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Comparison::Lt => value < limit,
            Comparison::Le => value <= limit,
            Comparison::Gt => value > limit,
            Comparison::Ge => value >= limit,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
        }
    }

    /// True when smaller values are the good side of this objective.
    pub fn upper_bound(self) -> bool {
        matches!(self, Comparison::Lt | Comparison::Le)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// A value in the metric's own unit, still as written until the unit is known.
    Absolute { raw: String, value: Option<f64> },
    /// A multiple of the baseline's mean (`baseline`) or peak (`baseline_peak`).
    Relative { factor: f64, peak: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objective {
    pub comparison: Comparison,
    pub threshold: Threshold,
}

pub const OBJECTIVE_FORMS: &str =
    "`<= 200ms`, `< 25%`, `<= 85`, `<= 1.5x baseline`, `<= 1.2x baseline_peak`";

impl Objective {
    pub fn parse(input: &str) -> Result<Objective, String> {
        let s = input.trim();
        let (comparison, rest) = if let Some(r) = s.strip_prefix("<=") {
            (Comparison::Le, r)
        } else if let Some(r) = s.strip_prefix(">=") {
            (Comparison::Ge, r)
        } else if let Some(r) = s.strip_prefix('<') {
            (Comparison::Lt, r)
        } else if let Some(r) = s.strip_prefix('>') {
            (Comparison::Gt, r)
        } else {
            return Err(format!("objective {input:?} must start with <, <=, > or >=; accepted forms: {OBJECTIVE_FORMS}"));
        };
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(format!(
                "objective {input:?} has no threshold; accepted forms: {OBJECTIVE_FORMS}"
            ));
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let threshold = match words.as_slice() {
            [factor, of @ ("baseline" | "baseline_peak")] => {
                let number = factor.trim_end_matches(['x', '×']);
                let factor: f64 = number
                    .parse()
                    .map_err(|_| format!("objective {input:?}: {factor:?} is not a factor like `1.5x`; accepted forms: {OBJECTIVE_FORMS}"))?;
                if !(factor.is_finite() && factor > 0.0) {
                    return Err(format!("objective {input:?}: the factor must be positive"));
                }
                Threshold::Relative {
                    factor,
                    peak: *of == "baseline_peak",
                }
            }
            [value] => Threshold::Absolute {
                raw: value.to_string(),
                value: None,
            },
            _ => {
                return Err(format!(
                    "objective {input:?} is not understood; accepted forms: {OBJECTIVE_FORMS}"
                ))
            }
        };
        Ok(Objective {
            comparison,
            threshold,
        })
    }

    /// Converts an absolute threshold with the metric's unit; errors name the forms.
    pub fn resolve_unit(&mut self, unit: MetricUnit) -> Result<(), String> {
        if let Threshold::Absolute { raw, value } = &mut self.threshold {
            *value = Some(unit.parse(raw).map_err(|e| e.to_string())?);
        }
        Ok(())
    }

    /// The limit in the metric's unit, given the baseline (mean, peak) when relative.
    pub fn limit(&self, baseline: Option<(f64, f64)>) -> Option<f64> {
        match &self.threshold {
            Threshold::Absolute { value, .. } => *value,
            Threshold::Relative { factor, peak } => {
                baseline.map(|(mean, max)| factor * if *peak { max } else { mean })
            }
        }
    }

    pub fn needs_baseline(&self) -> bool {
        matches!(self.threshold, Threshold::Relative { .. })
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.threshold {
            Threshold::Absolute { raw, .. } => write!(f, "{} {raw}", self.comparison.symbol()),
            Threshold::Relative { factor, peak } => {
                write!(
                    f,
                    "{} {factor}x {}",
                    self.comparison.symbol(),
                    if *peak { "baseline_peak" } else { "baseline" }
                )
            }
        }
    }
}

impl<'de> Deserialize<'de> for Objective {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Objective, D::Error> {
        let s = String::deserialize(d)?;
        Objective::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_and_relative() {
        let mut o = Objective::parse("<= 200ms").unwrap();
        o.resolve_unit(MetricUnit::Milliseconds).unwrap();
        assert_eq!(o.limit(None), Some(200.0));
        assert!(o.comparison.holds(200.0, 200.0));
        let r = Objective::parse("<= 1.5x baseline").unwrap();
        assert_eq!(r.limit(Some((10.0, 20.0))), Some(15.0));
        assert_eq!(r.limit(None), None);
        let p = Objective::parse("<= 1.2x baseline_peak").unwrap();
        assert_eq!(p.limit(Some((10.0, 20.0))), Some(24.0));
        assert_eq!(p.to_string(), "<= 1.2x baseline_peak");
        let lt = Objective::parse("< 25%").unwrap();
        assert!(!lt.comparison.holds(25.0, 25.0));
    }

    #[test]
    fn rejects_malformed_with_forms() {
        for bad in [
            "200ms",
            "<=",
            "<= fast baseline",
            "<= 1 2 3",
            "<= -1x baseline",
        ] {
            let err = Objective::parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        let mut o = Objective::parse("< lots").unwrap();
        assert!(o
            .resolve_unit(MetricUnit::Percent)
            .unwrap_err()
            .contains("25%"));
    }
}
