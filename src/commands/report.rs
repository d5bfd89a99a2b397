//! `tuner report`: the HTML report of a tuning run, from tuning.log, the
//! journal and Prometheus, written atomically; its path on stdout.

use anyhow::Context as _;

use super::context;
use crate::cli::{Cli, OutputFormat, ReportArgs};
use crate::exit::{self, UsageError};
use crate::gate::report;
use crate::metrics::Baseline;
use crate::output;

pub async fn run(cli: &Cli, args: &ReportArgs) -> anyhow::Result<u8> {
    let config = context::load_config(cli)?;
    let log_path = args
        .tuning_log
        .clone()
        .unwrap_or_else(|| config.paths.tuning_log.clone());
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| super::tune::journal_path(&config));
    let file = args.file.clone().unwrap_or_else(|| {
        log_path
            .parent()
            .map(|d| d.join("tuning-report.html"))
            .unwrap_or_else(|| "tuning-report.html".into())
    });
    let since = args
        .since
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    UsageError(format!(
                        "--since {t:?}: {e}; write a time like 2026-12-07T14:00:00Z"
                    ))
                })
        })
        .transpose()?;
    let mut samples = report::read_tuning_log(&log_path)?;
    let (mut changes, mut deploys) = report::read_journal(&journal_path)?;
    if let Some(since) = since {
        samples.retain(|s| s.at >= since);
        changes.retain(|c| c.applied_at.or(c.decided_at).is_some_and(|t| t >= since));
        deploys.retain(|d| d.started_at >= since);
    }
    let baseline = Baseline::load(&config.paths.baseline).map_err(UsageError)?;
    let prometheus = context::prometheus(&config)?;
    let built = report::build(
        &config,
        &prometheus,
        baseline.as_ref(),
        samples,
        changes,
        deploys,
    )
    .await
    .ok_or_else(|| {
        UsageError(match &args.since {
            Some(t) => format!(
                "{} and {}: no sample, change or deploy since {t}",
                log_path.display(),
                journal_path.display()
            ),
            None => format!("{}: nothing to report", log_path.display()),
        })
    })?;
    for note in &built.notes {
        output::note(note);
    }
    let html = report::html::render(&built);
    crate::journal::atomic::write_atomic(&file, html.as_bytes())
        .with_context(|| format!("cannot write the report {}", file.display()))?;
    if cli.output == OutputFormat::Json {
        output::print_json(&serde_json::json!({
            "file": file,
            "plots": built.plots.iter().map(|p| &p.metric).collect::<Vec<_>>(),
            "changes": built.changes.len(),
            "deploys": built.deploys.len(),
            "samples": built.samples.len(),
        }))?;
    } else {
        output::emit(&format!(
            "wrote {} ({} plots, {} changes, {} deploys)",
            file.display(),
            built.plots.len(),
            built.changes.len(),
            built.deploys.len()
        ))?;
    }
    Ok(exit::OK)
}
