//! Independent readings: which samples of a window share no data.
//!
//! A sample of `rate(x[30s])` taken every 5 s shares 25 s of its data with
//! the next one, so 180 samples of a 15-minute window are 30 readings, not
//! 180: a rank or sign test over all of them takes the same burst of load
//! for six pieces of evidence, and on the demo called a change that did
//! nothing (`max_wal_size` 64MB -> 4GB under a 30 s `checkpoint_timeout`)
//! `regressed` at p = 0.0005. Counting the rate's own overlap away instead
//! (an effective sample size from the samples' autocorrelation) needs more
//! samples than a short window has, and in a window that opens with a
//! CHECKPOINT the burst's decay reads as correlation too: it left one
//! effective sample of 18 and lost real WAL cuts.
//!
//! So the tests use the samples spaced at least one lookback apart, counted
//! back from the last: each is the counter's increase over its own stretch,
//! and together they tile the window, so their mean is the window's own
//! increase (what it wrote in all) and their spread is the spread of
//! independent stretches. What is left of a real process' correlation from
//! one stretch to the next (load that wanders over minutes) the band's
//! drift between two windows of one setting covers (`reference`).

use std::time::Duration;

/// How many samples apart two readings share no data: the lookback of the
/// metric's query over the sampling interval, rounded up, at least 1.
pub fn stride(lookback: Duration, interval: Duration) -> usize {
    if interval.is_zero() {
        return 1;
    }
    let ratio = lookback.as_secs_f64() / interval.as_secs_f64();
    // A lookback a hair over a whole number of intervals (clock rounding)
    // still tiles at that number.
    (ratio - 1e-9).ceil().max(1.0) as usize
}

/// Every `stride`-th item counted back from the last one, in their order:
/// readings that share no data (module doc).
pub fn thin<T: Clone>(items: &[T], stride: usize) -> Vec<T> {
    let stride = stride.max(1);
    let mut out: Vec<T> = items.iter().rev().step_by(stride).cloned().collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_one_lookback_apart_counted_back_from_the_last() {
        let s = |secs| Duration::from_secs(secs);
        assert_eq!(stride(s(30), s(5)), 6);
        assert_eq!(stride(s(5), s(1)), 5);
        assert_eq!(stride(s(7), s(5)), 2);
        assert_eq!(stride(s(1), s(5)), 1);
        assert_eq!(stride(Duration::ZERO, s(5)), 1);
        assert_eq!(stride(s(5), Duration::ZERO), 1);
        let items: Vec<u32> = (0..12).collect();
        assert_eq!(thin(&items, 5), vec![1, 6, 11]);
        assert_eq!(thin(&items, 1), items);
        assert_eq!(thin(&items, 20), vec![11]);
    }
}
