//! PostgreSQL's own units, as `pg_settings.unit` names them and as values
//! in `postgresql.conf` spell them.
//!
//! We convert exactly the way the server does (unit names are case-sensitive,
//! integers are rounded to the nearest base unit) so that a value we accept
//! is a value `ALTER SYSTEM` accepts, and range checks happen on the same
//! number the server compares against `min_val`/`max_val`.
//!
//! The one table of PostgreSQL units: validation, lever choice (`4096MB` is
//! `4GB`) and the tune cycle (`checkpoint_timeout`) all read values here.

use std::time::Duration;

/// Memory or time: the two families PostgreSQL units come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    Memory,
    Time,
}

/// Memory units a value may carry, in bytes. Case-sensitive, as in PostgreSQL.
const MEMORY_UNITS: &[(&str, f64)] = &[
    ("B", 1.0),
    ("kB", 1024.0),
    ("MB", 1024.0 * 1024.0),
    ("GB", 1024.0 * 1024.0 * 1024.0),
    ("TB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
];

/// Time units a value may carry, in milliseconds.
const TIME_UNITS: &[(&str, f64)] = &[
    ("us", 0.001),
    ("ms", 1.0),
    ("s", 1000.0),
    ("min", 60_000.0),
    ("h", 3_600_000.0),
    ("d", 86_400_000.0),
];

/// The unit a parameter is stored in (`pg_settings.unit`), e.g. `8kB`: one
/// base unit is `size` bytes (memory) or milliseconds (time).
#[derive(Debug, Clone, PartialEq)]
pub struct BaseUnit {
    pub name: String,
    pub kind: UnitKind,
    pub size: f64,
}

impl BaseUnit {
    /// Parses `pg_settings.unit`: `B`, `kB`, `8kB`, `MB`, `16MB`, `ms`, `s`,
    /// `min`. `None` for units we do not know, so the caller can refuse
    /// rather than guess.
    pub fn parse(unit: &str) -> Option<BaseUnit> {
        let (count, name) = split_number(unit.trim());
        let count = if count.is_empty() {
            1.0
        } else {
            count.parse::<f64>().ok()?
        };
        let (kind, size) = unit_size(name.trim())?;
        Some(BaseUnit {
            name: unit.trim().to_string(),
            kind,
            size: count * size,
        })
    }

    /// The unit names a value of this kind may carry, for error messages.
    pub fn accepted_units(&self) -> String {
        table(self.kind)
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Renders `n` base units for humans in the largest unit that divides it
    /// exactly: `4` of `8kB` is `32kB`, `1024` of `MB` is `1GB`. Negative
    /// values are sentinels (`-1` = "automatic") and print as they are.
    pub fn display(&self, n: f64) -> String {
        // `8kB` is not a unit a value may carry, so a bare count gets no suffix.
        let suffix = if unit_size(&self.name).is_some() {
            self.name.as_str()
        } else {
            ""
        };
        if n <= 0.0 || n.fract() != 0.0 {
            return format!("{n}{suffix}");
        }
        let total = n * self.size;
        for (name, size) in table(self.kind).iter().rev() {
            let count = total / size;
            if count >= 1.0 && count.fract() == 0.0 {
                return format!("{count}{name}");
            }
        }
        format!("{n}{suffix}")
    }
}

fn table(kind: UnitKind) -> &'static [(&'static str, f64)] {
    match kind {
        UnitKind::Memory => MEMORY_UNITS,
        UnitKind::Time => TIME_UNITS,
    }
}

fn unit_size(name: &str) -> Option<(UnitKind, f64)> {
    if let Some((_, s)) = MEMORY_UNITS.iter().find(|(n, _)| *n == name) {
        return Some((UnitKind::Memory, *s));
    }
    TIME_UNITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| (UnitKind::Time, *s))
}

/// Splits `16MB` into (`16`, `MB`) and ` 1.5 GB ` into (`1.5`, `GB`): the
/// longest leading decimal number (sign, digits, fraction, exponent), then
/// the rest with surrounding blanks removed.
pub fn split_number(s: &str) -> (&str, &str) {
    let s = s.trim();
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    // An exponent only counts when digits follow, so `1e` stays a bad unit.
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    (&s[..i], s[i..].trim())
}

/// Why a number-with-unit could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitProblem {
    NotANumber,
    UnitNotAllowed,
    WrongUnit { accepted: String },
}

/// Converts a user value such as `16MB`, `15min` or `2048` into a count of
/// `base` units (not rounded: integer parameters round afterwards). A bare
/// number is already in base units, as in `postgresql.conf`. A unit on a
/// parameter without one (`base == None`) is refused.
pub fn to_base_units(value: &str, base: Option<&BaseUnit>) -> Result<f64, UnitProblem> {
    let (number, unit) = split_number(value);
    let n: f64 = number.parse().map_err(|_| UnitProblem::NotANumber)?;
    if !n.is_finite() {
        return Err(UnitProblem::NotANumber);
    }
    if unit.is_empty() {
        return Ok(n);
    }
    let Some(base) = base else {
        return Err(UnitProblem::UnitNotAllowed);
    };
    let size = table(base.kind)
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, size)| *size)
        .ok_or_else(|| UnitProblem::WrongUnit {
            accepted: base.accepted_units(),
        })?;
    Ok(n * size / base.size)
}

/// A value in the smallest unit of its family, bytes or milliseconds, for
/// comparing values of a parameter whose base unit is not at hand: `4096MB`
/// and `4GB` are equal, `15min` is beyond `600s`. A bare number is returned
/// as it is; an unknown unit is `None`.
pub fn magnitude(value: &str) -> Option<f64> {
    let (number, unit) = split_number(value);
    let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite())?;
    if unit.is_empty() {
        return Some(n);
    }
    unit_size(unit).map(|(_, size)| n * size)
}

