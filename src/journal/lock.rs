//! Locks by target: two actions on the same target (the tuning loop, the
//! PostgreSQL server, one service) never overlap, while actions on different
//! targets can. A container lever on `web` and `tuner deploy web` exclude
//! each other; `tuner deploy api` runs beside both.
//!
//! The OS lock (flock) is what excludes; the holder written into the file
//! (PID, command, what it is doing) only tells the second run whom it is
//! waiting for. A crashed holder's lock is released by the kernel, so there
//! is never a stale lock to clean up. Every lock lives in
//! `<state_dir>/locks/`, one file per target.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{io_error, JournalError};

/// What an action changes, and so what it must hold alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Target {
    /// The tune loop and `tuner rollback`: one measurement-and-judging run
    /// per stack, since a second would confound the first one's windows.
    Tuning,
    /// The PostgreSQL server's settings (`ALTER SYSTEM`, reload, restart).
    Postgres,
    /// One service's containers: its limits, its env, a blue-green swap.
    Service(String),
}

impl Target {
    /// The lock file's name: letters, digits and `-_.` only, so a service
    /// name can never point outside the lock directory.
    fn file_name(&self) -> String {
        let key = match self {
            Target::Tuning => "tuning".to_string(),
            Target::Postgres => "postgres".to_string(),
            Target::Service(name) => format!(
                "service-{}",
                name.chars()
                    .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    })
                    .collect::<String>()
            ),
        };
        format!("{key}.lock")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tuning => f.write_str("the tuning loop"),
            Target::Postgres => f.write_str("PostgreSQL"),
            Target::Service(name) => write!(f, "service {name}"),
        }
    }
}

/// Who holds a lock, as written into its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// `tuner tune`, `tuner deploy`, ...
    pub command: String,
    /// What it is doing with the target: `change 20261207T051200Z-1
    /// (app_cpus=0.5)`, `deploy of web`.
    pub action: String,
    pub since: DateTime<Utc>,
}

impl Holder {
    /// Reads a holder back; a file written by an older tuner holds only the
    /// PID.
    fn parse(text: &str) -> Option<Holder> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        serde_json::from_str(text).ok().or_else(|| {
            text.parse().ok().map(|pid| Holder {
                pid,
                command: "tuner".into(),
                action: "an earlier version's run".into(),
                since: Utc::now(),
            })
        })
    }

    fn describe(&self) -> String {
        format!(
            "{} ({}, since {})",
            self.command,
            self.action,
            self.since.with_timezone(&chrono::Local).format("%H:%M:%S")
        )
    }
}

/// Targets this command holds: each open lock file and how many guards
/// share it.
type Held = Arc<Mutex<BTreeMap<Target, (usize, File)>>>;

/// Takes locks for one command in one state directory. Clones share what
/// they hold, so a command that already holds a target (a deploy of `web`)
/// can take it again for a step of its own (restoring a tune change a crash
/// left open on `web`) instead of locking itself out.
#[derive(Debug, Clone)]
pub struct Locks {
    dir: PathBuf,
    command: String,
    held: Held,
}

