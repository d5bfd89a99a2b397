//! The config hash docker-compose will compute for a service, so a clone can
//! carry the label that makes the next `docker-compose up -d` see it as
//! up to date (Compose compares only this label, not the limits).

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
    cmd.arg("config").arg(format!("--hash={service}"));
    let out = cmd
        .output()
        .map_err(|e| fail(format!("cannot run docker-compose: {e}")))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix(service)
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .ok_or_else(|| fail(format!("unexpected output {:?}", stdout.trim())))
}
