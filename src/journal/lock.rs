//! One mutating run at a time per state directory.
//!
//! The OS lock (flock) is what excludes; the PID written into the file only
//! tells the second run whom it is waiting for. A crashed holder's lock is
//! released by the kernel, so there is never a stale lock to clean up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{io_error, JournalError};

#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock at `path` without waiting; a held lock is an error
    /// naming the holder's PID.
    pub fn acquire(path: &Path) -> Result<RunLock, JournalError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error("open lock file", path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let pid = if pid.is_empty() {
                    "unknown".to_string()
                } else {
                    pid.to_string()
                };
                return Err(JournalError::Locked {
                    pid,
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error("lock", path)(e)),
        }
        file.set_len(0)
            .map_err(io_error("truncate lock file", path))?;
        file.seek(SeekFrom::Start(0))
            .map_err(io_error("seek lock file", path))?;
        write!(file, "{}", std::process::id()).map_err(io_error("write lock file", path))?;
        file.sync_all().map_err(io_error("fsync lock file", path))?;
        Ok(RunLock {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".tuner/run.lock");
        let first = RunLock::acquire(&path).unwrap();
        let err = RunLock::acquire(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("locked by PID {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        RunLock::acquire(&path).unwrap();
    }
}
