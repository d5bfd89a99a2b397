//! Rendering results for humans (tables) and machines (`--output json`).
//! Results go to stdout; logs and progress to stderr.

pub mod deploy;
pub mod progress;
pub mod sla;
pub mod tune;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, ContentArrangement, Table};

/// An empty table with the project's one look: light borders, wrapped to
/// the terminal. Every table the tool prints starts here.
pub fn styled() -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t
}

/// A styled table with a header row.
pub fn table(headers: &[&str]) -> Table {
    let mut t = styled();
    t.set_header(headers.iter().map(Cell::new).collect::<Vec<_>>());
    t
}

/// Prints any serializable value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
