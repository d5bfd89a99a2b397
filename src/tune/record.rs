//! Turning a cycle (or a rollback) into a `CHANGELOG_TUNING.md` section.

use chrono::Utc;

use super::cycle::Context;
use super::observe::Windows;
use super::report::CycleReport;
use super::TuneError;
use crate::config::units::format_duration;
use crate::config::Config;
use crate::journal::changelog::{self, ChangelogEntry};
use crate::judge::{describe, describe_throughput, Judgement, Movement};
use crate::levers::catalog::Lever;
use crate::levers::port::Move;

fn value(config: &Config, metric: &str, v: Option<f64>) -> String {
    match (v, config.metrics.get(metric)) {
        (Some(v), Some(def)) => def.unit.format(v),
        (Some(v), None) => format!("{v}"),
        (None, _) => "n/a".into(),
    }
}

/// The goal's value in the units it was judged in (per transaction when it
/// was divided by the throughput).
fn goal_value(config: &Config, cycle: &CycleReport, v: Option<f64>) -> String {
    match (v, config.metrics.get(&cycle.goal_metric)) {
        (Some(v), Some(def)) if cycle.goal_per_transaction => def.unit.format_per_transaction(v),
        _ => value(config, &cycle.goal_metric, v),
    }
}

fn goal_name(cycle: &CycleReport) -> String {
    if cycle.goal_per_transaction {
        format!("{} per transaction", cycle.goal_metric)
    } else {
        cycle.goal_metric.clone()
    }
}

fn was(lever: &Lever, mv: &Move) -> String {
    lever
        .assignment(mv.from.as_deref())
        .split_once('=')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

pub(crate) fn changelog(
    cx: &Context<'_>,
    cycle: &CycleReport,
    lever: &Lever,
    judgement: Option<&Judgement>,
    windows: &Windows,
) -> Result<(), TuneError> {
    let result = match (cycle.verdict, cycle.kept) {
        (Some(v), true) => format!("✅ {v}"),
        (Some(v), false) => format!("↩️ rolled back ({v}): {}", cycle.reason),
        (None, _) => format!("↩️ rolled back: {}", cycle.reason),
    };
    let mut details = vec![
        format!(
            "Change: {} (cycle {}, symptom {}, cost {}, {}; was {})",
            cycle.change_id,
            cycle.cycle,
            cycle.symptom,
            cycle.cost,
            cycle.plan.disruption,
            was(lever, &cycle.mv)
        ),
        format!(
            "Window: {} before vs {} after, every {}, after {} settle; {} samples before, {} after",
            format_duration(windows.observe),
            format_duration(windows.observe),
            format_duration(windows.interval),
            format_duration(windows.settle),
            cycle.samples_before,
            cycle.samples_after
        ),
    ];
    if let Some(j) = judgement {
        if let Some(g) = &j.goal {
            details.push(format!("Evidence: {} ({})", describe(g), j.verdict));
        }
        details.push(match &j.throughput {
            Some(t) => format!("Throughput: {}", describe_throughput(t)),
            None => {
                "Throughput: not counted (no PostgreSQL transaction counter in both windows)".into()
            }
        });
        if let Some(p) = &j.provisional {
            details.push(format!("Note: {p}"));
        }
        let others: Vec<String> = j
            .others
            .iter()
            .map(|s| {
                let how = match s.movement {
                    Movement::Better => "better",
                    Movement::Worse => "worse",
                    Movement::WithinNoise => "within noise",
                };
                let v = |x| match cx.config.metrics.get(&s.metric) {
                    Some(def) if s.per_transaction => def.unit.format_per_transaction(x),
                    _ => value(cx.config, &s.metric, Some(x)),
                };
                format!("{} {} → {} ({how})", s.metric, v(s.before), v(s.after))
            })
            .collect();
        if !others.is_empty() {
            details.push(format!("Other metrics: {}", others.join("; ")));
        }
    }
    let entry = ChangelogEntry {
        at: Utc::now(),
        lever: cycle.assignment.clone(),
        goal: Some((
            goal_name(cycle),
            goal_value(cx.config, cycle, cycle.goal_before),
            goal_value(cx.config, cycle, cycle.goal_after),
        )),
        result,
        details,
    };
    Ok(changelog::append(&cx.changelog, &entry)?)
}

/// A rollback done by `tuner rollback`.
pub(crate) fn rollback_entry(
    path: &std::path::Path,
    change_id: &str,
    lever: &Lever,
    mv: &Move,
    why: &str,
) -> Result<(), TuneError> {
    let entry = ChangelogEntry {
        at: Utc::now(),
        lever: lever.assignment(mv.from.as_deref()),
        goal: None,
        result: format!("↩️ rolled back by `tuner rollback`: {why}"),
        details: vec![format!(
            "Change: {change_id} undone ({} restored to {})",
            lever.name,
            was(lever, mv)
        )],
    };
    Ok(changelog::append(path, &entry)?)
}
