//! One file per subcommand: each wires config and clients, then calls the core.

pub mod alerts;
pub mod announce;
pub mod baseline;
pub mod check;
pub mod consent;
pub mod context;
pub mod deploy;
mod deploy_swarm;
pub mod docs;
pub mod health;
pub mod interrupts;
pub mod levers;
pub mod recover;
pub mod report;
pub mod resources;
pub mod rollback;
pub mod status;
pub mod textfile;
pub mod tune;
pub mod watch;

use crate::cli::{Cli, Command};

/// Runs the parsed command line and returns the exit code on success.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Baseline(args) => baseline::run(&cli, args).await,
        Command::Status(args) => status::run(&cli, args).await,
        Command::Check(args) => check::run(&cli, args).await,
        Command::Alerts(args) => alerts::run(&cli, args),
        Command::Report(args) => report::run(&cli, args).await,
        Command::Deploy(args) => deploy::run(&cli, args).await,
        Command::Resources(args) => resources::run(&cli, args).await,
        Command::Watch(args) => watch::run(&cli, args).await,
        Command::Completions { shell } => docs::completions(*shell),
        Command::Man => docs::man(),
        Command::Tune(args) => {
            let config = context::load_config(&cli)?;
            // Bad flags are reported before any server is contacted.
            tune::windows(&config, args)?;
            let prometheus = context::prometheus(&config)?;
            if !args.dry_run {
                // An interrupted deploy of a service a lever acts on is
                // finished or undone first, as `tuner deploy status` would.
                let catalog = tune::load_catalog(&config)?;
                deploy::recover_services(&cli, &catalog.services()).await?;
            }
            let router = levers::real(&config, progress(&cli)).await?;
            tune::run(
                &config,
                cli.output,
                args,
                &router,
                &prometheus,
                interrupts::from_ctrl_c(interrupts::TUNE),
            )
            .await
        }
        Command::Rollback(args) => {
            let config = context::load_config(&cli)?;
            rollback::refuse_unattended(args)?;
            let router = levers::real(&config, progress(&cli)).await?;
            rollback::run(&config, cli.output, args, &router).await
        }
    }
}

/// A renderer of the event stream for the parts that report on their own
/// (a PostgreSQL restart inside a lever).
fn progress(cli: &Cli) -> std::sync::Arc<dyn crate::journal::Events> {
    std::sync::Arc::from(crate::output::progress::for_format(cli.output))
}

/// Logs go to stderr so stdout carries only results; coloured only where
/// colour is welcome (see `output::term`). `--quiet` keeps warnings and
/// errors only, whatever `TUNER_LOG` says.
pub fn init_tracing(verbose: u8, quiet: bool) {
    let default = match verbose {
        _ if quiet => "warn",
        0 => "warn",
        1 => "tuner=debug,info",
        _ => "trace",
    };
    let filter = match tracing_subscriber::EnvFilter::try_from_env("TUNER_LOG") {
        Ok(filter) if !quiet => filter,
        _ => tracing_subscriber::EnvFilter::new(default),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(crate::output::term::caps().color)
        .with_target(false)
        .try_init();
}

/// Maps an error to its exit code (`crate::exit`) by looking for a usage or
/// config error anywhere in its chain. A closed stdout (`| head`) is
/// success: the work was done, only its reader left. It lives here, at the
/// top, because it must know the error types of every layer below.
pub fn code_for(error: &anyhow::Error) -> u8 {
    use crate::exit::{UsageError, FAILURE, OK, USAGE};
    if crate::output::is_closed_stdout(error) {
        return OK;
    }
    for cause in error.chain() {
        if cause.downcast_ref::<UsageError>().is_some()
            || cause.downcast_ref::<crate::config::ConfigError>().is_some()
            || cause.downcast_ref::<crate::gate::GateError>().is_some()
            || cause
                .downcast_ref::<crate::metrics::MeasureError>()
                .is_some_and(|e| e.is_usage())
        {
            return USAGE;
        }
    }
    FAILURE
}

/// Prints an error once: the headline, then each cause indented. A closed
/// stdout is not reported: its reader chose to stop reading.
pub fn print_error(error: &anyhow::Error) {
    if crate::output::is_closed_stdout(error) {
        return;
    }
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

#[cfg(test)]
mod tests {
    use super::code_for;
    use crate::exit::{UsageError, FAILURE, OK, USAGE};
    use crate::output::OutputError;

    #[test]
    fn errors_map_to_the_documented_exit_codes() {
        let closed = anyhow::Error::new(OutputError::Closed).context("printing the report");
        assert_eq!(code_for(&closed), OK, "a closed stdout is not a failure");
        let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        assert_eq!(
            code_for(&anyhow::Error::new(OutputError::Write(full))),
            FAILURE
        );
        let usage = anyhow::Error::new(UsageError("bad flag".into())).context("parsing");
        assert_eq!(code_for(&usage), USAGE, "found anywhere in the chain");
        assert_eq!(code_for(&anyhow::anyhow!("connection refused")), FAILURE);
    }
}
