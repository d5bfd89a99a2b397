//! `tuner check`: a performance budget against result files (k6, Locust,
//! pgbench) or live Prometheus. Prints PASS / WARN / FAIL per objective,
//! writes JUnit for CI, exits 3 when an objective fails.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::context;
use crate::cli::{CheckArgs, Cli, InputFormat, OutputFormat};
use crate::config::units::{parse_duration_within, parse_percent, Limit};
use crate::exit::{self, UsageError};
use crate::gate::{self, budget, Budget, Format};
use crate::metrics::{measure, Baseline, WalWindow};

pub async fn run(cli: &Cli, args: &CheckArgs) -> anyhow::Result<u8> {
    // Everything the user gave is checked before anything is read.
    let budget_path = args
        .budget
        .clone()
        .unwrap_or_else(|| PathBuf::from(budget::DEFAULT_PATH));
    let budget = Budget::load(&budget_path)?;
    let max_regression = args
        .max_regression
        .as_deref()
        .map(|r| match parse_percent(r) {
            Ok(v) if v >= 0.0 => Ok(v),
            Ok(_) => Err(UsageError(format!(
                "--max-regression {r:?} must be 0% or more"
            ))),
            Err(e) => Err(UsageError(format!("--max-regression: {e}"))),
        })
        .transpose()?;
    let baseline = args
        .baseline
        .as_deref()
        .map(|path| load_baseline(path).map(|b| (path, b)))
        .transpose()?;

    let started = Instant::now();
    let reading = if args.live {
        let config = context::load_config(cli)?;
        gate::live::check_objectives(&budget, &config)?;
        let wal = match &args.window {
            None => WalWindow::from_config(&config),
            Some(w) => WalWindow::History {
                span: parse_duration_within(w, Limit::Window)
                    .map_err(|e| UsageError(format!("--window: {e}")))?,
                step: config.tune.clone().unwrap_or_default().sample_interval,
            },
        };
        let prometheus = context::prometheus(&config)?;
        let sla = measure(&prometheus, &config, None, wal).await?;
        gate::live::reading(&budget, &config, &sla)?
    } else {
        let files = args.files.clone();
        let format = format_of(args.format);
        let objectives = budget.clone();
        tokio::task::spawn_blocking(move || gate::read_files(&files, format, &objectives))
            .await
            .context("the file reader stopped")??
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut report = gate::evaluate(&budget, reading, seconds)?;
    if let Some((path, b)) = &baseline {
        let rows = gate::baseline::compare(&report, &budget, b, path, max_regression)?;
        report.extend(rows);
    }

    // Files are written only once everything was read and judged.
    if let Some(path) = &args.junit {
        let xml = gate::junit::render(&report, chrono::Utc::now());
        crate::journal::atomic::write_atomic(path, xml.as_bytes())
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    if let Some(path) = &args.save_baseline {
        let text = gate::baseline::to_yaml(&gate::baseline::capture(&report))?;
        crate::journal::atomic::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write the baseline {}", path.display()))?;
    }
    let code = exit::for_check(report.verdict);
    match cli.output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Table => {
            crate::output::emit_raw(&crate::output::check::render(&report, code))?
        }
    }
    Ok(code)
}

fn format_of(format: InputFormat) -> Option<Format> {
    match format {
        InputFormat::Auto => None,
        InputFormat::K6Summary => Some(Format::K6Summary),
        InputFormat::K6Json => Some(Format::K6Stream),
        InputFormat::Locust => Some(Format::Locust),
        InputFormat::Pgbench => Some(Format::PgbenchSummary),
        InputFormat::PgbenchLog => Some(Format::PgbenchLog),
    }
}

/// A baseline asked for by name must exist.
fn load_baseline(path: &Path) -> Result<Baseline, UsageError> {
    match Baseline::load(path) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(UsageError(format!(
            "baseline file {} not found; write one with `tuner baseline` or `tuner check --save-baseline`",
            path.display()
        ))),
        Err(e) => Err(UsageError(e)),
    }
}
