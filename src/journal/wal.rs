//! An append-only JSON-lines journal, fsynced per entry.
//!
//! Callers write an *intent* (with the old value) before touching anything
//! outside the process and an *outcome* after; on start-up they read the
//! entries back and finish or undo any intent without an outcome.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{io_error, JournalError};

#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn new(path: impl Into<PathBuf>) -> Journal {
        Journal { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and returns only once it is on disk.
    pub fn append<T: Serialize>(&self, entry: &T) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(entry).map_err(|source| JournalError::Encode {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let created = !self.path.exists();
        std::fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io_error("open journal", &self.path))?;
        file.write_all(&line)
            .map_err(io_error("append to journal", &self.path))?;
        file.sync_data()
            .map_err(io_error("fsync journal", &self.path))?;
        if created {
            super::atomic::sync_dir(dir)?;
        }
        Ok(())
    }

    /// Reads every entry. A torn last line (a crash mid-append) is ignored:
    /// its intent never completed its fsync, so nothing was acted on.
    pub fn entries<T: DeserializeOwned>(&self) -> Result<Vec<T>, JournalError> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("open journal", &self.path)(e)),
        };
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(io_error("read journal", &self.path))?;
        let last = lines.len();
        let mut out = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(entry) => out.push(entry),
                Err(_) if i + 1 == last => break,
                Err(source) => {
                    return Err(JournalError::Corrupt {
                        path: self.path.clone(),
                        line: i + 1,
                        source,
                    })
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Entry {
        id: u32,
    }

    #[test]
    fn appends_and_reads_back_ignoring_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join(".tuner/journal.jsonl"));
        assert!(journal.entries::<Entry>().unwrap().is_empty());
        journal.append(&Entry { id: 1 }).unwrap();
        journal.append(&Entry { id: 2 }).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal.path())
            .unwrap();
        f.write_all(b"{\"id\":").unwrap();
        assert_eq!(
            journal.entries::<Entry>().unwrap(),
            vec![Entry { id: 1 }, Entry { id: 2 }]
        );
    }

    #[test]
    fn corruption_in_the_middle_is_an_error_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "{\"id\":1}\nnot json\n{\"id\":3}\n").unwrap();
        let err = Journal::new(&path).entries::<Entry>().unwrap_err();
        assert!(err.to_string().contains("j.jsonl:2"), "{err}");
    }
}
