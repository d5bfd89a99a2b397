//! `tuner resources` as a user runs it: on a small Compose project of its
//! own in a temp dir, the override it writes is accepted by
//! `docker-compose config`, keeps what others wrote, refuses to replace
//! their values or to make `up -d` recreate other services without
//! `--force`, and `--dry-run` writes nothing. Bad services.yaml files are
//! named at file:line with nothing written. `--capacity` reads a real
//! Prometheus scraping postgres-exporter.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const COMPOSE: &str = "version: \"2.4\"
services:
  db:
    image: tres-none:1
    cpus: 1.0
    mem_limit: 1g
  web:
    image: tres-none:1
    environment:
      A: b
";

const SERVICES: &str = "services:
  db:
    cpus: 1
    memory: 512M
    postgres: true
  web:
    cpus: 0.5
    memory: 128M
";

struct Project {
    dir: tempfile::TempDir,
    name: String,
}

impl Project {
    fn new(compose: &str, services: &str, prometheus_url: &str, with_compose: bool) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("tres-")
            .tempdir()
            .expect("temp dir");
        let name = format!("tres-{}", std::process::id());
        std::fs::write(dir.path().join("docker-compose.yml"), compose).unwrap();
        std::fs::write(dir.path().join("services.yaml"), services).unwrap();
        let compose_section = if with_compose {
            format!("compose:\n  project_dir: .\n  project: {name}\n")
        } else {
            String::new()
        };
        std::fs::write(
            dir.path().join("tuner.yaml"),
            format!(
                "prometheus:\n  url: {prometheus_url}\n  timeout: 3s\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\n{compose_section}profile: t\npaths:\n  state_dir: state\nmetrics:\n  m: {{query: vector(1), unit: ratio, window: 30s}}\nprofiles:\n  t: {{m: \">= 0\"}}\n"
            ),
        )
        .unwrap();
        Project { dir, name }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tuner(&self, args: &[&str]) -> Output {
        Command::new(support::tuner_bin())
            .arg("--config")
            .arg(self.path("tuner.yaml"))
            .arg("resources")
            .args(args)
            .stdin(Stdio::null())
            .env_remove("TUNER_PROFILE")
            .env_remove("TUNER_OUTPUT")
            .env_remove("DOCKER_HOST")
            .output()
            .expect("run tuner")
    }

    fn override_text(&self) -> Option<String> {
        std::fs::read_to_string(self.path("docker-compose.override.yml")).ok()
    }

