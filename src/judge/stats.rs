//! Robust statistics for before/after windows: medians and MAD instead of
//! means and standard deviations, because one checkpoint spike must not
//! decide a verdict; and a paired sign-flip test for windows that start at
//! the same point of the checkpoint cycle.

use statrs::distribution::{ContinuousCDF, Normal};
use statrs::stats_tests::mannwhitneyu::{mannwhitneyu, MannWhitneyUMethod};
use statrs::stats_tests::Alternative;

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

/// One-sided Mann-Whitney U p-value that `after` is stochastically *less*
/// than `before`. Always the asymptotic method with continuity correction:
/// statrs 0.19.1's exact method (picked by `Automatic` for ≤ 8 samples
/// without ties) returned p = 1.0 for fully separated samples.
pub fn p_less(after: &[f64], before: &[f64]) -> Option<f64> {
    mannwhitneyu(
        after,
        before,
        MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
        Alternative::Less,
    )
    .ok()
    .map(|(_, p)| p)
    .filter(|p| p.is_finite())
}

/// One-sided paired sign-flip (permutation) p-value that the paired
/// differences (`after - before`, one per pair) sum *below* zero: under "no
/// effect" each pair's sign is a coin flip, so p is the share of the 2^n sign
/// assignments whose sum is at most the observed one. Exact up to 20 pairs;
/// beyond, the normal approximation of the same distribution (mean 0,
/// variance the sum of squares). It tests the *sum* (hence the mean), which
/// is what a window of full-page-image bursts is judged by; a rank test
/// would weigh a 900-byte drop in the burst like a 3-byte wobble after it.
/// `None` with no non-zero difference.
pub fn paired_p_less(differences: &[f64]) -> Option<f64> {
    let d: Vec<f64> = differences
        .iter()
        .copied()
        .filter(|x| x.is_finite() && *x != 0.0)
        .collect();
    if d.is_empty() {
        return None;
    }
    let observed: f64 = d.iter().sum();
    let scale: f64 = d.iter().map(|x| x.abs()).sum();
    // Sums equal to the observed one up to rounding count as "at most".
    let tolerance = scale * 1e-12;
    if d.len() <= 20 {
        let n = d.len();
        let mut at_most = 0u64;
        for mask in 0u64..(1u64 << n) {
            let sum: f64 = d
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    if mask >> i & 1 == 1 {
                        -x.abs()
                    } else {
                        x.abs()
                    }
                })
                .sum();
            if sum <= observed + tolerance {
                at_most += 1;
            }
        }
        return Some(at_most as f64 / (1u64 << n) as f64);
    }
    let sd = d.iter().map(|x| x * x).sum::<f64>().sqrt();
    let p = Normal::new(0.0, 1.0).ok()?.cdf(observed / sd);
    p.is_finite().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned against a brute-force enumeration in Python: all ten pairs
    /// lower gives the single most extreme assignment, p = 1/1024.
    #[test]
    fn paired_sign_flip_known_values() {
        let down: Vec<f64> = (1..=10).map(|i| -f64::from(i)).collect();
        let p = paired_p_less(&down).unwrap();
        assert!((p - 1.0 / 1024.0).abs() < 1e-12, "p = {p}");
        let up: Vec<f64> = down.iter().map(|x| -x).collect();
        assert_eq!(paired_p_less(&up), Some(1.0));
        // Four big drops in a burst, then six wobbles: 55/1024.
        let burst = [
            -900.0, -700.0, -400.0, -200.0, 5.0, -3.0, 4.0, -2.0, 1.0, 3.0,
        ];
        let p = paired_p_less(&burst).unwrap();
        assert!((p - 0.0537109375).abs() < 1e-12, "p = {p}");
        // 30 pairs, -1..=-30: z = -465 / sqrt(9455) = -4.782, p = 8.67e-7.
        let long: Vec<f64> = (1..=30).map(|i| -f64::from(i)).collect();
        let p = paired_p_less(&long).unwrap();
        assert!((p - 8.672e-7).abs() < 0.01e-7, "p = {p}");
        assert_eq!(paired_p_less(&[0.0, 0.0]), None);
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

    /// Pinned: x = 1..=9 vs y = 10..=18, fully separated. U = 0, mean 40.5,
    /// sd = sqrt(9*9*19/12) = 11.3248, z = (40.5 - 0.5) / 11.3248 = 3.5321,
    /// one-sided p = 1 - Phi(3.5321) = 2.06e-4 (scipy's asymptotic gives the
    /// same). The reverse direction is near 1.
    #[test]
    fn mann_whitney_known_value() {
        let low: Vec<f64> = (1..=9).map(f64::from).collect();
        let high: Vec<f64> = (10..=18).map(f64::from).collect();
        let p = p_less(&low, &high).unwrap();
        assert!((p - 2.06e-4).abs() < 0.05e-4, "p = {p}");
        let q = p_less(&high, &low).unwrap();
        assert!(q > 0.99, "q = {q}");
        // Identical samples: no evidence either way.
        let same = p_less(&low, &low).unwrap();
        assert!(same > 0.4, "{same}");
    }
}
