//! An append-only JSON-lines journal, fsynced per entry: the one store of
//! every action's steps (`.tuner/journal.jsonl`).
//!
//! Callers write an *intent* (with the old value) before touching anything
//! outside the process and an *outcome* after; on start-up they read the
//! entries back and finish or undo any intent without an outcome. Each
//! action's entries carry its module (`tune`, `deploy`) and, where it has
//! one, the target it changed, so every action shares the one file and the
//! one recovery while reading back only its own entries.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{io_error, JournalError, Target};

/// One entry of the shared journal: which action wrote it, about which
/// target, and the action's own entry beside them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub module: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(flatten)]
    pub entry: T,
}

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
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io_error("open journal", &self.path))?;
        self.cut_torn_tail(&mut file)?;
        file.write_all(&line)
            .map_err(io_error("append to journal", &self.path))?;
        file.sync_data()
            .map_err(io_error("fsync journal", &self.path))?;
        if created {
            super::atomic::sync_dir(dir)?;
        }
        Ok(())
    }

    /// Appends `entry` as `module`'s, about `target`.
    pub fn append_as<T: Serialize>(
        &self,
        module: &str,
        target: Option<&Target>,
        entry: &T,
    ) -> Result<(), JournalError> {
        self.append(&Envelope {
            module: module.to_string(),
            target: target.cloned(),
            entry,
        })
    }

    /// `module`'s entries (about `target`, when given), in order. Entries of
    /// other actions are skipped; one of this module that does not parse is
    /// an error naming its line, never silently dropped.
    pub fn entries_of<T: DeserializeOwned>(
        &self,
        module: &str,
        target: Option<&Target>,
    ) -> Result<Vec<T>, JournalError> {
        let mut out = Vec::new();
        for (line, value) in self.numbered::<Value>()? {
            if value.get("module").and_then(Value::as_str) != Some(module) {
                continue;
            }
            let envelope: Envelope<T> =
                serde_json::from_value(value).map_err(|source| JournalError::Corrupt {
                    path: self.path.clone(),
                    line,
                    source,
                })?;
            if target.is_none() || envelope.target.as_ref() == target {
                out.push(envelope.entry);
            }
        }
        Ok(out)
    }

    /// A line torn by a crash mid-append was never fsynced, so nothing acted
    /// on it: cut it off, or the next entry would be glued onto it and lost.
    fn cut_torn_tail(&self, file: &mut File) -> Result<(), JournalError> {
        let len = file
            .metadata()
            .map_err(io_error("read the size of", &self.path))?
            .len();
        if len == 0 {
            return Ok(());
        }
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(io_error("read journal", &self.path))?;
        if last[0] == b'\n' {
            return Ok(());
        }
        let mut text = Vec::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut text))
            .map_err(io_error("read journal", &self.path))?;
        let keep = text
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i as u64 + 1)
            .unwrap_or(0);
        tracing::warn!(
            journal = %self.path.display(),
            "cutting a torn last line left by a crash ({} bytes)",
            len - keep
        );
        file.set_len(keep)
            .map_err(io_error("truncate the torn tail of", &self.path))?;
        file.sync_data()
            .map_err(io_error("fsync journal", &self.path))
    }

    /// Reads every entry. A torn last line (a crash mid-append) is ignored:
    /// its intent never completed its fsync, so nothing was acted on.
    pub fn entries<T: DeserializeOwned>(&self) -> Result<Vec<T>, JournalError> {
        Ok(self.numbered()?.into_iter().map(|(_, e)| e).collect())
    }

    /// Every entry with its line number (from 1).
    fn numbered<T: DeserializeOwned>(&self) -> Result<Vec<(usize, T)>, JournalError> {
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
                Ok(entry) => out.push((i + 1, entry)),
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
    fn an_append_after_a_torn_tail_cuts_it_and_keeps_both_new_entries() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("j.jsonl"));
        journal.append(&Entry { id: 1 }).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal.path())
            .unwrap();
        f.write_all(b"{\"id\":9").unwrap();
        journal.append(&Entry { id: 2 }).unwrap();
        journal.append(&Entry { id: 3 }).unwrap();
        assert_eq!(
            journal.entries::<Entry>().unwrap(),
            vec![Entry { id: 1 }, Entry { id: 2 }, Entry { id: 3 }]
        );
    }

    #[test]
    fn each_action_reads_back_only_its_own_entries() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("j.jsonl"));
        let web = Target::Service("web".into());
        let api = Target::Service("api".into());
        journal
            .append_as("deploy", Some(&web), &Entry { id: 1 })
            .unwrap();
        journal.append_as("tune", None, &Entry { id: 2 }).unwrap();
        journal
            .append_as("deploy", Some(&api), &Entry { id: 3 })
            .unwrap();
        let of = |m: &str, t: Option<&Target>| journal.entries_of::<Entry>(m, t).unwrap();
        assert_eq!(of("deploy", Some(&web)), vec![Entry { id: 1 }]);
        assert_eq!(of("deploy", None), vec![Entry { id: 1 }, Entry { id: 3 }]);
        assert_eq!(of("tune", None), vec![Entry { id: 2 }]);
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
