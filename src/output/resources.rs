//! The human text of `tuner resources`: the host, its score and tier, the
//! plan per service, what was left out, PostgreSQL's settings, the override
//! change and the capacity plan.

use std::fmt::Write;

use comfy_table::Cell;

use crate::config::units::{format_bytes, format_duration};
use crate::resources::capacity::Figure;
use crate::resources::{CapacityPlan, Report};
use crate::runtime::limits::trim;

const MIB: u64 = 1 << 20;

fn bytes(b: u64) -> String {
    // Whole MiB read better than exact bytes for sizes this large.
    if b >= 1 << 30 {
        format!("{:.1}G", b as f64 / (1u64 << 30) as f64)
    } else {
        format_bytes(b / MIB * MIB)
    }
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let h = &r.host;
    let a = &r.allocation;
    let disk_kind = match h.rotational {
        Some(true) => "HDD",
        Some(false) => "SSD",
        None => "disk type unknown",
    };
    let mhz = h
        .cpu_mhz
        .map(|m| format!(", {:.2} GHz", m / 1000.0))
        .unwrap_or_default();
    let cgroup = match (h.cgroup.version, h.cgroup.cpus, h.cgroup.memory_bytes) {
        (None, ..) => "no cgroup limits found".to_string(),
        (Some(v), None, None) => format!("cgroup v{v}: no limits on tuner"),
        (Some(v), c, m) => format!(
            "cgroup v{v}: tuner limited to {} CPUs, {}",
            c.map(trim).unwrap_or_else(|| "all".into()),
            m.map(bytes).unwrap_or_else(|| "all memory".into())
        ),
    };
    let _ = writeln!(
        out,
        "Host: {} cores / {} threads{mhz}, {} RAM, {} {disk_kind} with {} free ({}), load {:.2}, {} interface(s){}; {cgroup}",
        h.cores,
        h.threads,
        bytes(h.memory_bytes),
        bytes(h.disk_bytes),
        bytes(h.disk_free_bytes),
        h.disk_path.display(),
        h.load_1m,
        h.interfaces.len(),
        if h.interfaces.is_empty() { String::new() } else { format!(" ({})", h.interfaces.join(", ")) },
    );
    let s = &a.score;
    let (lo, hi) = a.host_tier.range();
    let _ = writeln!(
        out,
        "Score: {}/100 (CPU {}/30, RAM {}/30, disk {}/20, network {}/10, health {}/10): tier {} ({lo}-{hi})",
        s.total, s.cpu, s.ram, s.disk, s.network, s.health, a.host_tier.name()
    );
    let _ = writeln!(
        out,
        "Plan: tier {} (profile {}), sizes x{}; host keeps {} CPUs and {}; services get at most {} CPUs and {}",
        a.tier.name(),
        crate::resources::Profile::NAMES[a.profile as usize],
        a.multiplier,
        trim(a.reserve_cpus),
        bytes(a.reserve_memory),
        trim(a.available_cpus),
        bytes(a.available_memory)
    );

    let mut t = super::table(&[
        "service",
        "CPU limit",
        "CPU reserved",
        "memory limit",
        "memory reserved",
        "",
    ]);
    for s in &a.services {
        t.add_row(vec![
            Cell::new(&s.service),
            Cell::new(trim(s.cpus)),
            Cell::new(trim(s.cpu_reservation)),
            Cell::new(format_bytes(s.memory)),
            Cell::new(format_bytes(s.memory_reservation)),
            Cell::new(if s.shrunk { "shrunk to fit" } else { "" }),
        ]);
    }
    t.add_row(vec![
        Cell::new("total"),
        Cell::new(trim(a.total_cpus())),
        Cell::new(""),
        Cell::new(bytes(a.total_memory())),
        Cell::new(""),
        Cell::new(format!(
            "of {} CPUs, {}",
            trim(a.available_cpus),
            bytes(a.available_memory)
        )),
    ]);
    let _ = writeln!(out, "{t}");
    if !a.left_out.is_empty() {
        let _ = writeln!(out, "Left out:");
        for l in &a.left_out {
            let _ = writeln!(out, "  {}: {}", l.service, l.reason);
        }
    }

    if let Some(pg) = &r.postgres {
        let _ = writeln!(
            out,
            "\nPostgreSQL ({}, container limit {}, {} connections): the ALTER SYSTEM plan `tuner tune` would apply; not applied here",
            pg.service,
            format_bytes(pg.memory),
            pg.max_connections
        );
        let mut t = super::table(&["setting", "value", "from"]);
        for s in &pg.settings {
            t.add_row(vec![
                Cell::new(s.name),
                Cell::new(&s.value),
                Cell::new(&s.why),
            ]);
        }
        let _ = writeln!(out, "{t}");
        for s in &pg.settings {
            let _ = writeln!(out, "  {}", s.alter_system());
        }
    }

    if let Some(p) = &r.override_plan {
        let state = match (p.is_noop(), r.written, r.dry_run) {
            (true, ..) => "already holds this plan; unchanged",
            (false, true, _) => "written",
            (false, false, true) => "would be written (--dry-run: nothing written)",
            (false, false, false) => "not written",
        };
        let _ = writeln!(out, "\n{}: {state}", p.path.display());
        for c in &p.changes {
            let _ = writeln!(
                out,
                "  services.{}.{}: {} -> {}",
                c.service,
                c.key,
                c.before.as_deref().unwrap_or("(unset)"),
                c.after
            );
        }
        for b in &r.blocked {
            let _ = writeln!(out, "A real run refuses this without --force: {b}");
        }
        if !r.recreated.is_empty() {
            let _ = writeln!(
                out,
                "The next `docker-compose up -d` recreates: {}",
                r.recreated.join(", ")
            );
        }
    }
    if let Some(c) = &r.capacity {
        out.push_str(&capacity(c));
    }
    out
}

