//! Human output for `tune` and `rollback`: a table per cycle, the final SLA,
//! the plan of a dry run. Machines get the same reports as JSON.

use comfy_table::Table;

use super::term;

use crate::config::Config;
use crate::tune::report::{CycleReport, DryRunPlan, RunReport};
use crate::tune::rollback::RollbackReport;

fn table() -> Table {
    super::styled()
}

fn value(config: &Config, metric: &str, v: Option<f64>) -> String {
    match (v, config.metrics.get(metric)) {
        (Some(v), Some(def)) => def.unit.format(v),
        (Some(v), None) => v.to_string(),
        (None, _) => "-".into(),
    }
}

/// The goal's value in the units it was judged in.
fn goal_value(config: &Config, c: &CycleReport, v: Option<f64>) -> String {
    match (v, config.metrics.get(&c.goal_metric)) {
        (Some(v), Some(def)) if c.goal_per_transaction => def.unit.format_per_transaction(v),
        _ => value(config, &c.goal_metric, v),
    }
}

/// Throughput before and after with its band, or why it was not counted.
pub fn throughput(c: &CycleReport) -> String {
    match &c.throughput {
        Some(t) => crate::judge::describe_throughput(t),
        None if c.verdict.is_none() => "not judged (interrupted)".into(),
        None => "not counted (no PostgreSQL transaction counter in both windows)".into(),
    }
}

fn cycle_table(config: &Config, c: &CycleReport) -> String {
    let mut t = table();
    let was = c.mv.from.clone().unwrap_or_else(|| "default".into());
    let verdict = match c.verdict {
        Some(v) if c.kept => format!("{v} {} kept", term::arrow()),
        Some(v) => format!("{v} {} rolled back", term::arrow()),
        None => format!("interrupted {} rolled back", term::arrow()),
    };
    t.set_header(vec![format!("cycle {}", c.cycle), c.change_id.clone()]);
    t.add_row(vec![
        "goal".to_string(),
        format!("{} ({})", c.goal_metric, c.symptom),
    ]);
    t.add_row(vec![
        "lever".to_string(),
        format!("{} (was {was})", c.assignment),
    ]);
    t.add_row(vec![
        "cost".to_string(),
        format!("{}, {}", c.cost, c.plan.disruption),
    ]);
    // The evidence row says which: a median, or for WAL windows opened by a
    // CHECKPOINT, a mean; per transaction when the goal was divided by the
    // throughput.
    let center = match &c.evidence {
        Some(e) if e.contains("mean from") => "goal mean",
        _ => "goal median",
    };
    let goal = |v| goal_value(config, c, v);
    t.add_row(vec![
        center.to_string(),
        format!(
            "{} {} {}",
            goal(c.goal_before),
            term::arrow(),
            goal(c.goal_after)
        ),
    ]);
    t.add_row(vec!["throughput".to_string(), throughput(c)]);
    t.add_row(vec![
        "samples".to_string(),
        format!("{} before, {} after", c.samples_before, c.samples_after),
    ]);
    t.add_row(vec!["verdict".to_string(), verdict]);
    t.add_row(vec!["why".to_string(), c.reason.clone()]);
    if let Some(e) = &c.evidence {
        t.add_row(vec!["evidence".to_string(), e.clone()]);
    }
    if let Some(p) = &c.provisional {
        t.add_row(vec!["note".to_string(), p.clone()]);
    }
    t.to_string()
}

fn plan_text(p: &DryRunPlan) -> String {
    let mut out = format!(
        "Plan for cycle 1 (dry run, nothing changed):\n  goal:   {} ({})\n  lever:  {} (was {}; cost {}, {})\n  steps:\n",
        p.goal_metric,
        p.symptom,
        p.assignment,
        p.mv.from.clone().unwrap_or_else(|| "default".into()),
        p.cost,
        p.plan.disruption
    );
    for (i, step) in p.plan.steps.iter().enumerate() {
        out.push_str(&format!("    {}. {step}\n", i + 1));
    }
    out.push_str(&format!("  judged: {}\n", p.windows));
    for s in &p.skipped {
        out.push_str(&format!("  skipped {}: {}\n", s.lever, s.reason));
    }
    out
}

