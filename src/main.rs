use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tuner::cli::Cli::parse();
    tuner::output::term::set_quiet(cli.quiet);
    tuner::commands::init_tracing(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(tuner::exit::FAILURE);
        }
    };
    match runtime.block_on(tuner::commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            tuner::commands::print_error(&error);
            ExitCode::from(tuner::commands::code_for(&error))
        }
    }
}
