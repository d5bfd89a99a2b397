//! Statistics for before/after windows: medians and MAD for the noise band,
//! because one checkpoint spike must not set it; and t-tests (Welch's for
//! two windows, the paired one for windows that start at the same point of
//! the checkpoint cycle) over independent readings (`blocks`), because
//! rank and sign-flip tests over overlapping `rate()` samples read their
//! shared data as evidence many times over.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Median of finite values; `None` for an empty slice.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Median absolute deviation scaled by 1.4826, which makes it estimate the
/// standard deviation for normal data while ignoring outliers.
pub fn scaled_mad(values: &[f64]) -> Option<f64> {
    let m = median(values)?;
    let deviations: Vec<f64> = values
        .iter()
        .filter(|x| x.is_finite())
        .map(|x| (x - m).abs())
        .collect();
    median(&deviations).map(|d| d * 1.4826)
}

/// Mean of the values; `None` for an empty slice.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample variance (n - 1); `None` below two values.
fn variance(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    (values.len() >= 2)
        .then(|| values.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64)
}

/// P(T <= t) for Student's t with `df` degrees of freedom; a shift with no
/// spread at all is certain either way, and no shift is no evidence.
fn t_cdf(t: f64, df: f64) -> Option<f64> {
    if t.is_nan() {
        return Some(0.5);
    }
    if t.is_infinite() {
        return Some(if t < 0.0 { 0.0 } else { 1.0 });
    }
    let p = StudentsT::new(0.0, 1.0, df.max(1.0)).ok()?.cdf(t);
    p.is_finite().then_some(p)
}

/// `numerator / sqrt(variance)` where a zero spread makes any non-zero
/// shift certain (±inf) and no shift none (NaN -> p = 0.5 both ways).
fn t_stat(shift: f64, var: f64) -> f64 {
    if var > 0.0 {
        shift / var.sqrt()
    } else if shift == 0.0 {
        f64::NAN
    } else {
        shift * f64::INFINITY
    }
}

/// One-sided p-value that the mean of `after` is *below* that of `before`:
/// Welch's t-test (unequal variances, Welch-Satterthwaite degrees of
/// freedom). The values must be independent readings (`blocks`): fed
/// overlapping `rate()` samples, it would take 18 samples sharing most of
/// their data for 18 pieces of evidence. `None` below two values a side.
pub fn welch_p_less(after: &[f64], before: &[f64]) -> Option<f64> {
    let (va, vb) = (variance(after)?, variance(before)?);
    let (na, nb) = (after.len() as f64, before.len() as f64);
    let (sa, sb) = (va / na, vb / nb);
    let se2 = sa + sb;
    let df = if se2 > 0.0 {
        se2 * se2 / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0))
    } else {
        na + nb - 2.0
    };
    t_cdf(t_stat(mean(after)? - mean(before)?, se2), df)
}

/// One-sided p-value that the mean of `differences` (independent paired
/// readings, after minus before) is *below* zero: the one-sample t-test.
/// `None` below two values.
pub fn paired_t_p_less(differences: &[f64]) -> Option<f64> {
    let var = variance(differences)?;
    let n = differences.len() as f64;
    t_cdf(t_stat(mean(differences)?, var / n), n - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned against Student's t CDF integrated numerically in Python
    /// (what scipy's ttest_ind(equal_var=False) and ttest_1samp give).
    #[test]
    fn t_tests_known_values() {
        // a = 1,2,3,4 vs b = 3,4,5,6,7: t = -2.6112, df = 6.9808, p = 0.017469.
        let p = welch_p_less(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0, 7.0]).unwrap();
        assert!((p - 0.017469).abs() < 0.00001, "p = {p}");
        let q = welch_p_less(&[3.0, 4.0, 5.0, 6.0, 7.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((p + q - 1.0).abs() < 1e-9, "q = {q}");
        // d = -3,-1,-2: t = -3.4641, df = 2, p = 0.03709.
        let p = paired_t_p_less(&[-3.0, -1.0, -2.0]).unwrap();
        assert!((p - 0.03709).abs() < 0.0001, "p = {p}");
        // No spread: a shift is certain, none is no evidence.
        assert_eq!(paired_t_p_less(&[-1.0, -1.0]), Some(0.0));
        assert_eq!(paired_t_p_less(&[0.0, 0.0]), Some(0.5));
        assert_eq!(welch_p_less(&[5.0, 5.0], &[5.0, 5.0]), Some(0.5));
        assert_eq!(welch_p_less(&[6.0, 6.0], &[5.0, 5.0]), Some(1.0));
        assert_eq!(welch_p_less(&[1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn median_and_mad_known_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        // deviations from 3: 2,1,0,1,97 -> median 1
        let mad = scaled_mad(&[1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
        assert!((mad - 1.4826).abs() < 1e-12);
    }
}