pub fn run_human(config: &Config, report: &RunReport) -> String {
    let mut out = String::new();
    if !report.recovered.is_empty() {
        out.push_str("An interrupted run left changes open; restored them first:\n");
        for u in &report.recovered {
            out.push_str(&format!("  {}: {} restored\n", u.change_id, u.restores));
        }
        out.push('\n');
    }
    for c in &report.cycles {
        out.push_str(&cycle_table(config, c));
        out.push_str("\n\n");
    }
    if let Some(plan) = &report.dry_run {
        out.push_str(&plan_text(plan));
        out.push('\n');
    }
    if let Some(sla) = &report.sla {
        out.push_str(&super::sla::table(sla));
        out.push('\n');
    }
    if let Some(b) = &report.backup {
        out.push_str(&format!("backup: {}\n", b.display()));
    }
    out.push_str(&report.message);
    out.push('\n');
    out
}

pub fn rollback_human(report: &RollbackReport) -> String {
    let mut out = String::new();
    if !report.undone.is_empty() {
        let mut t = table();
        t.set_header(vec!["change", "lever", "restores", "was", "plan"]);
        for u in &report.undone {
            let plan = u
                .plan
                .as_ref()
                .map(|p| p.steps.join("; "))
                .unwrap_or_else(|| "done".into());
            t.add_row(vec![
                u.change_id.clone(),
                u.lever.clone(),
                u.restores.clone(),
                format!("{:?}", u.was).to_lowercase(),
                plan,
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    for u in &report.undone {
        if let Some(d) = &u.drift {
            out.push_str(&format!("warning: {d}\n"));
        }
    }
    out.push_str(&report.message);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::tests::{is, metrics, World};
    use crate::tune::Shutdown;

    #[tokio::test(start_paused = true)]
    async fn every_verdict_line_shows_throughput_with_its_band() {
        for per in [true, false] {
            let (w, report) = crate::tune::tests::throughput::closed_loop_run(per).await;
            let human = run_human(&w.config, &report);
            assert!(
                human.contains("median 900 → 700 tx/s (-22.2%), noise band ±45 tx/s (drift between two windows before the change ±0 tx/s), Welch t over 15 independent readings a window p<0.0001 (fell)")
                    && human.contains("median 900 → 900 tx/s (+0.0%), noise band ±45 tx/s (drift between two windows before the change ±0 tx/s), Welch t over 15 independent readings a window p=0.5000 (within noise)"),
                "per: {per}: {human}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reports_render_as_tables_and_json() {
        let w = World::new(World::default_backend());
        let obs = w.observer(|l| {
            if is(l, "max_wal_size", "4GB") {
                metrics(60.0, 100.0)
            } else {
                metrics(150.0, 100.0)
            }
        });
        let report = w.run(&obs, 5).await;
        let text = run_human(&w.config, &report);
        for needle in [
            "cycle 1",
            "max_wal_size=4GB (was 1GB)",
            "low, reload",
            "150B/s → 60B/s",
            "improved → kept",
            "60 before, 60 after",
            "noise band ±",
            "SLA met",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["outcome"], "sla_met");
        assert_eq!(json["cycles"][0]["verdict"], "improved");
        assert_eq!(json["cycles"][0]["plan"]["disruption"], "reload");

        let (_keep, mut shutdown) = Shutdown::new();
        let w2 = World::new(World::default_backend());
        let obs2 = w2.observer(|_| metrics(150.0, 100.0));
        let dry = w2.tune(&obs2, 5, true, &mut shutdown).await.unwrap();
        let text = run_human(&w2.config, &dry);
        assert!(
            text.contains("1. ALTER SYSTEM SET max_wal_size = '4GB'"),
            "{text}"
        );
        assert!(text.contains("2. SELECT pg_reload_conf()"), "{text}");
        assert!(text.contains("dry run: nothing was changed"), "{text}");
    }
}
