//! The config hash docker-compose will compute for a service, so a clone can
//! carry the label that makes the next `docker-compose up -d` see it as
//! up to date (Compose compares only this label, not the limits).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::compose_override::{OverrideError, OVERRIDE_NAME};

/// Runs `docker-compose config --hash=SERVICE` in `project_dir` with the
/// project's config files, the override replaced by `override_text` (or left
/// out for `None`). The override is written to a temp file beside the others
/// so relative paths resolve the same way.
pub fn config_hash(
    project_dir: &Path,
    project: &str,
    config_files: &[String],
    service: &str,
    override_text: Option<&str>,
) -> Result<String, OverrideError> {
    let fail = |reason: String| OverrideError::Hash {
        dir: project_dir.to_path_buf(),
        service: service.to_string(),
        reason,
    };
    let stdout =
        compose_config(project_dir, project, config_files, override_text, service).map_err(fail)?;
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix(service)
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .ok_or_else(|| fail(format!("unexpected output {:?}", stdout.trim())))
}

/// The services but `except` whose config hash differs between the override
/// text `before` and `after` (`None`: no override file), sorted by name: those
/// `docker-compose up -d` would recreate although nobody asked. Compose 1.29
/// merges every service once a second file exists (it sorts `volumes` by
/// container path, for one), so writing an override for one service can change
/// another's hash.
pub fn services_changed(
    project_dir: &Path,
    project: &str,
    config_files: &[String],
    before: Option<&str>,
    after: Option<&str>,
    except: &[&str],
) -> Result<Vec<String>, OverrideError> {
    let fail = |reason: String| OverrideError::Hash {
        dir: project_dir.to_path_buf(),
        service: "*".to_string(),
        reason,
    };
    let hashes = |text: Option<&str>| -> Result<BTreeMap<String, String>, OverrideError> {
        let out = compose_config(project_dir, project, config_files, text, "*").map_err(fail)?;
        let map: BTreeMap<String, String> = out
            .lines()
            .filter_map(|l| {
                let (name, hash) = l.trim().split_once(' ')?;
                Some((name.to_string(), hash.trim().to_string()))
            })
            .collect();
        if map.is_empty() {
            return Err(fail(format!("unexpected output {:?}", out.trim())));
        }
        Ok(map)
    };
    let old = hashes(before)?;
    let new = hashes(after)?;
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    Ok(names
        .into_iter()
        .filter(|n| !except.contains(&n.as_str()))
        .filter(|n| old.get(*n) != new.get(*n))
        .cloned()
        .collect())
}

/// `docker-compose config --hash=ARG` with the override replaced by
/// `override_text`; its stdout, or the reason it failed.
fn compose_config(
    project_dir: &Path,
    project: &str,
    config_files: &[String],
    override_text: Option<&str>,
    hash_arg: &str,
) -> Result<String, String> {
    let tmp = match override_text {
        Some(text) => {
            let mut f = tempfile::Builder::new()
                .prefix(".tuner-override-")
                .suffix(".yml")
                .tempfile_in(project_dir)
                .map_err(|e| format!("temp file: {e}"))?;
            std::io::Write::write_all(&mut f, text.as_bytes())
                .map_err(|e| format!("temp file: {e}"))?;
            Some(f)
        }
        None => None,
    };
    let mut files: Vec<PathBuf> = config_files
        .iter()
        .map(|f| project_dir.join(f))
        .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some(OVERRIDE_NAME))
        .collect();
    if files.is_empty() {
        files.push(project_dir.join("docker-compose.yml"));
    }
    if let Some(t) = &tmp {
        files.push(t.path().to_path_buf());
    }
    let mut cmd = Command::new("docker-compose");
    cmd.current_dir(project_dir)
        .arg("--project-directory")
        .arg(project_dir)
        .arg("-p")
        .arg(project);
    for f in &files {
        cmd.arg("-f").arg(f);
    }
    cmd.arg("config").arg(format!("--hash={hash_arg}"));
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run docker-compose: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
