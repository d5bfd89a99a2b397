//! Percentiles of a stream in bounded memory.
//!
//! The first [`EXACT_CAPACITY`] samples are kept as they are, so small
//! inputs get exact percentiles. Past that, every sample goes into a
//! logarithmic sketch (the DDSketch construction): bucket `k` holds the
//! values in `(γ^(k-1), γ^k]` with `γ = (1+α)/(1-α)`, and a bucket reports
//! `2γ^k/(γ+1)`, which is within a relative error `α` ([`RELATIVE_ERROR`],
//! 0.1%) of every value in it. Memory is the buffer plus one counter per
//! bucket in use: about 1,150 buckets per decade of values, whatever the
//! number of samples.
//!
//! Percentiles interpolate linearly between the two order statistics
//! around rank `p·(n-1)`, as k6 and numpy's default do. In sketch mode each
//! of the two comes from its bucket, so the result is within `α` (relative)
//! of the exact interpolated percentile. Count, sum, mean, min and max are
//! always exact.

/// Samples kept exactly before the sketch takes over (1 MiB of `f64`).
pub const EXACT_CAPACITY: usize = 1 << 17;

/// The sketch's relative error bound: 0.1%.
pub const RELATIVE_ERROR: f64 = 0.001;

/// A distribution fed one sample at a time.
#[derive(Debug, Clone)]
pub struct Distribution {
    /// False for a count/sum/min/max-only distribution (no percentiles).
    keep: bool,
    exact: Vec<f64>,
    sorted: bool,
    sketch: Option<Sketch>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
}

impl Default for Distribution {
    fn default() -> Distribution {
        Distribution::new()
    }
}

impl Distribution {
    pub fn new() -> Distribution {
        Distribution {
            keep: true,
            exact: Vec::new(),
            sorted: true,
            sketch: None,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: f64::NAN,
        }
    }

    /// A distribution that keeps count, sum, mean, min, max and the last
    /// sample but no percentiles: for counters and rates.
    pub fn summary_only() -> Distribution {
        Distribution {
            keep: false,
            ..Distribution::new()
        }
    }