    /// `docker-compose config` over both files: what `up -d` would use.
    fn compose_config(&self) -> Output {
        Command::new("docker-compose")
            .current_dir(self.dir.path())
            .args(["-p", &self.name, "config"])
            .output()
            .expect("run docker-compose")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn check(out: &Output, code: i32) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn the_override_is_accepted_by_docker_compose_and_keeps_other_keys() {
    let p = Project::new(COMPOSE, SERVICES, "http://127.0.0.1:9", true);
    let before = "version: \"2.4\"\nservices:\n  web:\n    environment:\n      B: c\n";
    std::fs::write(p.path("docker-compose.override.yml"), before).unwrap();

    let (stdout, _) = check(&p.tuner(&["--dry-run"]), 0);
    assert!(stdout.contains("would be written (--dry-run"), "{stdout}");
    assert!(
        stdout.contains("ALTER SYSTEM SET shared_buffers"),
        "{stdout}"
    );
    assert_eq!(
        p.override_text().as_deref(),
        Some(before),
        "--dry-run wrote"
    );
    assert!(
        !p.path("state/journal.jsonl").exists(),
        "--dry-run journaled"
    );

    let (stdout, _) = check(&p.tuner(&[]), 0);
    assert!(
        stdout.contains("docker-compose.override.yml: written"),
        "{stdout}"
    );
    let (config, stderr) = check(&p.compose_config(), 0);
    let v: serde_yaml::Value = serde_yaml::from_str(&config).unwrap();
    for service in ["db", "web"] {
        let s = &v["services"][service];
        for key in ["cpus", "mem_limit", "mem_reservation"] {
            assert!(
                s.get(key).is_some(),
                "{service}.{key} missing:\n{config}\n{stderr}"
            );
        }
    }
    assert_eq!(v["services"]["web"]["environment"]["B"], "c", "{config}");
    assert_eq!(v["services"]["web"]["environment"]["A"], "b", "{config}");
    let journal = std::fs::read_to_string(p.path("state/journal.jsonl")).unwrap();
    assert!(journal.contains("\"module\":\"resources\"") && journal.contains("\"written\""));

    let (stdout, _) = check(&p.tuner(&[]), 0);
    assert!(
        stdout.contains("already holds this plan; unchanged"),
        "{stdout}"
    );
    let (json, _) = check(&p.tuner(&["--dry-run", "-o", "json"]), 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON on stdout");
    assert_eq!(v["allocation"]["services"][0]["service"], "db");
    assert!(v["allocation"]["score"]["total"].as_u64().unwrap() <= 100);
    assert_eq!(v["postgres"]["settings"][0]["name"], "shared_buffers");
}

#[test]
fn values_others_set_are_replaced_only_with_force() {
    let p = Project::new(COMPOSE, SERVICES, "http://127.0.0.1:9", true);
    let before = "services:\n  web:\n    cpus: 0.123\n";
    std::fs::write(p.path("docker-compose.override.yml"), before).unwrap();
    let (stdout, _) = check(&p.tuner(&["--dry-run"]), 0);
    assert!(
        stdout.contains("A real run refuses this without --force"),
        "{stdout}"
    );
    assert!(stdout.contains("services.web.cpus: 0.123 -> "), "{stdout}");
    let (_, stderr) = check(&p.tuner(&[]), 2);
    assert!(
        stderr.contains("services.web.cpus: 0.123 there"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing was written; pass --force"),
        "{stderr}"
    );
    assert_eq!(p.override_text().as_deref(), Some(before));

    check(&p.tuner(&["--force"]), 0);
    let after = p.override_text().unwrap();
    assert!(!after.contains("0.123"), "{after}");
    check(&p.compose_config(), 0);
}

#[test]
fn a_change_to_another_services_compose_config_is_refused() {
    // docker-compose 1.29 reorders `cache`'s volumes once any override
    // exists: its hash moves although nobody resized it.
    let compose = format!(
        "{COMPOSE}  cache:\n    image: tres-none:1\n    volumes:\n      - d:/data\n      - ./x:/x\nvolumes:\n  d:\n"
    );
    let p = Project::new(&compose, SERVICES, "http://127.0.0.1:9", true);
    let (_, stderr) = check(&p.tuner(&[]), 2);
    assert!(
        stderr.contains("would also change the Compose config of cache"),
        "{stderr}"
    );
    assert_eq!(p.override_text(), None, "written despite the refusal");
    let (stdout, _) = check(&p.tuner(&["--force"]), 0);
    assert!(stdout.contains("recreates: db, web, cache"), "{stdout}");
    check(&p.compose_config(), 0);
}

#[test]
fn bad_input_is_named_at_file_and_line_and_nothing_is_written() {
    let cases: [(&str, String, &str); 6] = [
        (
            "unknown key",
            SERVICES.replace(
                "    postgres: true\n",
                "    postgres: true\n    cpu_limit: 2\n",
            ),
            "services.yaml:6:5: services.db: unknown field `cpu_limit`",
        ),
        (
            "unknown service",
            format!("{SERVICES}  redis:\n    cpus: 1\n    memory: 64M\n"),
            "services.yaml:9:3: services.redis: no service \"redis\" in",
        ),
        (
            "zero size",
            SERVICES.replace("cpus: 0.5", "cpus: 0"),
            "services.yaml:7:5: services.web.cpus:",
        ),
        (
            "negative size",
            SERVICES.replace("memory: 512M", "memory: -512M"),
            "services.yaml:4:5: services.db.memory: \"-512M\" is negative",
        ),
        (
            "malformed size",
            SERVICES.replace("memory: 128M", "memory: 128 furlongs"),
            "services.yaml:8:5: services.web.memory:",
        ),
        (
            "plan larger than the host",
            SERVICES.replace("memory: 512M", "memory: 900T\n    min_memory: 800T"),
            "the plan is larger than the host",
        ),
    ];
    for (what, services, want) in cases {
        let p = Project::new(COMPOSE, &services, "http://127.0.0.1:9", true);
        let (_, stderr) = check(&p.tuner(&[]), 2);
        assert!(stderr.contains(want), "{what}: want {want:?} in\n{stderr}");
        assert_eq!(p.override_text(), None, "{what}: written");
        assert!(!p.path("state").exists(), "{what}: state touched");
    }
    let p = Project::new(COMPOSE, SERVICES, "http://127.0.0.1:9", true);
    let (_, stderr) = check(&p.tuner(&["--profile", "turbo"]), 2);
    assert!(
        stderr.contains("auto, minimal, balanced or performance"),
        "{stderr}"
    );
    assert_eq!(p.override_text(), None);
}

#[test]
fn capacity_reads_a_real_prometheus_and_says_when_there_is_no_data() {
    let mon = support::prometheus::Monitoring::start();
    let services = "services:
  db:
    cpus: 1
    memory: 512M
    postgres: true
  exporter:
    cpus: 0.5
    memory: 128M
    requests: sum(rate(promhttp_metric_handler_requests_total{job=\"postgres-exporter\"}[5s]))
    cpu: sum(rate(process_cpu_seconds_total{job=\"postgres-exporter\"}[5s]))
    target_load: 3x
  ghost:
    cpus: 0.5
    memory: 128M
    requests: sum(rate(no_such_requests_total[5s]))
capacity:
  window: 30s
  transactions: sum(rate(pg_stat_database_xact_commit[5s]))
  wal_bytes: sum(pg_wal_lsn_bytes)
  storage_bytes: sum(pg_database_size_bytes)
  free_bytes: max(node_filesystem_avail_bytes{mountpoint=\"/\"})
";
    let p = Project::new(COMPOSE, services, &mon.prometheus_url, false);
    // Enough scrapes for rates and for predict_linear to see the WAL move.
    for _ in 0..6 {
        mon.write_load(2000);
        std::thread::sleep(Duration::from_secs(2));
    }
    let (json, stderr) = check(&p.tuner(&["--capacity", "-o", "json"]), 0);
    assert!(stderr.contains("no `compose:` section"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let c = &v["capacity"];
    let exporter = &c["services"][0];
    assert_eq!(exporter["service"], "exporter", "{c:#}");
    assert!(
        exporter["peak_rps"]["value"].as_f64().unwrap() > 0.0,
        "{c:#}"
    );
    assert!(
        exporter["peak_rps"]["samples"].as_u64().unwrap() >= 5,
        "{c:#}"
    );
    assert!(
        exporter["cpu_per_request"]["value"].as_f64().unwrap() > 0.0,
        "{c:#}"
    );
    assert!(exporter["needed_cpus"].as_f64().unwrap() > 0.0, "{c:#}");
    assert!(exporter["replicas"].as_u64().unwrap() >= 1, "{c:#}");
    let ghost = &c["services"][1];
    assert!(ghost["peak_rps"]["value"].is_null(), "{c:#}");
    assert_eq!(ghost["note"], "no request data in the window", "{c:#}");
    let pg = &c["postgres"];
    assert!(pg["peak_tps"]["value"].as_f64().unwrap() > 0.0, "{c:#}");
    assert!(
        pg["wal_bytes_per_day"]["value"].as_f64().unwrap() > 0.0,
        "{c:#}"
    );
    assert!(
        pg["wal_bytes_per_day"]["samples"].as_u64().unwrap() >= 2,
        "{c:#}"
    );
    assert!(
        pg["storage_bytes_per_day"]["samples"].as_u64().unwrap() >= 2,
        "{c:#}"
    );
    assert!(
        pg["free_bytes"]["value"].is_null(),
        "no node_exporter here: {c:#}"
    );
    assert!(pg["days_until_full"].is_null(), "{c:#}");

    let (table, _) = check(&p.tuner(&["--capacity"]), 0);
    assert!(
        table.contains("Capacity over the last 30s at 70% target utilisation"),
        "{table}"
    );
    assert!(table.contains("no data (30s"), "{table}");
    assert!(table.contains("full in: unknown"), "{table}");
}

#[test]
fn the_shipped_services_file_matches_the_demo_stack() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = tuner::resources::services::load(&root.join("config/services.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (main, known) = tuner::runtime::OverrideFile::in_dir(&root.join("demo"))
        .main_services()
        .unwrap()
        .expect("demo/docker-compose.yml");
    assert_eq!(file.unknown_services(&known, &main), Vec::<String>::new());
    assert_eq!(file.postgres().map(|s| s.name.as_str()), Some("postgres"));
}
