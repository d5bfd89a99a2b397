//! `tuner baseline`: seed 000 step 1 — capture what normal looks like.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;

use super::context;
use crate::cli::{BaselineArgs, Cli, OutputFormat};
use crate::config::units::format_duration;
use crate::config::Config;
use crate::exit;
use crate::journal::{backup_with_timestamp, write_atomic};
use crate::metrics::{Baseline, BaselineMetric, Metrics, MetricsError};
use crate::output;

pub async fn run(cli: &Cli, args: &BaselineArgs) -> anyhow::Result<u8> {
    let config = context::load_config(cli)?;
    let prometheus = context::prometheus(&config)?;
    let baseline = capture(&config, &prometheus).await?;
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| config.paths.baseline.clone());
    let yaml = baseline.to_yaml();

    if args.dry_run {
        output::note(&format!(
            "dry run: would write {} ({} metrics); nothing written",
            path.display(),
            baseline.metrics.len()
        ));
        match cli.output {
            OutputFormat::Json => output::print_json(&baseline)?,
            OutputFormat::Table => output::emit_raw(&yaml)?,
        }
        return Ok(exit::OK);
    }

    let backup = backup_with_timestamp(&path)
        .with_context(|| format!("cannot back up the old baseline {}", path.display()))?;
    write_atomic(&path, yaml.as_bytes())
        .with_context(|| format!("cannot write baseline {}", path.display()))?;
    match cli.output {
        OutputFormat::Json => output::print_json(&serde_json::json!({
            "written": path,
            "backup": backup,
            "baseline": baseline,
        }))?,
        OutputFormat::Table => {
            let mut t = output::table(&["metric", "mean", "peak", "samples", "window"]);
            for (name, m) in &baseline.metrics {
                let fmt = |v: Option<f64>| {
                    v.map(|v| m.unit.format(v))
                        .unwrap_or_else(|| "no data".into())
                };
                t.add_row(vec![
                    name.clone(),
                    fmt(m.value),
                    fmt(m.peak),
                    m.samples.to_string(),
                    m.window.clone(),
                ]);
            }
            let mut text = format!("{t}\nbaseline written to {}", path.display());
            if let Some(b) = backup {
                text.push_str(&format!("\nprevious baseline kept as {}", b.display()));
            }
            output::emit(&text)?;
        }
    }
    for (name, m) in &baseline.metrics {
        if m.value.is_none() {
            eprintln!(
                "warning: {name}: Prometheus has no data over the last {}; its baseline is empty",
                m.window
            );
        }
    }
    Ok(exit::OK)
}

/// Averages every metric over its own window, all queries concurrently.
pub async fn capture(config: &Config, metrics: &dyn Metrics) -> Result<Baseline, MetricsError> {
    let end = Utc::now();
    let queries = config.metrics.iter().map(|(name, def)| async move {
        let window =
            chrono::Duration::from_std(def.window).unwrap_or_else(|_| chrono::Duration::minutes(5));
        let step = step_for(def.window);
        let points = metrics
            .range(name, &def.query, end - window, end, step)
            .await?;
        let values: Vec<f64> = points.iter().map(|p| p.value).collect();
        let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
        let peak = values.iter().copied().reduce(f64::max);
        Ok::<_, MetricsError>((
            name.clone(),
            BaselineMetric {
                query: def.query.clone(),
                value: mean,
                peak,
                unit: def.unit,
                window: format_duration(def.window),
                samples: values.len(),
            },
        ))
    });
    let results = futures::future::join_all(queries).await;
    let mut out = BTreeMap::new();
    for r in results {
        let (name, m) = r?;
        out.insert(name, m);
    }
    let longest = config
        .metrics
        .values()
        .map(|m| m.window)
        .max()
        .unwrap_or_default();
    Ok(Baseline {
        captured_at: end,
        profile: config.profile.clone(),
        window: format_duration(longest),
        metrics: out,
    })
}

/// About 30 points per window, never finer than a typical 5s scrape.
fn step_for(window: Duration) -> Duration {
    (window / 30).clamp(Duration::from_secs(5), Duration::from_secs(60))
}
