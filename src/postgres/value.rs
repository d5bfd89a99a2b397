//! Validating a value against what the live server says the parameter is.
//!
//! We refuse anything the server would refuse, and a little more (hex and
//! fractional integers without a unit, boolean prefixes, hidden enum
//! spellings): a lever value that is ambiguous is a bug in the lever, and
//! refusing is cheaper than guessing. We never clamp into range.

use serde::Serialize;

use super::catalog::{SettingInfo, VarType};
use super::sql::quote_literal;
use super::units::{split_number, to_base_units, BaseUnit, UnitProblem};
use super::PostgresError;

/// A value reduced to what the server stores, for comparing with
/// `pg_settings.setting` after the change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Normalized {
    Bool(bool),
    /// In the parameter's base unit (`pg_settings.unit`).
    Integer(i64),
    Real(f64),
    /// Spelled as in `pg_settings.enumvals`.
    Enum(String),
    String(String),
}

impl Normalized {
    /// Whether `pg_settings.setting` shows this value.
    pub fn matches(&self, setting: &str) -> bool {
        match self {
            Normalized::Bool(b) => parse_bool(setting) == Some(*b),
            Normalized::Integer(n) => setting.trim().parse::<i64>().ok() == Some(*n),
            Normalized::Real(x) => setting
                .trim()
                .parse::<f64>()
                // The server prints reals with %g: compare with a relative tolerance.
                .map(|s| (s - x).abs() <= 1e-5 * x.abs().max(1.0))
                .unwrap_or(false),
            Normalized::Enum(e) => setting.trim().eq_ignore_ascii_case(e),
            Normalized::String(s) => setting == s,
        }
    }
}

impl std::fmt::Display for Normalized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Normalized::Bool(b) => f.write_str(if *b { "on" } else { "off" }),
            Normalized::Integer(n) => write!(f, "{n}"),
            Normalized::Real(x) => write!(f, "{x}"),
            Normalized::Enum(s) | Normalized::String(s) => f.write_str(s),
        }
    }
}

/// A value that passed every check, with the literal to splice into SQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validated {
    /// The value as it will be written to `postgresql.auto.conf`.
    pub value: String,
    /// `value` as an SQL literal.
    pub literal: String,
    pub normalized: Normalized,
}

const BOOL_FORMS: &str = "on, off, true, false, yes, no, 1, 0";

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

fn invalid(
    info: &SettingInfo,
    value: &str,
    reason: impl Into<String>,
    accepted: impl Into<String>,
) -> PostgresError {
    PostgresError::InvalidValue {
        name: info.name.clone(),
        value: value.to_string(),
        reason: reason.into(),
        accepted: accepted.into(),
    }
}

/// Checks `raw` against the parameter's type, unit, range and allowed values.
pub fn validate(info: &SettingInfo, raw: &str) -> Result<Validated, PostgresError> {
    let forbidden = |what: &'static str| PostgresError::ForbiddenCharacters {
        name: info.name.clone(),
        value: raw.to_string(),
        what,
        vartype: info.vartype.to_string(),
    };
    if raw.contains('\0') {
        return Err(forbidden("a NUL byte"));
    }
    // For anything but strings, quotes and semicolons can only be an attempt
    // to escape the literal (or a mistake): refuse before parsing.
    if info.vartype != VarType::String {
        if raw.contains(['\'', '"', ';', '\\']) {
            return Err(forbidden("a quote, backslash or semicolon"));
        }
        if raw.chars().any(char::is_control) {
            return Err(forbidden("a control character"));
        }
    }
    let normalized = match info.vartype {
        VarType::Bool => Normalized::Bool(
            parse_bool(raw).ok_or_else(|| invalid(info, raw, "is not a boolean", BOOL_FORMS))?,
        ),
        VarType::Integer | VarType::Real => numeric(info, raw)?,
        VarType::Enum => {
            let wanted = raw.trim();
            let found = info
                .enumvals
                .iter()
                .find(|v| v.eq_ignore_ascii_case(wanted));
            Normalized::Enum(found.cloned().ok_or_else(|| PostgresError::NotInEnum {
                name: info.name.clone(),
                value: raw.to_string(),
                allowed: info.enumvals.clone(),
            })?)
        }
        // Strings are taken verbatim: blanks may be meaningful.
        VarType::String => Normalized::String(raw.to_string()),
    };
    let value = if info.vartype == VarType::String {
        raw.to_string()
    } else {
        raw.trim().to_string()
    };
    Ok(Validated {
        literal: quote_literal(&value),
        value,
        normalized,
    })
}

