//! The config hash Compose will compute for a service, so a clone can
//! carry the label that makes the next `compose up -d` see it as
//! up to date (Compose compares only this label, not the limits).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::compose_cmd;
use super::compose_files;
use super::compose_override::OverrideError;
use crate::config::yaml::{self, Mapping, Value};

/// Runs `compose config --hash=SERVICE` (the process's one Compose, `compose_cmd::get`) in `project_dir` with the
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
    let stdout = compose_config(
        project_dir,
        project,
        config_files,
        override_text,
        Some(service),
    )
    .map_err(fail)?;
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix(service)
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .ok_or_else(|| fail(format!("unexpected output {:?}", stdout.trim())))
}

/// Every service's config hash with the override replaced by `text`
/// (`None`: no override file): one `docker-compose config --hash=*` call.
pub fn service_hashes(
    project_dir: &Path,
    project: &str,
    config_files: &[String],
    text: Option<&str>,
) -> Result<BTreeMap<String, String>, OverrideError> {
    let fail = |reason: String| OverrideError::Hash {
        dir: project_dir.to_path_buf(),
        service: "*".to_string(),
        reason,
    };
    let out = compose_config(project_dir, project, config_files, text, Some("*")).map_err(fail)?;
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
}

/// Service name -> config hash.
pub type Hashes = BTreeMap<String, String>;

/// Both sides' hashes, computed at once: each docker-compose call is a
/// Python start-up, and a deploy's wall time is what the user waits for.
fn both_sides(
    project_dir: &Path,
    project: &str,
    config_files: &[String],
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(Hashes, Hashes), OverrideError> {
    std::thread::scope(|scope| {
        let old = scope.spawn(|| service_hashes(project_dir, project, config_files, before));
        let new = service_hashes(project_dir, project, config_files, after);
        let old = old.join().unwrap_or_else(|_| {
            Err(OverrideError::Hash {
                dir: project_dir.to_path_buf(),
                service: "*".to_string(),
                reason: "the docker-compose thread panicked".to_string(),
            })
        });
        Ok((old?, new?))
    })
}

fn differing(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    except: &[&str],
) -> Vec<String> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter(|n| !except.contains(&n.as_str()))
        .filter(|n| old.get(*n) != new.get(*n))
        .cloned()
        .collect()
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
    let (old, new) = both_sides(project_dir, project, config_files, before, after)?;
    Ok(differing(&old, &new, except))
}

/// `docker-compose config` (`--hash=ARG` with `hash_arg`) with the override
/// replaced by `override_text`; its stdout, or the reason it failed.
fn compose_config(
    project_dir: &Path,
    project: &str,
    config_files: &[String],
    override_text: Option<&str>,
    hash_arg: Option<&str>,
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
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(compose_files::is_override_name)
        })
        .collect();
    if files.is_empty() {
        let main = compose_files::discover(project_dir).main;
        files.push(main.unwrap_or_else(|| project_dir.join("docker-compose.yml")));
    }
    if let Some(t) = &tmp {
        files.push(t.path().to_path_buf());
    }
    let compose = compose_cmd::get();
    let mut cmd = compose.command();
    cmd.current_dir(project_dir)
        .arg("--project-directory")
        .arg(project_dir)
        .arg("-p")
        .arg(project);
    for f in &files {
        cmd.arg("-f").arg(f);
    }
    cmd.arg("config");
    if let Some(arg) = hash_arg {
        cmd.arg(format!("--hash={arg}"));
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", compose.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Another service an override would make `docker-compose up -d` recreate.
#[derive(Debug, Clone, PartialEq)]
pub struct SideEffect {
    pub service: String,
    /// What differs in its merged config, and how to keep it the same.
    pub reason: String,
}

impl std::fmt::Display for SideEffect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.service, self.reason)
    }
}

/// What writing the override `after` over `before` does to the project.
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    /// `service`'s own config hash with `after`, for green's label.
    pub hash: Option<String>,
    /// The other services `docker-compose up -d` would then recreate.
    pub others: Vec<SideEffect>,
}

/// `service`'s new hash and [`services_changed`] for every other service,
/// each with the reason read from the two merged configs.
pub fn side_effects(
    project_dir: &Path,
    project: &str,
    config_files: &[String],
    before: Option<&str>,
    after: Option<&str>,
    service: &str,
) -> Result<Effects, OverrideError> {
    let (old, new) = both_sides(project_dir, project, config_files, before, after)?;
    let hash = new.get(service).cloned();
    let changed = differing(&old, &new, &[service]);
    if changed.is_empty() {
        return Ok(Effects {
            hash,
            others: Vec::new(),
        });
    }
    let render = |text: Option<&str>| -> Option<Value> {
        let out = compose_config(project_dir, project, config_files, text, None).ok()?;
        yaml::from_str::<Value>(&out).ok()
    };
    let (old, new) = (render(before), render(after));
    let others = changed
        .into_iter()
        .map(|name| SideEffect {
            reason: explain(old.as_ref(), new.as_ref(), &name),
            service: name,
        })
        .collect();
    Ok(Effects { hash, others })
}

fn service_of<'a>(doc: Option<&'a Value>, name: &str) -> Option<&'a Mapping> {
    doc?.get("services")?.get(name)?.as_mapping()
}

/// Why a service's merged config differs; Compose 1.29's merge sorting a
/// list is the case users hit (postgres' `volumes`), so it gets the fix.
fn explain(old: Option<&Value>, new: Option<&Value>, name: &str) -> String {
    let (Some(old), Some(new)) = (service_of(old, name), service_of(new, name)) else {
        return "its Compose config hash changes".to_string();
    };
    let mut keys: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    keys.sort();
    keys.dedup();
    let mut parts = Vec::new();
    for key in keys {
        let (a, b) = (old.get(key.as_str()), new.get(key.as_str()));
        if a == b {
            continue;
        }
        match (a.and_then(Value::as_sequence), b.and_then(Value::as_sequence)) {
            (Some(a), Some(b)) if same_items(a, b) => parts.push(format!(
                "docker-compose sorts its `{key}` when it merges a second Compose file; list them in this order in the main file to keep its hash: {}",
                b.iter().map(show).collect::<Vec<_>>().join(", ")
            )),
            _ => parts.push(format!("its `{key}` differs once the override is merged")),
        }
    }
    if parts.is_empty() {
        "its Compose config hash changes".to_string()
    } else {
        parts.join("; ")
    }
}

fn same_items(a: &[Value], b: &[Value]) -> bool {
    let mut a: Vec<String> = a.iter().map(show).collect();
    let mut b: Vec<String> = b.iter().map(show).collect();
    a.sort();
    b.sort();
    a == b
}

fn show(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => yaml::to_string(v)
            .map(|t| t.trim().to_string())
            .unwrap_or_default(),
    }
}