fn figure(f: &Figure, show: impl Fn(f64) -> String) -> String {
    let w = format_duration(f.window);
    match f.value {
        Some(v) => format!("{} ({w}, {} samples)", show(v), f.samples),
        None => format!("no data ({w}, {} samples)", f.samples),
    }
}

fn capacity(c: &CapacityPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nCapacity over the last {} at {:.0}% target utilisation:",
        format_duration(c.window),
        c.target_utilisation * 100.0
    );
    if !c.services.is_empty() {
        let mut t = super::table(&[
            "service",
            "peak req/s",
            "CPU s per request",
            "target req/s",
            "CPUs needed",
            "replicas",
            "",
        ]);
        for s in &c.services {
            t.add_row(vec![
                Cell::new(&s.service),
                Cell::new(
                    s.peak_rps
                        .as_ref()
                        .map(|f| figure(f, |v| format!("{v:.1}")))
                        .unwrap_or_default(),
                ),
                Cell::new(
                    s.cpu_per_request
                        .as_ref()
                        .map(|f| figure(f, |v| format!("{v:.5}")))
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::new(
                    s.target_rps
                        .map(|v| format!("{v:.1}"))
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::new(
                    s.needed_cpus
                        .map(|v| format!("{v:.2}"))
                        .unwrap_or_else(|| "-".into()),
                ),
                Cell::new(match (s.replicas, s.limit_cpus) {
                    (Some(n), Some(l)) => format!("{n} x {} CPUs", trim(l)),
                    _ => "-".into(),
                }),
                Cell::new(s.note.as_deref().unwrap_or("")),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    if let Some(pg) = &c.postgres {
        let rate = |v: f64| format!("{}/day", bytes(v.max(0.0) as u64));
        let _ = writeln!(out, "PostgreSQL:");
        let _ = writeln!(
            out,
            "  transactions/s: peak {}{}",
            figure(&pg.peak_tps, |v| format!("{v:.1}")),
            pg.mean_tps
                .map(|m| format!(", mean {m:.1}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "  WAL written: {}",
            figure(&pg.wal_bytes_per_day, rate)
        );
        let _ = writeln!(
            out,
            "  storage growth: {}",
            figure(&pg.storage_bytes_per_day, rate)
        );
        let _ = writeln!(
            out,
            "  free on the volume: {}",
            pg.free_bytes
                .value
                .map(|v| bytes(v as u64))
                .unwrap_or_else(|| "no data".into())
        );
        let days = match pg.days_until_full {
            Some(d) => format!(
                "{d:.0} days (growth +{:.0}% buffer)",
                c.storage_buffer * 100.0
            ),
            None => "unknown: no storage growth measured".into(),
        };
        let _ = writeln!(out, "  full in: {days}");
    }
    out
}