impl Locks {
    /// `command` names the holder for whoever finds a target taken:
    /// `tuner tune`, `tuner deploy`.
    pub fn new(state_dir: &Path, command: &str) -> Locks {
        Locks {
            dir: state_dir.join("locks"),
            command: command.to_string(),
            held: Held::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<Target, (usize, File)>> {
        // A poisoned map only means a panic elsewhere; the files in it are
        // still the ones this command locked.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn path_of(&self, target: &Target) -> PathBuf {
        self.dir.join(target.file_name())
    }

    /// Takes `target` without waiting; a held target is an error naming
    /// the holder and what it is doing.
    pub fn acquire(&self, target: &Target, action: &str) -> Result<TargetLock, JournalError> {
        let path = self.path_of(target);
        if let Some((count, _)) = self.held().get_mut(target) {
            *count += 1;
            return Ok(TargetLock {
                held: self.held.clone(),
                path,
                target: target.clone(),
            });
        }
        std::fs::create_dir_all(&self.dir).map_err(io_error("create directory", &self.dir))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("open lock file", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = Holder::parse(&text);
                return Err(JournalError::Locked {
                    target: target.to_string(),
                    pid: holder
                        .as_ref()
                        .map(|h| h.pid.to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    holder: holder
                        .map(|h| h.describe())
                        .unwrap_or_else(|| "a tuner run".into()),
                    path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error("lock", &path)(e)),
        }
        let holder = Holder {
            pid: std::process::id(),
            command: self.command.clone(),
            action: action.to_string(),
            since: Utc::now(),
        };
        let text = serde_json::to_vec(&holder).map_err(|source| JournalError::Encode {
            path: path.clone(),
            source,
        })?;
        file.set_len(0)
            .map_err(io_error("truncate lock file", &path))?;
        file.seek(SeekFrom::Start(0))
            .map_err(io_error("seek lock file", &path))?;
        file.write_all(&text)
            .map_err(io_error("write lock file", &path))?;
        file.sync_all()
            .map_err(io_error("fsync lock file", &path))?;
        self.held().insert(target.clone(), (1, file));
        Ok(TargetLock {
            held: self.held.clone(),
            path,
            target: target.clone(),
        })
    }

    /// Takes every target, in a fixed order so two commands that need the
    /// same pair cannot each hold one and miss the other; on a refusal the
    /// ones already taken are released.
    pub fn acquire_all(
        &self,
        targets: &[Target],
        action: &str,
    ) -> Result<Vec<TargetLock>, JournalError> {
        let mut sorted = targets.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted.iter().map(|t| self.acquire(t, action)).collect()
    }
}

/// A held target; dropping the last guard of it releases the target.
#[derive(Debug)]
pub struct TargetLock {
    held: Held,
    path: PathBuf,
    target: Target,
}

impl TargetLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn target(&self) -> &Target {
        &self.target
    }
}

impl Drop for TargetLock {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let last = match held.get_mut(&self.target) {
            Some((count, _)) => {
                *count -= 1;
                *count == 0
            }
            None => false,
        };
        if last {
            if let Some((_, file)) = held.remove(&self.target) {
                let _ = file.set_len(0);
                let _ = file.unlock();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_target_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let tune = Locks::new(dir.path(), "tuner tune");
        let deploy = Locks::new(dir.path(), "tuner deploy");
        let web = Target::Service("web".into());
        let held = tune.acquire(&web, "change c1 (web_cpus=0.5)").unwrap();
        let msg = deploy
            .acquire(&web, "deploy of web")
            .unwrap_err()
            .to_string();
        for want in [
            "service web is locked by PID",
            &std::process::id().to_string(),
            "tuner tune",
            "change c1 (web_cpus=0.5)",
            "service-web.lock",
        ] {
            assert!(msg.contains(want), "{want:?} missing from {msg}");
        }
        // Another service is another target.
        let api = deploy
            .acquire(&Target::Service("api".into()), "deploy of api")
            .unwrap();
        assert_eq!(api.target(), &Target::Service("api".into()));
        drop(held);
        deploy.acquire(&web, "deploy of web").unwrap();
    }

    #[test]
    fn a_command_may_take_again_what_it_holds_and_releases_it_last() {
        let dir = tempfile::tempdir().unwrap();
        let deploy = Locks::new(dir.path(), "tuner deploy");
        let other = Locks::new(dir.path(), "tuner tune");
        let web = Target::Service("web".into());
        let outer = deploy.acquire(&web, "deploy of web").unwrap();
        let inner = deploy.clone().acquire(&web, "restoring c1").unwrap();
        drop(inner);
        assert!(
            other.acquire(&web, "x").is_err(),
            "still held by the outer guard"
        );
        drop(outer);
        other.acquire(&web, "x").unwrap();
    }

    #[test]
    fn acquire_all_releases_what_it_took_when_one_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let a = Locks::new(dir.path(), "a");
        let b = Locks::new(dir.path(), "b");
        let _pg = a.acquire(&Target::Postgres, "x").unwrap();
        let err = b
            .acquire_all(&[Target::Postgres, Target::Tuning], "y")
            .unwrap_err();
        assert!(err.to_string().contains("PostgreSQL is locked"), "{err}");
        // Tuning sorts first and was taken, then given back on the refusal.
        a.acquire(&Target::Tuning, "z").unwrap();
    }

    #[test]
    fn service_names_cannot_escape_the_lock_directory() {
        let locks = Locks::new(Path::new("/state"), "t");
        let path = locks.path_of(&Target::Service("../../etc/passwd".into()));
        assert_eq!(
            path,
            Path::new("/state/locks/service-.._.._etc_passwd.lock")
        );
    }

    #[test]
    fn an_old_pid_only_lock_file_still_names_its_pid() {
        let h = Holder::parse("4242\n").unwrap();
        assert_eq!(h.pid, 4242);
        assert!(Holder::parse("").is_none());
    }
}
