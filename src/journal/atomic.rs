//! Crash-atomic file replacement: readers see the old file or the new one,
//! never a torn mix, even after a power loss.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{io_error, JournalError};

/// Writes `contents` to `path` via a temp file in the same directory, fsyncs
/// it, renames it over the target and fsyncs the directory. Keeps the target's
/// permissions when it already exists.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), JournalError> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tuner-tmp-")
        .tempfile_in(&dir)
        .map_err(io_error("create a temp file in", &dir))?;
    tmp.write_all(contents)
        .map_err(io_error("write", tmp.path()))?;
    if let Ok(meta) = fs::metadata(path) {
        fs::set_permissions(tmp.path(), meta.permissions())
            .map_err(io_error("set permissions on", tmp.path()))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(io_error("fsync", tmp.path()))?;
    tmp.persist(path).map_err(|e| JournalError::Io {
        action: "rename into place",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(&dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", dir))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Copies an existing file to `<name>.<UTC timestamp>` beside it before it is
/// replaced, so nothing the user had is ever lost. Returns the backup path,
/// or `None` when there was nothing to keep.
pub fn backup_with_timestamp(path: &Path) -> Result<Option<PathBuf>, JournalError> {
    if !path.exists() {
        return Ok(None);
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let backup = parent_dir(path).join(format!("{name}.{stamp}"));
    let contents = fs::read(path).map_err(io_error("read", path))?;
    write_atomic(&backup, &contents)?;
    Ok(Some(backup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baseline.yaml");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn backup_keeps_old_contents() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("baseline.yaml");
        assert!(backup_with_timestamp(&file).unwrap().is_none());
        fs::write(&file, b"old").unwrap();
        let backup = backup_with_timestamp(&file).unwrap().unwrap();
        assert_eq!(fs::read(backup).unwrap(), b"old");
    }
}
