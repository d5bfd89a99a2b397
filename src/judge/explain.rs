//! How a judgement explains itself: a shift in words, and why a WAL
//! verdict may be provisional or conservative.

use super::{JudgeInput, Movement, Shift, Statistic};
use crate::config::units::format_duration;

/// `median 100 → 80 (-20.0%), noise band ±3, Welch t over 4 independent
/// readings a window p=0.0002`, prefixed `per transaction, ` for a metric
/// divided by the throughput.
pub fn describe(s: &Shift) -> String {
    let pct = percent(s);
    let p = p_value(s);
    let (center, test) = match s.statistic {
        Statistic::Median => ("median", "Welch t"),
        Statistic::AlignedMean => ("mean from a CHECKPOINT", "paired by time since it, t"),
        Statistic::AlignedMeanByWork => (
            "mean from a CHECKPOINT",
            "paired by transactions since it, t",
        ),
    };
    let test = format!("{test} over {}", readings(s));
    let band = match s.drift {
        Some(d) if d >= s.noise => format!(
            "noise band ±{} (the drift between two windows before the change)",
            short(s.noise)
        ),
        Some(d) => format!(
            "noise band ±{} (drift between two windows before the change ±{})",
            short(s.noise),
            short(d)
        ),
        None => format!("noise band ±{}", short(s.noise)),
    };
    let per = if s.per_transaction {
        "per transaction, "
    } else {
        ""
    };
    format!(
        "{per}{center} {} → {}{pct}, {band}, {test} {p}",
        short(s.before),
        short(s.after)
    )
}

/// `median 894 → 478 tx/s (-46.5%), noise band ±44.7 tx/s, Welch t over 3
/// independent readings a window p<0.0001 (fell)`: throughput, the guard every change answers to, in the
/// words of every verdict line and changelog entry.
pub fn describe_throughput(s: &Shift) -> String {
    let how = match s.movement {
        Movement::Worse => "fell",
        Movement::Better => "rose",
        Movement::WithinNoise => "within noise",
    };
    format!("{} ({how})", throughput_numbers(s))
}

/// The numbers of `describe_throughput`, without the movement.
pub(super) fn throughput_numbers(s: &Shift) -> String {
    let drift = match s.drift {
        Some(d) if d >= s.noise => " (the drift between two windows before the change)".into(),
        Some(d) => format!(
            " (drift between two windows before the change ±{} tx/s)",
            short(d)
        ),
        None => String::new(),
    };
    format!(
        "median {} → {} tx/s{}, noise band ±{} tx/s{drift}, Welch t over {} {}",
        short(s.before),
        short(s.after),
        percent(s),
        short(s.noise),
        readings(s),
        p_value(s)
    )
}

/// `4 independent readings a window`: how much evidence the test had.
fn readings(s: &Shift) -> String {
    let pairs = matches!(
        s.statistic,
        Statistic::AlignedMean | Statistic::AlignedMeanByWork
    );
    if pairs {
        format!("{} independent pairs", s.readings)
    } else {
        format!("{} independent readings a window", s.readings)
    }
}

/// ` (-20.0%)`, or nothing from a zero.
fn percent(s: &Shift) -> String {
    if s.before != 0.0 {
        format!(" ({:+.1}%)", (s.after - s.before) / s.before.abs() * 100.0)
    } else {
        String::new()
    }
}

/// The p-value of the direction the shift moved (of a gain when it did not).
fn p_value(s: &Shift) -> String {
    let p = match s.movement {
        Movement::Worse => s.p_worse,
        _ => s.p_better,
    };
    if p < 1e-4 {
        "p<0.0001".to_string()
    } else {
        format!("p={p:.4}")
    }
}

pub(super) fn short(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

pub(super) fn provisional(input: &JudgeInput<'_>) -> Option<String> {
    if !input.wal_goal {
        return None;
    }
    match input.checkpoint_timeout {
        Some(cycle) if input.observed >= cycle => None,
        Some(cycle) if input.aligned => Some(format!(
            "conservative: both windows start at a CHECKPOINT and last {}, less than the {} checkpoint cycle, so each holds one full-page-image burst; spacing checkpoints beyond the window is not credited",
            format_duration(input.observed),
            format_duration(cycle)
        )),
        Some(cycle) => Some(format!(
            "provisional: observed {} is shorter than the {} checkpoint cycle, so the window may hold no checkpoint and show the full-page-image-free floor",
            format_duration(input.observed),
            format_duration(cycle)
        )),
        None => Some("provisional: the server's checkpoint_timeout could not be read, so the window may not cover a checkpoint cycle".into()),
    }
}