fn numeric(info: &SettingInfo, raw: &str) -> Result<Normalized, PostgresError> {
    let base = match info.unit.as_deref() {
        None | Some("") => None,
        Some(u) => Some(BaseUnit::parse(u).ok_or_else(|| {
            invalid(
                info,
                raw,
                format!(
                    "cannot be checked: pg_settings reports unit {u:?}, which tuner does not know"
                ),
                "nothing",
            )
        })?),
    };
    let integer = info.vartype == VarType::Integer;
    let kind = if integer { "an integer" } else { "a number" };
    let accepted = match &base {
        Some(b) => format!(
            "{kind} with a unit ({}), or a bare number of {} units",
            b.accepted_units(),
            b.name
        ),
        None => format!("{kind} without a unit"),
    };
    let n = to_base_units(raw, base.as_ref()).map_err(|p| match p {
        UnitProblem::NotANumber => invalid(info, raw, "is not a number", accepted.clone()),
        UnitProblem::UnitNotAllowed => invalid(
            info,
            raw,
            "has a unit but this parameter takes none",
            accepted.clone(),
        ),
        UnitProblem::WrongUnit { .. } => invalid(
            info,
            raw,
            "has a unit this parameter does not take",
            accepted.clone(),
        ),
    })?;
    let has_unit = !split_number(raw).1.is_empty();
    let n = if integer {
        // With a unit the server rounds to the nearest base unit (so do we);
        // a bare fraction is ambiguous and refused.
        if !has_unit && n.fract() != 0.0 {
            return Err(invalid(info, raw, "is not an integer", accepted));
        }
        n.round_ties_even()
    } else {
        n
    };
    check_range(info, raw, n, base.as_ref())?;
    Ok(if integer {
        Normalized::Integer(n as i64)
    } else {
        Normalized::Real(n)
    })
}