/// A time value as the server reads it (`5min`, `300s`), a bare number
/// being in `bare_unit` (`s` for `checkpoint_timeout`). `None` for anything
/// that is not a non-negative time PostgreSQL would accept.
pub fn to_duration(value: &str, bare_unit: &str) -> Option<Duration> {
    let base = BaseUnit::parse(bare_unit).filter(|b| b.kind == UnitKind::Time)?;
    let ms = to_base_units(value, Some(&base)).ok()? * base.size;
    if ms < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(u: &str) -> BaseUnit {
        BaseUnit::parse(u).unwrap()
    }

    #[test]
    fn parses_pg_settings_units() {
        assert_eq!(unit("8kB").size, 8192.0);
        assert_eq!(unit("kB").size, 1024.0);
        assert_eq!(unit("MB").size, 1048576.0);
        assert_eq!(unit("B").size, 1.0);
        assert_eq!(unit("min").size, 60_000.0);
        assert_eq!(unit("s").kind, UnitKind::Time);
        assert!(BaseUnit::parse("parsecs").is_none());
        assert!(
            BaseUnit::parse("mb").is_none(),
            "units are case-sensitive, as in PostgreSQL"
        );
    }

    #[test]
    fn converts_memory_into_base_units() {
        assert_eq!(to_base_units("16MB", Some(&unit("8kB"))), Ok(2048.0));
        assert_eq!(to_base_units("1GB", Some(&unit("MB"))), Ok(1024.0));
        assert_eq!(to_base_units("1.5GB", Some(&unit("MB"))), Ok(1536.0));
        assert_eq!(to_base_units(" 64 kB ", Some(&unit("kB"))), Ok(64.0));
        assert_eq!(
            to_base_units("2048", Some(&unit("8kB"))),
            Ok(2048.0),
            "bare numbers are base units"
        );
    }

    #[test]
    fn converts_time_into_base_units() {
        assert_eq!(to_base_units("15min", Some(&unit("s"))), Ok(900.0));
        assert_eq!(to_base_units("30s", Some(&unit("ms"))), Ok(30_000.0));
        assert_eq!(to_base_units("1h", Some(&unit("min"))), Ok(60.0));
        assert_eq!(to_base_units("500us", Some(&unit("ms"))), Ok(0.5));
    }

    #[test]
    fn refuses_unknown_wrong_family_and_miscased_units() {
        let mb = unit("MB");
        assert!(matches!(
            to_base_units("5 parsecs", Some(&mb)),
            Err(UnitProblem::WrongUnit { .. })
        ));
        assert!(matches!(
            to_base_units("5s", Some(&mb)),
            Err(UnitProblem::WrongUnit { .. })
        ));
        assert!(matches!(
            to_base_units("5mb", Some(&mb)),
            Err(UnitProblem::WrongUnit { .. })
        ));
        assert_eq!(to_base_units("5MB", None), Err(UnitProblem::UnitNotAllowed));
        assert_eq!(to_base_units("MB", Some(&mb)), Err(UnitProblem::NotANumber));
        assert_eq!(to_base_units("", Some(&mb)), Err(UnitProblem::NotANumber));
        assert_eq!(
            to_base_units("1e", Some(&mb)),
            Err(UnitProblem::WrongUnit {
                accepted: mb.accepted_units()
            })
        );
    }

    #[test]
    fn splits_numbers_with_exponents() {
        assert_eq!(split_number("1e3"), ("1e3", ""));
        assert_eq!(split_number("-1"), ("-1", ""));
        assert_eq!(split_number("1.5 GB"), ("1.5", "GB"));
    }

    #[test]
    fn magnitudes_compare_across_units_of_one_family() {
        assert_eq!(magnitude("4096MB"), magnitude("4GB"));
        assert_eq!(magnitude("900s"), magnitude("15min"));
        assert_eq!(magnitude("500us"), Some(0.5));
        assert_eq!(magnitude("1 kB"), Some(1024.0));
        assert_eq!(magnitude("-1"), Some(-1.0));
        assert_eq!(magnitude("lz4"), None);
        assert_eq!(magnitude("5 parsecs"), None);
        assert_eq!(magnitude("5mb"), None, "units are case-sensitive");
    }

    #[test]
    fn time_values_become_durations() {
        assert_eq!(to_duration("5min", "s"), Some(Duration::from_secs(300)));
        assert_eq!(to_duration("300", "s"), Some(Duration::from_secs(300)));
        assert_eq!(to_duration("1h", "s"), Some(Duration::from_secs(3600)));
        assert_eq!(to_duration("1d", "s"), Some(Duration::from_secs(86_400)));
        assert_eq!(to_duration("250ms", "s"), Some(Duration::from_millis(250)));
        assert_eq!(to_duration("250", "ms"), Some(Duration::from_millis(250)));
        assert_eq!(to_duration("-1", "s"), None);
        assert_eq!(to_duration("16MB", "s"), None);
        assert_eq!(to_duration("5min", "MB"), None);
        assert_eq!(to_duration("1e300d", "s"), None, "beyond Duration");
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        assert_eq!(unit("8kB").display(4.0), "32kB");
        assert_eq!(unit("8kB").display(262143.0), "2097144kB");
        assert_eq!(unit("MB").display(1024.0), "1GB");
        assert_eq!(unit("MB").display(2.0), "2MB");
        assert_eq!(unit("s").display(900.0), "15min");
        assert_eq!(unit("ms").display(0.0), "0ms");
        assert_eq!(unit("8kB").display(-1.0), "-1");
    }
}
