//! `backups/<timestamp>/`: what the system looked like before a tuning run
//! first changed it — the non-default PostgreSQL settings and copies of the
//! env and override files the levers may edit — so a human can always get
//! back, even without tuner.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{io_error, write_atomic, JournalError};

pub const SETTINGS_FILE: &str = "postgres_settings.txt";
pub const MANIFEST_FILE: &str = "MANIFEST";

/// Writes a backup folder and returns its path. Files that do not exist yet
/// are listed in the manifest as absent (restoring means deleting them).
pub fn create(
    backups_dir: &Path,
    at: DateTime<Utc>,
    settings: &str,
    files: &[PathBuf],
) -> Result<PathBuf, JournalError> {
    let mut dir = backups_dir.join(at.format("%Y%m%d_%H%M%S").to_string());
    // Two runs in one second (tests, quick retries) must not share a folder.
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = backups_dir.join(format!("{}_{n}", at.format("%Y%m%d_%H%M%S")));
    }
    write_atomic(&dir.join(SETTINGS_FILE), settings.as_bytes())?;
    let mut manifest = format!(
        "# tuner backup taken {}\n{SETTINGS_FILE}\tnon-default PostgreSQL settings\n",
        at.to_rfc3339()
    );
    let mut used: Vec<String> = Vec::new();
    for file in files {
        let base = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let mut name = base.clone();
        let mut i = 1;
        while used.contains(&name) || name == SETTINGS_FILE || name == MANIFEST_FILE {
            i += 1;
            name = format!("{i}_{base}");
        }
        match std::fs::read(file) {
            Ok(bytes) => {
                write_atomic(&dir.join(&name), &bytes)?;
                manifest.push_str(&format!("{name}\t{}\n", file.display()));
                used.push(name);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                manifest.push_str(&format!("-\t{}\t(absent before tuning)\n", file.display()));
            }
            Err(e) => return Err(io_error("back up", file)(e)),
        }
    }
    write_atomic(&dir.join(MANIFEST_FILE), manifest.as_bytes())?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn copies_settings_and_files_and_never_reuses_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let env = tmp.path().join(".env");
        std::fs::write(&env, "BATCH_SIZE=100\n").unwrap();
        let missing = tmp.path().join("docker-compose.override.yml");
        let at = Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0).unwrap();
        let dir = create(
            &tmp.path().join("backups"),
            at,
            "max_wal_size = 1GB\n",
            &[env, missing],
        )
        .unwrap();
        assert!(dir.ends_with("backups/20240115_103000"));
        assert_eq!(
            std::fs::read_to_string(dir.join(".env")).unwrap(),
            "BATCH_SIZE=100\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(SETTINGS_FILE)).unwrap(),
            "max_wal_size = 1GB\n"
        );
        assert!(std::fs::read_to_string(dir.join(MANIFEST_FILE))
            .unwrap()
            .contains("absent before tuning"));
        let again = create(&tmp.path().join("backups"), at, "", &[]).unwrap();
        assert_ne!(dir, again);
    }
}