fn check_range(
    info: &SettingInfo,
    raw: &str,
    n: f64,
    base: Option<&BaseUnit>,
) -> Result<(), PostgresError> {
    let bound = |s: &Option<String>| s.as_deref().and_then(|v| v.trim().parse::<f64>().ok());
    let (min, max) = (bound(&info.min_val), bound(&info.max_val));
    let show = |x: Option<f64>| match (x, base) {
        (Some(x), Some(b)) => b.display(x),
        (Some(x), None) => format!("{x}"),
        (None, _) => "?".to_string(),
    };
    let range = format!("{}..{}", show(min), show(max));
    let value = match base {
        Some(b) if split_number(raw).1 != b.name => format!("{raw:?} (= {n} x {})", b.name),
        _ => format!("{raw:?}"),
    };
    let allowed = format!("unit {}: {range}", info.unit.as_deref().unwrap_or("none"));
    let out = |problem, bound: &Option<String>| PostgresError::OutOfRange {
        name: info.name.clone(),
        value: value.clone(),
        problem,
        bound: bound.clone().unwrap_or_default(),
        allowed: allowed.clone(),
    };
    if min.is_some_and(|m| n < m) {
        return Err(out("below the minimum", &info.min_val));
    }
    if max.is_some_and(|m| n > m) {
        return Err(out("above the maximum", &info.max_val));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::catalog::Context;

    fn info(
        name: &str,
        vartype: VarType,
        unit: Option<&str>,
        min: Option<&str>,
        max: Option<&str>,
        enums: &[&str],
    ) -> SettingInfo {
        SettingInfo {
            name: name.into(),
            setting: String::new(),
            unit: unit.map(Into::into),
            vartype,
            context: Context::Sighup,
            min_val: min.map(Into::into),
            max_val: max.map(Into::into),
            enumvals: enums.iter().map(|s| s.to_string()).collect(),
            source: "default".into(),
            sourcefile: None,
            pending_restart: false,
        }
    }

    fn max_wal_size() -> SettingInfo {
        info(
            "max_wal_size",
            VarType::Integer,
            Some("MB"),
            Some("2"),
            Some("2147483647"),
            &[],
        )
    }

    fn wal_buffers() -> SettingInfo {
        info(
            "wal_buffers",
            VarType::Integer,
            Some("8kB"),
            Some("-1"),
            Some("262143"),
            &[],
        )
    }

    #[test]
    fn integers_with_units_become_base_units() {
        let v = validate(&max_wal_size(), "2GB").unwrap();
        assert_eq!(v.normalized, Normalized::Integer(2048));
        assert_eq!(v.literal, "'2GB'");
        assert_eq!(
            validate(&wal_buffers(), "16MB").unwrap().normalized,
            Normalized::Integer(2048)
        );
        assert_eq!(
            validate(&wal_buffers(), "-1").unwrap().normalized,
            Normalized::Integer(-1)
        );
        let timeout = info(
            "checkpoint_timeout",
            VarType::Integer,
            Some("s"),
            Some("30"),
            Some("86400"),
            &[],
        );
        assert_eq!(
            validate(&timeout, "15min").unwrap().normalized,
            Normalized::Integer(900)
        );
    }

    #[test]
    fn out_of_range_is_refused_not_clamped() {
        let e = validate(&max_wal_size(), "1MB").unwrap_err().to_string();
        assert_eq!(
            e,
            r#"max_wal_size: "1MB" is below the minimum 2 (unit MB: 2MB..2147483647MB)"#
        );
        let e = validate(&wal_buffers(), "1TB").unwrap_err().to_string();
        assert!(
            e.contains("is above the maximum 262143 (unit 8kB: -1..2097144kB)"),
            "{e}"
        );
    }

    #[test]
    fn wrong_units_and_non_numbers_are_refused() {
        let e = validate(&max_wal_size(), "5 parsecs")
            .unwrap_err()
            .to_string();
        assert!(e.contains("has a unit this parameter does not take"), "{e}");
        assert!(e.contains("B, kB, MB, GB, TB"), "{e}");
        assert!(validate(&max_wal_size(), "lots").is_err());
        assert!(validate(&max_wal_size(), "1.5")
            .unwrap_err()
            .to_string()
            .contains("is not an integer"));
        let rpc = info(
            "random_page_cost",
            VarType::Real,
            None,
            Some("0"),
            Some("1.79769e+308"),
            &[],
        );
        assert_eq!(
            validate(&rpc, "1.1").unwrap().normalized,
            Normalized::Real(1.1)
        );
        assert!(validate(&rpc, "1.1MB")
            .unwrap_err()
            .to_string()
            .contains("takes none"));
    }

    #[test]
    fn enums_must_be_listed() {
        let wc = info(
            "wal_compression",
            VarType::Enum,
            None,
            None,
            None,
            &["pglz", "lz4", "zstd", "on", "off"],
        );
        assert_eq!(
            validate(&wc, "LZ4").unwrap().normalized,
            Normalized::Enum("lz4".into())
        );
        assert_eq!(
            validate(&wc, "zip").unwrap_err().to_string(),
            r#"wal_compression: "zip" is not one of pglz, lz4, zstd, on, off"#
        );
    }

    #[test]
    fn booleans_take_the_usual_spellings_only() {
        let fsync = info("fsync", VarType::Bool, None, None, None, &[]);
        assert_eq!(
            validate(&fsync, "OFF").unwrap().normalized,
            Normalized::Bool(false)
        );
        assert_eq!(
            validate(&fsync, "true").unwrap().normalized,
            Normalized::Bool(true)
        );
        assert!(validate(&fsync, "of").is_err(), "prefixes are ambiguous");
    }

    #[test]
    fn injection_attempts_are_refused_for_non_strings() {
        for bad in [
            "'; DROP TABLE x; --",
            "1GB; select 1",
            "on'",
            "\"1\"",
            "1\\",
        ] {
            let e = validate(&max_wal_size(), bad).unwrap_err();
            assert!(
                matches!(e, PostgresError::ForbiddenCharacters { .. }),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn strings_are_quoted_and_nul_is_refused() {
        let s = info("application_name", VarType::String, None, None, None, &[]);
        let v = validate(&s, "it's; fine").unwrap();
        assert_eq!(v.literal, "'it''s; fine'");
        assert_eq!(v.normalized, Normalized::String("it's; fine".into()));
        assert!(matches!(
            validate(&s, "a\0b"),
            Err(PostgresError::ForbiddenCharacters { .. })
        ));
    }

    #[test]
    fn normalized_values_match_pg_settings_text() {
        assert!(Normalized::Integer(2048).matches("2048"));
        assert!(Normalized::Bool(false).matches("off"));
        assert!(Normalized::Real(1.1).matches("1.1"));
        assert!(
            Normalized::Real(1.23456789).matches("1.23457"),
            "%g keeps 6 digits"
        );
        assert!(!Normalized::Real(1.2).matches("1.3"));
        assert!(Normalized::Enum("lz4".into()).matches("lz4"));
        assert!(!Normalized::Integer(2048).matches("1024"));
    }
}