    /// Adds a sample; NaN and ±Inf are not samples and are ignored.
    pub fn add(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.last = value;
        if !self.keep {
            return;
        }
        match &mut self.sketch {
            Some(sketch) => sketch.add(value),
            None if self.exact.len() < EXACT_CAPACITY => {
                self.exact.push(value);
                self.sorted = false;
            }
            None => {
                let mut sketch = Sketch::new(RELATIVE_ERROR);
                for v in self.exact.drain(..) {
                    sketch.add(v);
                }
                self.exact = Vec::new();
                sketch.add(value);
                self.sketch = Some(sketch);
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The last sample added (a gauge's final value).
    pub fn last(&self) -> Option<f64> {
        (self.count > 0).then_some(self.last)
    }

    /// False once the sketch took over: percentiles are then within
    /// [`RELATIVE_ERROR`] of the exact ones.
    pub fn is_exact(&self) -> bool {
        self.sketch.is_none()
    }

    /// The `percent` percentile (0-100), `None` without samples.
    pub fn percentile(&mut self, percent: f64) -> Option<f64> {
        if self.count == 0 || !self.keep {
            return None;
        }
        let rank = (percent / 100.0).clamp(0.0, 1.0) * (self.count - 1) as f64;
        let lo = rank.floor() as u64;
        let hi = rank.ceil() as u64;
        let (a, b) = match &self.sketch {
            Some(sketch) => (sketch.nth(lo), sketch.nth(hi)),
            None => {
                if !self.sorted {
                    self.exact.sort_unstable_by(f64::total_cmp);
                    self.sorted = true;
                }
                (self.exact[lo as usize], self.exact[hi as usize])
            }
        };
        let v = a + (b - a) * (rank - lo as f64);
        Some(v.clamp(self.min, self.max))
    }
}

/// Logarithmic buckets for positive and negative values, and a count of zeros.
#[derive(Debug, Clone)]
struct Sketch {
    ln_gamma: f64,
    gamma: f64,
    positive: Store,
    negative: Store,
    zeros: u64,
}

impl Sketch {
    fn new(alpha: f64) -> Sketch {
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        Sketch {
            ln_gamma: gamma.ln(),
            gamma,
            positive: Store::default(),
            negative: Store::default(),
            zeros: 0,
        }
    }

    fn key(&self, magnitude: f64) -> i32 {
        (magnitude.ln() / self.ln_gamma).ceil() as i32
    }

    fn value(&self, key: i32) -> f64 {
        2.0 * (key as f64 * self.ln_gamma).exp() / (self.gamma + 1.0)
    }

    fn add(&mut self, v: f64) {
        if v > f64::MIN_POSITIVE {
            let k = self.key(v);
            self.positive.add(k);
        } else if v < -f64::MIN_POSITIVE {
            let k = self.key(-v);
            self.negative.add(k);
        } else {
            self.zeros += 1;
        }
    }

    /// The `n`-th smallest sample (0-based), as its bucket reports it.
    fn nth(&self, n: u64) -> f64 {
        let negatives = self.negative.total;
        if n < negatives {
            // Most negative first: the largest magnitudes first.
            let k = self.negative.key_of_rank(negatives - 1 - n);
            return -self.value(k);
        }
        let n = n - negatives;
        if n < self.zeros {
            return 0.0;
        }
        let k = self.positive.key_of_rank(n - self.zeros);
        self.value(k)
    }
}

/// Counts per bucket key, dense from `offset`.
#[derive(Debug, Clone, Default)]
struct Store {
    offset: i32,
    counts: Vec<u64>,
    total: u64,
}

impl Store {
    fn add(&mut self, key: i32) {
        if self.counts.is_empty() {
            self.offset = key;
        }
        if key < self.offset {
            let grow = (self.offset - key) as usize;
            let mut counts = vec![0; grow + self.counts.len()];
            counts[grow..].copy_from_slice(&self.counts);
            self.counts = counts;
            self.offset = key;
        }
        let i = (key - self.offset) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.total += 1;
    }

    /// The key of the bucket holding the `rank`-th smallest magnitude.
    fn key_of_rank(&self, rank: u64) -> i32 {
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                return self.offset + i as i32;
            }
        }
        self.offset + self.counts.len().saturating_sub(1) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy's default percentile (linear between order statistics).
    fn exact(values: &[f64], percent: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = percent / 100.0 * (v.len() - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
    }

    #[test]
    fn small_inputs_are_exact_and_interpolated_like_k6() {
        let mut d = Distribution::new();
        for v in [1.0, 2.0, 3.0, 4.0, f64::NAN] {
            d.add(v);
        }
        assert!(d.is_exact());
        assert_eq!(d.count(), 4);
        assert_eq!(d.percentile(50.0), Some(2.5));
        assert!((d.percentile(95.0).unwrap() - 3.85).abs() < 1e-12);
        assert_eq!(d.percentile(100.0), Some(4.0));
        assert_eq!(
            (d.mean(), d.min(), d.max(), d.last()),
            (Some(2.5), Some(1.0), Some(4.0), Some(4.0))
        );
        assert_eq!(Distribution::new().percentile(99.0), None);
    }

    #[test]
    fn past_the_buffer_the_sketch_stays_within_its_error_bound() {
        // A skewed, latency-like spread over five decades, with zeros and
        // a few negative values, three times the exact buffer.
        let n = 3 * EXACT_CAPACITY;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let values: Vec<f64> = (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                match i % 1000 {
                    0 => 0.0,
                    1 => -5.0 * u,
                    _ => 0.05 * (u * 11.5).exp(),
                }
            })
            .collect();
        let mut d = Distribution::new();
        for v in &values {
            d.add(*v);
        }
        assert!(!d.is_exact());
        for p in [5.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
            let want = exact(&values, p);
            let got = d.percentile(p).unwrap();
            let err = ((got - want) / want).abs();
            assert!(
                err <= RELATIVE_ERROR + 1e-12,
                "p{p}: {got} vs {want} ({err})"
            );
        }
        assert_eq!(d.count(), n as u64);
        assert_eq!(d.max(), values.iter().copied().reduce(f64::max));
    }
}
