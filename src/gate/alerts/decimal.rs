//! Exact decimals for rule thresholds. A burn-rate threshold is a product
//! (14.4 x 0.1%), and in binary floating point that product prints as
//! 0.014400000000000001: a rule nobody can read back against the objective.
//! Thresholds are kept as scaled integers instead, so `14.4 * 0.001` prints
//! `0.0144`.

use std::fmt;

/// `mantissa x 10^-scale`, always reduced (no trailing zero digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

/// Enough digits for any threshold a person writes; more would only carry
/// the noise of a float conversion.
const SIGNIFICANT: usize = 12;

impl Decimal {
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        scale: 0,
    };

    pub fn from_int(n: i64) -> Decimal {
        Decimal {
            mantissa: n as i128,
            scale: 0,
        }
        .reduced()
    }

    /// Parses `99.9`, `-3`, `0.0144`; no exponents, no signs but `-`.
    pub fn parse(input: &str) -> Option<Decimal> {
        let s = input.trim();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
            || int.len() + frac.len() > 30
        {
            return None;
        }
        let mut mantissa: i128 = 0;
        for c in int.chars().chain(frac.chars()) {
            mantissa = mantissa * 10 + i128::from(c as u8 - b'0');
        }
        Some(
            Decimal {
                mantissa: if negative { -mantissa } else { mantissa },
                scale: frac.len() as u32,
            }
            .reduced(),
        )
    }

    /// The decimal a person meant by `value`: rounded to 12 significant
    /// digits, which removes conversion noise (0.1 + 0.2 -> 0.3).
    pub fn from_f64(value: f64) -> Option<Decimal> {
        if !value.is_finite() {
            return None;
        }
        let sci = format!("{:.*e}", SIGNIFICANT - 1, value);
        let (digits, exp) = sci.split_once('e')?;
        let exp: i32 = exp.parse().ok()?;
        let plain = Decimal::parse(digits)?;
        Some(plain.shift(exp))
    }

    /// `value` rounded to `digits` significant digits, for numbers that
    /// come from a measurement (a baseline) rather than from a person.
    pub fn from_f64_significant(value: f64, digits: usize) -> Option<Decimal> {
        if !value.is_finite() || digits == 0 {
            return None;
        }
        let rounded: f64 = format!("{:.*e}", digits - 1, value).parse().ok()?;
        Decimal::from_f64(rounded)
    }

    /// `self x 10^exp`.
    fn shift(self, exp: i32) -> Decimal {
        let mut d = self;
        if exp >= 0 {
            let up = exp as u32;
            if up <= d.scale {
                d.scale -= up;
            } else {
                d.mantissa *= 10i128.pow(up - d.scale);
                d.scale = 0;
            }
        } else {
            d.scale += exp.unsigned_abs();
        }
        d.reduced()
    }

    pub fn minus(self, other: Decimal) -> Decimal {
        let scale = self.scale.max(other.scale);
        Decimal {
            mantissa: self.widened(scale) - other.widened(scale),
            scale,
        }
        .reduced()
    }

    pub fn plus(self, other: Decimal) -> Decimal {
        let scale = self.scale.max(other.scale);
        Decimal {
            mantissa: self.widened(scale) + other.widened(scale),
            scale,
        }
        .reduced()
    }

    pub fn times(self, other: Decimal) -> Decimal {
        Decimal {
            mantissa: self.mantissa * other.mantissa,
            scale: self.scale + other.scale,
        }
        .reduced()
    }

    /// `self / 100`, exactly: a percentage as a ratio.
    pub fn percent(self) -> Decimal {
        self.shift(-2)
    }

    pub fn is_positive(self) -> bool {
        self.mantissa > 0
    }

    pub fn cmp_value(self, other: Decimal) -> std::cmp::Ordering {
        let scale = self.scale.max(other.scale);
        self.widened(scale).cmp(&other.widened(scale))
    }

    pub fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    fn widened(self, scale: u32) -> i128 {
        self.mantissa * 10i128.pow(scale - self.scale)
    }

    fn reduced(mut self) -> Decimal {
        if self.mantissa == 0 {
            return Decimal::ZERO;
        }
        while self.scale > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        self
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn burn_thresholds_are_exact() {
        let budget = d("100").minus(d("99.9")).percent();
        assert_eq!(budget.to_string(), "0.001");
        assert_eq!(d("14.4").times(budget).to_string(), "0.0144");
        assert_eq!(d("6").times(budget).to_string(), "0.006");
        let budget = d("100").minus(d("99.95")).percent();
        assert_eq!(d("14.4").times(budget).to_string(), "0.0072");
        assert_eq!(
            d("1").times(d("100").minus(d("90")).percent()).to_string(),
            "0.1"
        );
    }

    #[test]
    fn floats_lose_their_noise() {
        assert_eq!(Decimal::from_f64(0.1 + 0.2).unwrap().to_string(), "0.3");
        assert_eq!(
            Decimal::from_f64(0.0009999999999999).unwrap().to_string(),
            "0.001"
        );
        assert_eq!(
            Decimal::from_f64(4_194_304.0).unwrap().to_string(),
            "4194304"
        );
        assert_eq!(Decimal::from_f64(-2.5).unwrap().to_string(), "-2.5");
        assert_eq!(Decimal::from_f64(1e-7).unwrap().to_string(), "0.0000001");
        assert!(Decimal::from_f64(f64::NAN).is_none());
    }

    #[test]
    fn parses_and_orders() {
        assert_eq!(d("200.00").to_string(), "200");
        assert_eq!(d(".5").to_string(), "0.5");
        assert!(Decimal::parse("1e3").is_none());
        assert!(Decimal::parse("").is_none());
        assert!(Decimal::parse("-").is_none());
        assert_eq!(d("0.5").cmp_value(d("0.50")), std::cmp::Ordering::Equal);
        assert_eq!(d("1").cmp_value(d("0.99")), std::cmp::Ordering::Greater);
        assert_eq!(d("3").plus(d("0.25")).to_string(), "3.25");
    }
}
