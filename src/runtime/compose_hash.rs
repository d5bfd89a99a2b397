//! The config hash docker-compose will compute for a service, so a clone can
//! carry the label that makes the next `docker-compose up -d` see it as
//! up to date (Compose compares only this label, not the limits).

use std::collections::BTreeMap;
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
    let hashes = hashes(project_dir, project, config_files, service, override_text)?;
    hashes
        .get(service)
        .cloned()
        .ok_or_else(|| OverrideError::Hash {
            dir: project_dir.to_path_buf(),
            service: service.to_string(),
            reason: format!(
                "docker-compose printed no hash for it (got {:?})",
                hashes.keys().collect::<Vec<_>>()
            ),
        })
}

/// The services whose Compose config hash differs between the override
/// `before` and `after` (`None`: no override file), other than `except`:
/// the containers the next `docker-compose up -d` would recreate besides
/// the ones meant to change. docker-compose 1.29 reorders a service's
/// volumes once any override exists, so a hash can move although nothing
/// about the service did; only comparing both sides tells.
pub fn services_changed(
    project_dir: &Path,
    project: &str,
    config_files: &[String],
    before: Option<&str>,
    after: Option<&str>,
    except: &[&str],
) -> Result<Vec<String>, OverrideError> {
    let old = hashes(project_dir, project, config_files, "*", before)?;
    let new = hashes(project_dir, project, config_files, "*", after)?;
    let mut changed: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|s| !except.contains(&s.as_str()))
        .filter(|s| old.get(*s) != new.get(*s))
        .cloned()
        .collect();
    changed.sort();
    changed.dedup();
    Ok(changed)
}

/// `docker-compose config --hash=WHICH` (a service, or `*` for all) as
/// service -> hash.
fn hashes(
    project_dir: &Path,
    project: &str,
    config_files: &[String],
    which: &str,
    override_text: Option<&str>,
) -> Result<BTreeMap<String, String>, OverrideError> {
    let fail = |reason: String| OverrideError::Hash {
        dir: project_dir.to_path_buf(),
        service: which.to_string(),
        reason,
    };
    // docker-compose runs inside the folder: a relative one would be doubled.
    let absolute = std::path::absolute(project_dir).map_err(|e| fail(e.to_string()))?;
    let project_dir = absolute.as_path();
    let tmp = match override_text {
        Some(text) => {
            let mut f = tempfile::Builder::new()
                .prefix(".tuner-override-")
                .suffix(".yml")
                .tempfile_in(project_dir)
                .map_err(|e| fail(format!("temp file: {e}")))?;
            std::io::Write::write_all(&mut f, text.as_bytes())
                .map_err(|e| fail(format!("temp file: {e}")))?;
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
    cmd.arg("config").arg(format!("--hash={which}"));
    let out = cmd
        .output()
        .map_err(|e| fail(format!("cannot run docker-compose: {e}")))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let map: BTreeMap<String, String> = stdout
        .lines()
        .filter_map(|l| {
            let (name, hash) = l.trim().split_once(char::is_whitespace)?;
            let hash = hash.trim();
            (!hash.is_empty()).then(|| (name.to_string(), hash.to_string()))
        })
        .collect();
    if map.is_empty() {
        return Err(fail(format!("unexpected output {:?}", stdout.trim())));
    }
    Ok(map)
}
