//! Allocation from fixed host facts: every tier, the reserves, the
//! profiles, what is left out and why, PostgreSQL following its container.

use std::path::Path;

use super::score::tests::{host, tier_hosts};
use super::*;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

const FILE: &str = "\
host_reserve:
  cpu_percent: 10
  memory: 256M
services:
  postgres:
    cpus: 2
    memory: 2G
    postgres: true
  app:
    cpus: 1
    memory: 512M
  prometheus:
    cpus: 1
    memory: 1G
    enabled_from: basic
  grafana:
    cpus: 1
    memory: 512M
    enabled_from: standard
  tracing:
    cpus: 2
    memory: 2G
    enabled_from: performance
  search:
    cpus: 4
    memory: 4G
    enabled_from: high-performance
";

fn file(text: &str) -> ServicesFile {
    services::from_str(Path::new("config/services.yaml"), text).unwrap()
}

fn plan(h: &HostFacts, profile: Profile) -> Result<Allocation, AllocateError> {
    allocate(h, score(h), profile, &file(FILE))
}

fn names(a: &Allocation) -> Vec<&str> {
    a.services.iter().map(|s| s.service.as_str()).collect()
}

/// Never more than the host minus its reserve, and reservations within limits.
fn within_host(a: &Allocation) {
    assert!(
        a.total_cpus() <= a.host_cpus - a.reserve_cpus + 1e-9,
        "{a:#?}"
    );
    assert!(
        a.total_memory() <= a.host_memory - a.reserve_memory,
        "{a:#?}"
    );
    for s in &a.services {
        assert!(s.cpu_reservation <= s.cpus && s.memory_reservation <= s.memory);
        assert!(s.cpus > 0.0 && s.memory > 0);
    }
}

#[test]
fn each_tier_enables_its_services_with_its_reserve() {
    let wants = [
        vec!["postgres", "app"],
        vec!["postgres", "app", "prometheus"],
        vec!["postgres", "app", "prometheus", "grafana"],
        vec!["postgres", "app", "prometheus", "grafana", "tracing"],
        vec![
            "postgres",
            "app",
            "prometheus",
            "grafana",
            "tracing",
            "search",
        ],
    ];
    let cases = tier_hosts()
        .into_iter()
        .zip(Tier::ALL)
        .zip(wants)
        .map(|((h, t), w)| (h, t, w));
    for (h, tier, want) in cases {
        let a = plan(&h, Profile::Auto).unwrap();
        assert_eq!(a.tier, tier, "score {}", a.score.total);
        assert_eq!(names(&a), want, "{tier:?}");
        let pct = tier.reserve_percent();
        assert!((a.reserve_cpus - h.usable_cpus() * pct / 100.0).abs() < 1e-9);
        assert!(a.reserve_memory >= (h.memory_bytes as f64 * pct / 100.0) as u64);
        within_host(&a);
        for out in &a.left_out {
            assert!(out.reason.contains("enabled from the"), "{out:?}");
        }
    }
}

#[test]
fn sizes_scale_with_the_tier_multiplier_when_they_fit() {
    let a = plan(&host(32, 128 * GIB), Profile::Auto).unwrap();
    let pg = a.get("postgres").unwrap();
    assert_eq!((pg.cpus, pg.memory), (3.0, 3 * GIB));
    assert_eq!(
        (pg.cpu_reservation, pg.memory_reservation),
        (0.75, 768 * MIB)
    );
    assert!(!pg.shrunk);
}

#[test]
fn a_small_host_shrinks_services_and_never_exceeds_the_host() {
    let a = plan(&host(2, 4 * GIB), Profile::Auto).unwrap();
    within_host(&a);
    assert!(a.services.iter().any(|s| s.shrunk), "{a:#?}");
}

#[test]
fn a_profile_overrides_the_tier_but_not_the_host() {
    let h = tier_hosts()[1].clone();
    let text = FILE.replace(
        "    enabled_from: performance\n",
        "    enabled_from: performance\n    min_cpus: 1.5\n",
    );
    let a = allocate(&h, score(&h), Profile::Performance, &file(&text)).unwrap();
    assert_eq!(a.tier, Tier::Performance);
    assert_eq!(a.host_tier, Tier::Basic);
    within_host(&a);
    // tracing needs 1.5 of the 1.5 CPUs left beside the others: no room.
    let reasons: Vec<&str> = a.left_out.iter().map(|l| l.reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("no room")), "{reasons:?}");
    let m = plan(&host(16, 64 * GIB), Profile::Minimal).unwrap();
    assert_eq!(names(&m), ["postgres", "app"]);
    assert!(
        m.left_out[0].reason.contains("--profile minimal"),
        "{:?}",
        m.left_out
    );
    assert_eq!(plan(&h, Profile::Balanced).unwrap().tier, Tier::Standard);
}

#[test]
fn a_plan_larger_than_the_host_is_an_error_naming_the_file() {
    let text = FILE.replace(
        "    cpus: 2\n    memory: 2G\n    postgres: true\n",
        "    cpus: 2\n    memory: 2G\n    min_memory: 2G\n    postgres: true\n",
    );
    let err = allocate(
        &host(1, 2 * GIB),
        score(&host(1, 2 * GIB)),
        Profile::Auto,
        &file(&text),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("larger than the host"), "{err}");
    assert!(err.contains("postgres, app"), "{err}");
    assert!(err.contains("config/services.yaml"), "{err}");
}

#[test]
fn the_host_reserve_from_the_file_wins_when_larger() {
    let text = FILE
        .replace("cpu_percent: 10", "cpu_percent: 60")
        .replace("memory: 256M\nservices", "memory: 3G\nservices");
    let h = host(16, 64 * GIB);
    let a = allocate(&h, score(&h), Profile::Auto, &file(&text)).unwrap();
    assert!((a.reserve_cpus - 16.0 * 0.6).abs() < 1e-9);
    let small = host(4, 8 * GIB);
    let b = allocate(&small, score(&small), Profile::Auto, &file(&text)).unwrap();
    assert_eq!(b.reserve_memory, 3 * GIB);
    within_host(&b);
}

#[test]
fn postgres_settings_follow_its_container_not_the_host() {
    let f = file(FILE);
    let big = host(32, 128 * GIB);
    let a = allocate(&big, score(&big), Profile::Auto, &f).unwrap();
    let p = postgres_plan(&a, &f, &big).unwrap();
    assert_eq!(p.memory, 3 * GIB);
    let shared = &p.settings[0];
    assert_eq!(
        (shared.name, shared.value.as_str()),
        ("shared_buffers", "768MB")
    );
    // The same host planned minimal gives postgres less, and so less memory.
    let m = allocate(&big, score(&big), Profile::Minimal, &f).unwrap();
    let pm = postgres_plan(&m, &f, &big).unwrap();
    assert_eq!(pm.memory, GIB);
    assert_eq!(pm.settings[0].value, "256MB");
}
