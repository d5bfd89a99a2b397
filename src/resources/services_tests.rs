//! services.yaml: the good file, and every kind of bad one at its line.

use std::path::Path;

use super::score::Tier;
use super::services::*;

pub const GOOD: &str = "\
host_reserve:
  cpu_percent: 20
  memory: 512M
multipliers:
  minimal: 0.5
services:
  postgres:
    cpus: 1.0
    memory: 1G
    postgres: true
  app:
    cpus: 0.5
    memory: 256M
    requests: sum(rate(x_total[1m]))
    target_load: 2x
  grafana:
    cpus: 0.5
    memory: 256M
    enabled_from: standard
";

fn parse(text: &str) -> Result<ServicesFile, String> {
    from_str(Path::new("config/services.yaml"), text).map_err(|e| e.to_string())
}

#[test]
fn good_file_keeps_file_order_and_defaults() {
    let f = parse(GOOD).unwrap();
    let names: Vec<&str> = f.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["postgres", "app", "grafana"]);
    assert_eq!(f.reserve_memory, 512 << 20);
    assert_eq!(f.reserve_cpu_percent, 20.0);
    assert_eq!(f.multipliers[&Tier::Minimal], 0.5);
    assert_eq!(f.multipliers[&Tier::Performance], 1.25);
    assert_eq!(f.reservation, 0.25);
    assert_eq!(f.services[2].enabled_from, Tier::Standard);
    assert_eq!(f.services[1].target_load, TargetLoad::TimesPeak(2.0));
    assert_eq!(f.postgres().map(|s| s.name.as_str()), Some("postgres"));
    assert_eq!(f.capacity.target_utilisation, 0.7);
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let err = parse(&GOOD.replace(
        "    postgres: true\n",
        "    postgres: true\n    cpu_limit: 2\n",
    ))
    .unwrap_err();
    assert!(err.starts_with("config/services.yaml:11:"), "{err}");
    assert!(err.contains("unknown field `cpu_limit`"), "{err}");
    let err = parse(&GOOD.replace("  minimal: 0.5", "  huge: 0.5")).unwrap_err();
    assert!(err.starts_with("config/services.yaml:5:"), "{err}");
}

#[test]
fn zero_negative_and_malformed_sizes_are_all_reported_at_their_lines() {
    let text = GOOD
        .replace("cpus: 1.0", "cpus: 0")
        .replace("memory: 1G", "memory: -1G")
        .replace(
            "    cpus: 0.5\n    memory: 256M\n    requests",
            "    cpus: -2\n    memory: 12 parsecs\n    requests",
        );
    let err = parse(&text).unwrap_err();
    for want in [
        "config/services.yaml:8:5: services.postgres.cpus: ",
        "config/services.yaml:9:5: services.postgres.memory: \"-1G\" is negative",
        "config/services.yaml:12:5: services.app.cpus: ",
        "config/services.yaml:13:5: services.app.memory: ",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    let err = parse(&GOOD.replace("memory: 1G", "memory: 1K")).unwrap_err();
    assert!(err.contains("below Docker's minimum of 6M"), "{err}");
}

#[test]
fn unknown_tier_and_bad_percentages_are_errors() {
    let err = parse(&GOOD.replace("enabled_from: standard", "enabled_from: turbo")).unwrap_err();
    assert!(err.starts_with("config/services.yaml:19:"), "{err}");
    let err = parse(&GOOD.replace("cpu_percent: 20", "cpu_percent: 150")).unwrap_err();
    assert!(
        err.contains("config/services.yaml:2:3: host_reserve.cpu_percent: 150% is not between"),
        "{err}"
    );
}

#[test]
fn services_missing_from_compose_are_named_at_their_line() {
    let f = parse(GOOD).unwrap();
    let problems = f.unknown_services(
        &["postgres".into(), "app".into()],
        Path::new("demo/docker-compose.yml"),
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("config/services.yaml:16:3: services.grafana: no service \"grafana\" in demo/docker-compose.yml"), "{}", problems[0]);
}
