//! `services_changed` against the real docker-compose (no engine needed:
//! `docker-compose config` only reads files): which services an override
//! for one of them would make `docker-compose up -d` recreate.

use std::path::Path;

use tuner::runtime::compose_hash::services_changed;

const GRAFANA_LIMITS: &str = "services:\n  grafana:\n    cpus: 1.5\n    mem_limit: 805306368\n";

/// A project like the demo: postgres lists its data volume before its init
/// script, the order docker-compose 1.29 keeps with one file but sorts by
/// container path once it merges a second one.
fn project(dir: &Path, volumes: &[&str]) {
    let vols: String = volumes.iter().map(|v| format!("      - {v}\n")).collect();
    let text = format!(
        "version: \"2.4\"\nservices:\n  postgres:\n    image: postgres:15\n    volumes:\n{vols}  grafana:\n    image: grafana/grafana\n    ports:\n      - \"127.0.0.1:27080:3000\"\nvolumes:\n  pgdata:\n"
    );
    std::fs::write(dir.join("docker-compose.yml"), text).expect("compose file");
    std::fs::write(dir.join("init.sql"), "select 1;\n").expect("init.sql");
}

fn changed(dir: &Path, before: Option<&str>, after: Option<&str>, except: &[&str]) -> Vec<String> {
    let files = vec!["docker-compose.yml".to_string()];
    services_changed(dir, "tdep-hash-test", &files, before, after, except)
        .expect("services_changed")
}

#[test]
fn an_override_for_grafana_changes_postgres_hash_when_its_volumes_are_unsorted() {
    let dir = tempfile::tempdir().expect("temp dir");
    project(
        dir.path(),
        &[
            "pgdata:/var/lib/postgresql/data",
            "./init.sql:/docker-entrypoint-initdb.d/init.sql:ro",
        ],
    );
    assert_eq!(
        changed(dir.path(), None, Some(GRAFANA_LIMITS), &["grafana"]),
        vec!["postgres".to_string()]
    );
    // grafana itself changes too; only `except` hides it.
    assert_eq!(
        changed(dir.path(), None, Some(GRAFANA_LIMITS), &[]),
        vec!["grafana".to_string(), "postgres".to_string()]
    );
    // Once an override exists, changing it again leaves postgres alone.
    let bigger = GRAFANA_LIMITS.replace("1.5", "2");
    assert!(changed(
        dir.path(),
        Some(GRAFANA_LIMITS),
        Some(&bigger),
        &["grafana"]
    )
    .is_empty());
}

#[test]
fn volumes_listed_by_container_path_keep_postgres_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    project(
        dir.path(),
        &[
            "./init.sql:/docker-entrypoint-initdb.d/init.sql:ro",
            "pgdata:/var/lib/postgresql/data",
        ],
    );
    assert!(changed(dir.path(), None, Some(GRAFANA_LIMITS), &["grafana"]).is_empty());
    assert!(changed(dir.path(), None, None, &[]).is_empty());
}

#[test]
fn a_broken_compose_file_is_an_error_naming_the_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("docker-compose.yml"), "services: [\n").expect("write");
    let files = vec!["docker-compose.yml".to_string()];
    let err = services_changed(dir.path(), "tdep-hash-test", &files, None, None, &[])
        .expect_err("invalid YAML");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn side_effects_say_why_and_give_the_order_that_keeps_the_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    project(
        dir.path(),
        &[
            "pgdata:/var/lib/postgresql/data",
            "./init.sql:/docker-entrypoint-initdb.d/init.sql:ro",
        ],
    );
    let files = vec!["docker-compose.yml".to_string()];
    let effects = tuner::runtime::compose_hash::side_effects(
        dir.path(),
        "tdep-hash-test",
        &files,
        None,
        Some(GRAFANA_LIMITS),
        "grafana",
    )
    .expect("side_effects");
    assert!(effects.hash.is_some(), "{effects:?}");
    let effects = effects.others;
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert_eq!(effects[0].service, "postgres");
    let reason = &effects[0].reason;
    assert!(reason.contains("`volumes`"), "{reason}");
    let init = reason.find("init.sql").expect("init.sql named");
    let data = reason.find("/var/lib/postgresql/data").expect("data named");
    assert!(init < data, "sorted by container path: {reason}");
}
