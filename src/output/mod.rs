//! Rendering results for humans (tables) and machines (`--output json`).
//! Results go to stdout, through [`emit`] alone; logs and progress to
//! stderr.

pub mod check;
pub mod deploy;
pub mod progress;
pub mod resources;
pub mod sla;
pub mod swarm;
pub mod term;
pub mod textfile;
pub mod tune;
pub mod watch;

use comfy_table::presets::{ASCII_BORDERS_ONLY, UTF8_BORDERS_ONLY};
use comfy_table::{Cell, ContentArrangement, Table};

/// An empty table with the project's one look: light borders (ASCII on a
/// plain terminal, see [`term`]), wrapped to the terminal. Every table the
/// tool prints starts here.
pub fn styled() -> Table {
    let mut t = Table::new();
    let borders = if term::caps().unicode {
        UTF8_BORDERS_ONLY
    } else {
        ASCII_BORDERS_ONLY
    };
    t.load_style(borders)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t
}

/// A styled table with a header row.
pub fn table(headers: &[&str]) -> Table {
    let mut t = styled();
    t.set_header(headers.iter().map(Cell::new).collect::<Vec<_>>());
    t
}

/// A note for the person running the command, on stderr: not a result,
/// not an error (what was skipped and why, what to do next).
pub fn note(message: &str) {
    if !term::quiet() {
        eprintln!("note: {message}");
    }
}

/// Why a result did not reach stdout.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The reader went away (`tuner status | head -1`). Not a failure: the
    /// edge exits 0 and says nothing, as ripgrep does.
    #[error("stdout was closed by its reader")]
    Closed,
    #[error("cannot write the result to stdout: {0}")]
    Write(#[source] std::io::Error),
    #[error("cannot render the result as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes `text` and a newline to stdout: the one writer of results.
pub fn emit(text: &str) -> Result<(), OutputError> {
    write_to(&mut std::io::stdout().lock(), text, true)
}

/// Writes `text` to stdout as it is, for rendered text that ends with its
/// own newline.
pub fn emit_raw(text: &str) -> Result<(), OutputError> {
    write_to(&mut std::io::stdout().lock(), text, false)
}

/// Prints any serializable value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), OutputError> {
    emit(&serde_json::to_string_pretty(value)?)
}

/// Whether `error` only says that stdout was closed: the run did its work,
/// so the exit code is 0 and nothing is printed.
pub fn is_closed_stdout(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(OutputError::Closed)))
}

fn write_to(out: &mut impl std::io::Write, text: &str, newline: bool) -> Result<(), OutputError> {
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(OutputError::Closed),
        Err(e) => Err(OutputError::Write(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Write};

    /// A stdout whose reader is gone, or that fails otherwise.
    struct Failing(ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_text_with_or_without_a_newline() {
        let mut out = Vec::new();
        write_to(&mut out, "a", true).unwrap();
        write_to(&mut out, "b\n", false).unwrap();
        assert_eq!(out, b"a\nb\n");
    }

    #[test]
    fn a_closed_stdout_is_told_apart_from_other_failures() {
        let closed = write_to(&mut Failing(ErrorKind::BrokenPipe), "x", true).unwrap_err();
        assert!(matches!(closed, OutputError::Closed));
        let err = anyhow::Error::new(closed).context("printing the report");
        assert!(is_closed_stdout(&err));

        let full = write_to(&mut Failing(ErrorKind::StorageFull), "x", true).unwrap_err();
        assert!(matches!(full, OutputError::Write(_)));
        let err = anyhow::Error::new(full);
        assert!(!is_closed_stdout(&err));
    }
}
