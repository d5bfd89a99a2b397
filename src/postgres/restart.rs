//! Restarting PostgreSQL for `postmaster`-context settings, and putting the
//! previous `postgresql.auto.conf` back when the server does not come back.
//!
//! Restoring has to work while the server is down, so it cannot go through
//! SQL: each restarter knows where the data directory is from its side.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;

use super::PostgresError;

/// How tuner restarts the PostgreSQL it tunes.
#[async_trait]
pub trait Restarter: Send + Sync + std::fmt::Debug {
    /// For plans and errors, e.g. `docker container db (stop timeout 120s)`.
    fn describe(&self) -> String;

    /// Restarts PostgreSQL, or starts it if it is down. Returns when the
    /// restart was issued; the caller waits until queries are accepted.
    async fn restart(&self) -> Result<(), PostgresError>;

    /// Replaces `postgresql.auto.conf` in the data directory with
    /// `contents`, with the server possibly down.
    async fn restore_auto_conf(&self, contents: &[u8]) -> Result<(), PostgresError>;

    /// `Some(reason)` when PostgreSQL has certainly stopped for good (its
    /// container exited), so waiting out the restart timeout is pointless.
    /// `None` means "may still be starting".
    async fn gave_up(&self) -> Option<String> {
        None
    }
}

/// Runs a configured command (no shell) to restart PostgreSQL, e.g.
/// `["pg_ctlcluster", "15", "main", "restart"]`, and writes
/// `postgresql.auto.conf` directly into a data directory on this host.
#[derive(Debug, Clone)]
pub struct ArgvRestarter {
    pub argv: Vec<String>,
    /// The command is killed after this long.
    pub timeout: Duration,
    pub data_dir: PathBuf,
}

/// Keep error messages short: the end of stderr is where the reason is.
const STDERR_TAIL: usize = 2000;

#[async_trait]
impl Restarter for ArgvRestarter {
    fn describe(&self) -> String {
        format!(
            "command {:?} (timeout {}s)",
            self.argv,
            self.timeout.as_secs()
        )
    }

    async fn restart(&self) -> Result<(), PostgresError> {
        let fail = |reason: String| PostgresError::Restarter {
            restarter: self.describe(),
            reason,
        };
        let (program, args) = self
            .argv
            .split_first()
            .ok_or_else(|| fail("the command is empty".into()))?;
        // stderr goes to a file, not a pipe: a restart script that leaves a
        // daemon running would hold a pipe open and we would wait forever.
        let mut errfile = tempfile::tempfile()
            .map_err(|e| fail(format!("cannot create a temp file for stderr: {e}")))?;
        let errclone = errfile
            .try_clone()
            .map_err(|e| fail(format!("cannot clone the stderr file: {e}")))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(errclone))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot run {program:?}: {e}")))?;
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status.map_err(|e| fail(format!("waiting for the command: {e}")))?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(fail(format!(
                    "did not finish within {}s and was killed",
                    self.timeout.as_secs()
                )));
            }
        };
        if status.success() {
            return Ok(());
        }
        let mut stderr = String::new();
        let _ = errfile.rewind();
        let _ = errfile.read_to_string(&mut stderr);
        let stderr = stderr.trim();
        let tail = &stderr[stderr.len().saturating_sub(STDERR_TAIL)..];
        Err(fail(format!("exited with {status}: {tail}")))
    }

    async fn restore_auto_conf(&self, contents: &[u8]) -> Result<(), PostgresError> {
        let dir = self.data_dir.clone();
        let contents = contents.to_vec();
        tokio::task::spawn_blocking(move || write_auto_conf(&dir, &contents))
            .await
            .map_err(|e| PostgresError::Restarter {
                restarter: self.describe(),
                reason: format!("writer task failed: {e}"),
            })?
    }
}

/// Atomically replaces `postgresql.auto.conf` (temp file, fsync, rename,
/// fsync of the directory), keeping the owner of the file it replaces: we
/// may run as root while PostgreSQL runs as `postgres`, and a root-owned
/// 0600 file would stop the server from starting.
fn write_auto_conf(dir: &Path, contents: &[u8]) -> Result<(), PostgresError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let path = dir.join("postgresql.auto.conf");
    let io = |doing: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| PostgresError::Io {
            doing,
            path,
            source,
        }
    };
    let owner = std::fs::metadata(&path)
        .or_else(|_| std::fs::metadata(dir))
        .map_err(io("reading the owner of", &path))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(io("creating a temp file in", dir))?;
    tmp.write_all(contents).map_err(io("writing", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io("syncing", tmp.path()))?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600))
        .map_err(io("setting the mode of", tmp.path()))?;
    // Only root may give a file away; anyone else already owns it.
    if owner.uid()
        != tmp
            .as_file()
            .metadata()
            .map(|m| m.uid())
            .unwrap_or(owner.uid())
    {
        std::os::unix::fs::chown(tmp.path(), Some(owner.uid()), Some(owner.gid()))
            .map_err(io("changing the owner of", tmp.path()))?;
    }
    tmp.persist(&path).map_err(|e| PostgresError::Io {
        doing: "replacing",
        path: path.clone(),
        source: e.error,
    })?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing directory", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn restores_auto_conf_atomically() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("postgresql.auto.conf"),
            "wal_buffers = '16MB'\n",
        )
        .unwrap();
        let r = ArgvRestarter {
            argv: vec!["true".into()],
            timeout: Duration::from_secs(5),
            data_dir: dir.path().into(),
        };
        r.restore_auto_conf(b"# restored\n").await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("postgresql.auto.conf")).unwrap(),
            b"# restored\n"
        );
        r.restart().await.unwrap();
    }

    #[tokio::test]
    async fn a_failing_command_reports_its_stderr() {
        let r = ArgvRestarter {
            argv: vec!["sh".into(), "-c".into(), "echo boom >&2; exit 3".into()],
            timeout: Duration::from_secs(5),
            data_dir: PathBuf::from("/nonexistent"),
        };
        let e = r.restart().await.unwrap_err().to_string();
        assert!(e.contains("boom") && e.contains("3"), "{e}");
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed() {
        let r = ArgvRestarter {
            argv: vec!["sleep".into(), "30".into()],
            timeout: Duration::from_millis(200),
            data_dir: PathBuf::new(),
        };
        let e = r.restart().await.unwrap_err().to_string();
        assert!(e.contains("killed"), "{e}");
    }
}
