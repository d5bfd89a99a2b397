//! Which Compose files a project folder holds, by the names Compose itself
//! reads without `-f`: `compose.yaml`, `compose.yml`, `docker-compose.yml`,
//! `docker-compose.yaml`, each with its `.override` file. v2 prefers the
//! `compose.*` names; v1 1.29 reads all eight too but refuses a folder
//! holding two override files, so tuner writes into the one that exists and
//! only creates one, named after the main file, when there is none.

use std::path::{Path, PathBuf};

/// Main file names in the order Compose v2 prefers them.
pub const MAIN_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Override file names in the order Compose v2 prefers them.
pub const OVERRIDE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// The override name paired with a main name (`compose.yaml` ->
/// `compose.override.yaml`).
fn override_for(main: &str) -> String {
    match main.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.override.{ext}"),
        None => format!("{main}.override.yml"),
    }
}

/// True when `name` (a bare file name) is one of the override names.
pub fn is_override_name(name: &str) -> bool {
    OVERRIDE_NAMES.contains(&name)
}

/// The Compose files of one project folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFiles {
    /// The main file, if the folder has one.
    pub main: Option<PathBuf>,
    /// The override file tuner reads and writes: the existing one, else the
    /// one paired with the main file, else `docker-compose.override.yml`
    /// (read by both Compose versions).
    pub override_path: PathBuf,
}

/// Looks at `dir` only through `exists`, so tests need no folder.
pub fn discover_with(dir: &Path, exists: impl Fn(&Path) -> bool) -> ProjectFiles {
    let main = MAIN_NAMES.iter().map(|n| dir.join(n)).find(|p| exists(p));
    let existing_override = OVERRIDE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| exists(p));
    let override_path = existing_override.unwrap_or_else(|| {
        let name = main
            .as_ref()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .map(override_for)
            .unwrap_or_else(|| "docker-compose.override.yml".to_string());
        dir.join(name)
    });
    ProjectFiles {
        main,
        override_path,
    }
}

/// The Compose files of `dir` on disk.
pub fn discover(dir: &Path) -> ProjectFiles {
    discover_with(dir, |p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(files: &[&str]) -> ProjectFiles {
        let dir = Path::new("/p");
        let present: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        discover_with(dir, |p| present.iter().any(|q| q == p))
    }

    #[test]
    fn every_main_name_is_found_with_its_own_override_name() {
        for (main, over) in [
            ("compose.yaml", "compose.override.yaml"),
            ("compose.yml", "compose.override.yml"),
            ("docker-compose.yml", "docker-compose.override.yml"),
            ("docker-compose.yaml", "docker-compose.override.yaml"),
        ] {
            let f = with(&[main]);
            assert_eq!(f.main, Some(PathBuf::from("/p").join(main)), "{main}");
            assert_eq!(f.override_path, PathBuf::from("/p").join(over), "{main}");
        }
    }

    #[test]
    fn an_existing_override_is_used_whatever_its_name() {
        let f = with(&["compose.yaml", "docker-compose.override.yml"]);
        assert_eq!(
            f.override_path,
            PathBuf::from("/p/docker-compose.override.yml")
        );
        let f = with(&["docker-compose.yml", "compose.override.yaml"]);
        assert_eq!(f.override_path, PathBuf::from("/p/compose.override.yaml"));
    }

    #[test]
    fn v2_names_are_preferred_when_several_exist() {
        let f = with(&[
            "docker-compose.yml",
            "compose.yml",
            "docker-compose.override.yml",
            "compose.override.yml",
        ]);
        assert_eq!(f.main, Some(PathBuf::from("/p/compose.yml")));
        assert_eq!(f.override_path, PathBuf::from("/p/compose.override.yml"));
    }

    #[test]
    fn an_empty_folder_gets_the_name_both_versions_read() {
        let f = with(&[]);
        assert_eq!(f.main, None);
        assert_eq!(
            f.override_path,
            PathBuf::from("/p/docker-compose.override.yml")
        );
    }

    #[test]
    fn override_names_are_recognised() {
        for n in OVERRIDE_NAMES {
            assert!(is_override_name(n));
        }
        assert!(!is_override_name("compose.yaml"));
        assert!(!is_override_name(".tuner-override-x.yml"));
    }

    #[test]
    fn discover_reads_a_real_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yml"), "services: {}\n").unwrap();
        let f = discover(dir.path());
        assert_eq!(f.main, Some(dir.path().join("compose.yml")));
        assert_eq!(f.override_path, dir.path().join("compose.override.yml"));
    }
}
