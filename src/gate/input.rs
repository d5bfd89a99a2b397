//! Result files: opening them (gzip or not), telling their format from
//! their first bytes, and handing them to their reader.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::evaluate::Reading;
use super::{k6_stream, k6_summary, locust, pgbench, pgbench_log, Budget, GateError};

/// Read buffer: large enough that a stream is read in few system calls.
const BUFFER: usize = 256 * 1024;

/// The result formats `tuner check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `k6 run --summary-export FILE`.
    K6Summary,
    /// `k6 run --out json=FILE` (NDJSON, optionally gzipped).
    K6Stream,
    /// Locust's `--csv PREFIX` → `PREFIX_stats.csv`.
    Locust,
    /// What pgbench prints at the end of a run.
    PgbenchSummary,
    /// `pgbench --log`: one line per transaction.
    PgbenchLog,
}

impl Format {
    pub fn describe(self) -> &'static str {
        match self {
            Format::K6Summary => "k6 --summary-export",
            Format::K6Stream => "k6 --out json stream",
            Format::Locust => "Locust _stats.csv",
            Format::PgbenchSummary => "pgbench summary",
            Format::PgbenchLog => "pgbench --log",
        }
    }
}

const KNOWN: &str = "a k6 --summary-export JSON, a k6 --out json stream (optionally gzipped), a Locust _stats.csv, pgbench's output or pgbench --log files";

/// Opens `path` for reading, through a gzip decoder when it starts with
/// gzip's magic bytes.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, GateError> {
    let file = File::open(path).map_err(|e| GateError::read(path, e))?;
    let mut plain = BufReader::with_capacity(BUFFER, file);
    let gzipped = plain
        .fill_buf()
        .map_err(|e| GateError::read(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    if gzipped {
        let decoder = flate2::bufread::MultiGzDecoder::new(plain);
        Ok(Box::new(BufReader::with_capacity(BUFFER, decoder)))
    } else {
        Ok(Box::new(plain))
    }
}

/// A read error as the user should see it: a gzip stream that ends early
/// is a truncated file, not an I/O failure.
pub fn read_error(path: &Path, e: std::io::Error) -> GateError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => GateError::input(
            path,
            format!("truncated: the compressed stream ends early ({e})"),
        ),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
            GateError::input(path, format!("corrupt compressed data: {e}"))
        }
        _ => GateError::read(path, e),
    }
}

/// Reads a whole small file (a summary) as text, at most `limit` bytes.
pub fn read_small(path: &Path, limit: u64) -> Result<String, GateError> {
    let mut text = String::new();
    open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData if e.to_string().contains("UTF-8") => {
                GateError::input(path, "not text (invalid UTF-8)")
            }
            _ => read_error(path, e),
        })?;
    if text.len() as u64 > limit {
        return Err(GateError::input(
            path,
            format!(
                "larger than {limit} bytes: not a summary file; pass --format if it is a stream"
            ),
        ));
    }
    Ok(text)
}

/// Tells the format of `path` from its first bytes.
pub fn sniff(path: &Path) -> Result<Format, GateError> {
    let mut reader = open(path)?;
    let head = reader.fill_buf().map_err(|e| read_error(path, e))?;
    let head = String::from_utf8_lossy(&head[..head.len().min(8192)]).into_owned();
    let text = head.trim_start_matches('\u{feff}').trim_start();
    if text.is_empty() {
        return Err(GateError::input(path, format!("empty; expected {KNOWN}")));
    }
    let first = text.lines().next().unwrap_or("");
    if first.starts_with('{') {
        let stream = first.contains("\"type\"")
            && (first.contains("\"Metric\"") || first.contains("\"Point\""));
        return Ok(if stream {
            Format::K6Stream
        } else {
            Format::K6Summary
        });
    }
    if first.contains("Request Count") && first.contains("Name") {
        return Ok(Format::Locust);
    }
    if text.lines().any(|l| {
        l.starts_with("pgbench (") || l.starts_with("transaction type:") || l.starts_with("tps = ")
    }) {
        return Ok(Format::PgbenchSummary);
    }
    if pgbench_log::looks_like(first) {
        return Ok(Format::PgbenchLog);
    }
    let shown: String = first.chars().take(60).collect();
    Err(GateError::input(
        path,
        format!("unknown format (first line {shown:?}); expected {KNOWN}, or pass --format"),
    ))
}

/// Reads `paths` in `format` (or the one their content shows) for the
/// objectives of `budget`. Only pgbench logs come several at a time (one
/// per pgbench thread).
pub fn read_files(
    paths: &[PathBuf],
    format: Option<Format>,
    budget: &Budget,
) -> Result<Reading, GateError> {
    let Some(first) = paths.first() else {
        return Err(GateError::Usage(
            "nothing to check: give a result FILE or --live".into(),
        ));
    };
    let format = match format {
        Some(f) => f,
        None => sniff(first)?,
    };
    if paths.len() > 1 && format != Format::PgbenchLog {
        return Err(GateError::Usage(format!(
            "{} files given; only pgbench --log files are read several at a time (one per thread), a {} is one file",
            paths.len(),
            format.describe()
        )));
    }
    if format == Format::PgbenchLog {
        for path in &paths[1..] {
            let other = sniff(path)?;
            if other != Format::PgbenchLog {
                return Err(GateError::input(
                    path,
                    format!(
                        "is a {}, not a pgbench --log file like {}",
                        other.describe(),
                        first.display()
                    ),
                ));
            }
        }
    }
    let objectives = &budget.objectives;
    match format {
        Format::K6Summary => k6_summary::read(first, objectives),
        Format::K6Stream => k6_stream::read(first, objectives),
        Format::Locust => locust::read(first, objectives),
        Format::PgbenchSummary => pgbench::read(first, objectives),
        Format::PgbenchLog => pgbench_log::read(paths, objectives),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sniffed(content: &[u8]) -> Result<Format, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input");
        std::fs::write(&path, content).unwrap();
        sniff(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn formats_are_told_apart_by_their_first_bytes() {
        let stream = br#"{"type":"Metric","data":{"type":"trend"},"metric":"http_req_duration"}"#;
        assert_eq!(sniffed(stream), Ok(Format::K6Stream));
        assert_eq!(sniffed(b"{\n  \"metrics\": {}\n}"), Ok(Format::K6Summary));
        assert_eq!(
            sniffed(b"Type,Name,Request Count,Failure Count\n"),
            Ok(Format::Locust)
        );
        assert_eq!(
            sniffed(b"pgbench (15.18)\ntransaction type: <builtin: TPC-B (sort of)>\n"),
            Ok(Format::PgbenchSummary)
        );
        assert_eq!(
            sniffed(b"0 1 2345 0 1700000000 123456\n"),
            Ok(Format::PgbenchLog)
        );

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(stream).unwrap();
        assert_eq!(sniffed(&gz.finish().unwrap()), Ok(Format::K6Stream));
    }

    #[test]
    fn unknown_and_empty_files_name_what_is_expected() {
        let err = sniffed(b"<html>hello</html>\n").unwrap_err();
        assert!(
            err.contains("unknown format") && err.contains("--format"),
            "{err}"
        );
        assert!(err.contains("<html>"), "{err}");
        let err = sniffed(b"  \n").unwrap_err();
        assert!(err.contains("empty"), "{err}");
    }
}
