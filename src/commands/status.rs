//! `tuner status`: each metric now, against its baseline and objective.

use super::context;
use crate::cli::{Cli, OutputFormat, StatusArgs};
use crate::config::Config;
use crate::exit::{self, UsageError};
use crate::metrics::{evaluate, Baseline, Metrics, MetricsError, SlaReport, State};

pub async fn run(cli: &Cli, args: &StatusArgs) -> anyhow::Result<u8> {
    if args.health {
        return super::health::run(cli).await;
    }
    let config = context::load_config(cli)?;
    let prometheus = context::prometheus(&config)?;
    let baseline = Baseline::load(&config.paths.baseline).map_err(UsageError)?;
    let report = measure(&config, &prometheus, baseline.as_ref()).await?;
    match cli.output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Table => print_table(&report, baseline.as_ref(), &config),
    }
    Ok(if report.violated() {
        exit::SLA_VIOLATED
    } else {
        exit::OK
    })
}

/// Queries every metric concurrently and judges the values. Any query error
/// fails the whole report: a half-measured SLA must not read as healthy.
pub async fn measure(
    config: &Config,
    metrics: &dyn Metrics,
    baseline: Option<&Baseline>,
) -> anyhow::Result<SlaReport> {
    let queries = config
        .metrics
        .iter()
        .map(|(name, def)| async move { (name.clone(), metrics.instant(name, &def.query).await) });
    let results = futures::future::join_all(queries).await;
    let mut values = std::collections::BTreeMap::new();
    let mut query_errors = Vec::new();
    for (name, result) in results {
        match result {
            Ok(v) => {
                values.insert(name, v);
            }
            Err(e @ (MetricsError::Unreachable { .. } | MetricsError::Timeout { .. })) => {
                return Err(e.into())
            }
            Err(e) => query_errors.push(e.to_string()),
        }
    }
    if !query_errors.is_empty() {
        let source = config.source.display();
        return Err(anyhow::Error::new(UsageError(query_errors.join("\n")))
            .context(format!("fix the metric queries in {source}")));
    }
    Ok(evaluate(config, baseline, |name| {
        values.get(name).copied().flatten()
    }))
}

fn print_table(report: &SlaReport, baseline: Option<&Baseline>, config: &Config) {
    let mut t = crate::output::table(&["metric", "current", "baseline", "objective", "state"]);
    for m in &report.metrics {
        let fmt = |v: Option<f64>| v.map(|v| m.unit.format(v));
        let limit = match (&m.objective, m.limit) {
            (Some(o), Some(l)) if o.contains("baseline") => format!("{o} = {}", m.unit.format(l)),
            (Some(o), _) => o.clone(),
            (None, _) => "-".into(),
        };
        let state = match m.state {
            State::Violated => "VIOLATED".to_string(),
            other => other.label().to_string(),
        };
        t.add_row(vec![
            m.name.clone(),
            fmt(m.value).unwrap_or_else(|| "no data".into()),
            fmt(m.baseline).unwrap_or_else(|| "-".into()),
            limit,
            state,
        ]);
    }
    println!("profile: {}", report.profile);
    println!("{t}");
    match baseline {
        Some(b) => println!(
            "baseline captured {} ({})",
            b.captured_at
                .with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M"),
            config.paths.baseline.display()
        ),
        None => println!(
            "no baseline yet at {}: run `tuner baseline` for relative objectives",
            config.paths.baseline.display()
        ),
    }
    let violated: Vec<&str> = report
        .metrics
        .iter()
        .filter(|m| m.state == State::Violated)
        .map(|m| m.name.as_str())
        .collect();
    if !violated.is_empty() {
        println!("SLA violated: {} (exit 3)", violated.join(", "));
    }
}
