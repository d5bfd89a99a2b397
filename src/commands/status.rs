//! `tuner status`: each metric now, against its baseline and objective.

use super::context;
use crate::cli::{Cli, OutputFormat, StatusArgs};
use crate::exit::{self, UsageError};
use crate::metrics::{measure, Baseline, WalWindow};

pub async fn run(cli: &Cli, args: &StatusArgs) -> anyhow::Result<u8> {
    if args.health {
        return super::health::run(cli).await;
    }
    let config = context::load_config(cli)?;
    let prometheus = context::prometheus(&config)?;
    let baseline = Baseline::load(&config.paths.baseline).map_err(UsageError)?;
    let wal = WalWindow::from_config(&config);
    let report = measure(&prometheus, &config, baseline.as_ref(), wal).await?;
    let code = exit::for_sla(report.verdict);
    match cli.output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Table => crate::output::emit_raw(&crate::output::sla::status(
            &report,
            baseline.as_ref(),
            &config.paths.baseline,
            code,
        ))?,
    }
    Ok(code)
}
