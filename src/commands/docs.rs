//! `tuner completions SHELL` and `tuner man`: generated from the clap
//! definitions in `cli.rs`, so they never drift from the real flags.

use clap::CommandFactory as _;

use crate::cli::Cli;

/// The completion script for `shell`, on stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "tuner", &mut script);
    crate::output::emit_raw(&String::from_utf8_lossy(&script))?;
    Ok(crate::exit::OK)
}

/// The man page, tuner(1), as roff on stdout.
pub fn man() -> anyhow::Result<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| anyhow::anyhow!("cannot render the man page: {e}"))?;
    crate::output::emit_raw(&String::from_utf8_lossy(&page))?;
    Ok(crate::exit::OK)
}
