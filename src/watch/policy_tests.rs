use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::watch::state::ServiceState;

const M: u64 = 1 << 20;

fn cfg() -> WatchConfig {
    WatchConfig::default()
}

fn reading(cpu_used: f64, cpu_limit: f64, mem_used: u64, mem_limit: u64) -> Reading {
    Reading {
        container_id: "c1".into(),
        cpu_used: Some(cpu_used),
        cpu_limit,
        memory_used: mem_used,
        memory_limit: mem_limit,
        oom_kills: 0,
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
}

/// Feeds readings one check (5 min) apart; returns the decisions.
fn run(st: &mut ServiceState, readings: &[Reading], start: DateTime<Utc>) -> Vec<Decision> {
    readings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let now = start + Duration::minutes(5 * i as i64);
            let d = decide(&cfg(), st, r, now);
            if matches!(d, Decision::Adjust(_)) {
                record_change(st, now);
            }
            d
        })
        .collect()
}

fn adjusted(d: &Decision) -> &Adjustment {
    match d {
        Decision::Adjust(a) => a,
        Decision::Hold { reason } => panic!("expected an adjustment, held: {reason}"),
    }
}

fn is_hold(d: &Decision) -> bool {
    matches!(d, Decision::Hold { .. })
}

#[test]
fn busy_cpu_is_raised_25_percent_on_the_third_check_not_before() {
    let mut st = ServiceState::default();
    let busy = reading(0.9, 1.0, 64 * M, 128 * M);
    let d = run(&mut st, &[busy.clone(), busy.clone(), busy], t0());
    assert!(is_hold(&d[0]) && is_hold(&d[1]), "{d:?}");
    let a = adjusted(&d[2]);
    assert_eq!(
        a.cpus,
        Some(Move {
            from: 1.0,
            to: 1.25
        })
    );
    assert_eq!(a.memory, None);
    assert_eq!(a.direction(), Direction::Up);
}

#[test]
fn a_dip_in_between_restarts_the_count() {
    let mut st = ServiceState::default();
    let busy = reading(0.9, 1.0, 64 * M, 128 * M);
    let calm = reading(0.5, 1.0, 64 * M, 128 * M);
    let d = run(
        &mut st,
        &[busy.clone(), busy.clone(), calm, busy.clone(), busy],
        t0(),
    );
    assert!(d.iter().all(is_hold), "{d:?}");
}

#[test]
fn cooldown_holds_then_releases() {
    let mut st = ServiceState::default();
    let busy = reading(0.9, 1.0, 64 * M, 128 * M);
    // Checks 5 min apart: adjusted at check 3 (t=10m); cooldown 30m holds
    // until t=40m; the streak keeps counting, so t=40m acts at once.
    let d = run(&mut st, &vec![busy; 10], t0());
    let acted: Vec<usize> = (0..d.len()).filter(|i| !is_hold(&d[*i])).collect();
    assert_eq!(acted, vec![2, 8], "{d:?}");
    match &d[3] {
        Decision::Hold { reason } => assert!(reason.contains("cooldown"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn at_most_six_adjustments_a_day() {
    let mut st = ServiceState::default();
    let mut c = cfg();
    c.cooldown = std::time::Duration::from_secs(0);
    c.checks = 1;
    c.cpu_max = 1000.0;
    let mut made = 0;
    let mut last_reason = String::new();
    for i in 0..10 {
        let now = t0() + Duration::minutes(i);
        let limit = 1.0 * 1.25f64.powi(made);
        let r = reading(limit, limit, 64 * M, 128 * M);
        match decide(&c, &mut st, &r, now) {
            Decision::Adjust(_) => {
                record_change(&mut st, now);
                made += 1;
            }
            Decision::Hold { reason } => last_reason = reason,
        }
    }
    assert_eq!(made, 6);
    assert!(last_reason.contains("max_per_day"), "{last_reason}");
    // A day after the first change, one more is allowed.
    let later = t0() + Duration::hours(24) + Duration::minutes(1);
    let limit = 1.25f64.powi(6);
    let d = decide(&c, &mut st, &reading(limit, limit, 64 * M, 128 * M), later);
    assert!(!is_hold(&d), "{d:?}");
}

#[test]
fn idle_memory_is_lowered_but_never_below_peak_plus_15_percent() {
    let mut st = ServiceState::default();
    // Peak 100M seen once, then idle at 20M of 256M.
    let mut readings = vec![reading(0.5, 1.0, 100 * M, 256 * M)];
    readings.extend(vec![reading(0.5, 1.0, 20 * M, 256 * M); 3]);
    let d = run(&mut st, &readings, t0());
    let a = adjusted(&d[3]);
    assert_eq!(
        a.memory,
        Some(Move {
            from: 256 * M,
            to: 192 * M
        })
    );
    assert_eq!(a.direction(), Direction::Down);
    // From 192M, -25% would be 144M; the floor is 115M: 144M.
    // From 144M: 108M < 115M floor -> 115M (rounded up to whole MiB).
    let mut now = t0() + Duration::hours(1);
    let mut limit = 192 * M;
    let mut seen = vec![];
    for _ in 0..12 {
        let d = decide(&cfg(), &mut st, &reading(0.5, 1.0, 20 * M, limit), now);
        if let Decision::Adjust(a) = &d {
            record_change(&mut st, now);
            limit = a.memory.unwrap().to;
            seen.push(limit);
        }
        now += Duration::minutes(31);
    }
    assert_eq!(seen, vec![144 * M, 115 * M]);
    assert!(limit >= floor(&cfg(), &st));
}

#[test]
fn memory_floor_is_also_memory_min() {
    let mut st = ServiceState::default();
    let d = run(&mut st, &vec![reading(0.5, 1.0, 2 * M, 80 * M); 3], t0());
    // -25% of 80M = 60M, under the 64M minimum: 64M, a 20% step.
    assert_eq!(
        adjusted(&d[2]).memory,
        Some(Move {
            from: 80 * M,
            to: 64 * M
        })
    );
}

#[test]
fn an_oom_kill_raises_memory_at_once_and_blocks_decreases_for_a_day() {
    let mut st = ServiceState::default();
    let mut oom = reading(0.5, 1.0, 60 * M, 64 * M);
    oom.oom_kills = 1;
    let d = decide(&cfg(), &mut st, &oom, t0());
    let a = adjusted(&d);
    // +20% of 64M is under +100M: +100M.
    assert_eq!(
        a.memory,
        Some(Move {
            from: 64 * M,
            to: 164 * M
        })
    );
    assert!(a.oom);
    record_change(&mut st, t0());
    // Even during the cooldown, a second OOM raises again.
    let mut again = reading(0.5, 1.0, 160 * M, 164 * M);
    again.oom_kills = 2;
    let d = decide(&cfg(), &mut st, &again, t0() + Duration::minutes(5));
    assert_eq!(adjusted(&d).memory.unwrap().to, 264 * M);
    record_change(&mut st, t0() + Duration::minutes(5));
    // Idle for hours afterwards: never lowered within 24 h.
    let idle = Reading {
        oom_kills: 2,
        ..reading(0.5, 1.0, 10 * M, 264 * M)
    };
    let mut now = t0() + Duration::hours(1);
    for _ in 0..20 {
        let d = decide(&cfg(), &mut st, &idle, now);
        if let Decision::Adjust(a) = &d {
            assert!(a.memory.is_none(), "memory lowered after an OOM: {a:?}");
        }
        now += Duration::minutes(35);
    }
    // After the block, the floor (peak 160M + 15% = 184M) still holds.
    let d = decide(&cfg(), &mut st, &idle, t0() + Duration::hours(30));
    let to = adjusted(&d).memory.unwrap().to;
    assert!((184 * M..264 * M).contains(&to), "{to}");
}

#[test]
fn an_oom_raise_of_a_large_limit_is_20_percent() {
    let mut st = ServiceState::default();
    let mut r = reading(0.5, 1.0, 1000 * M, 1024 * M);
    r.oom_kills = 3;
    let a = adjusted(&decide(&cfg(), &mut st, &r, t0())).clone();
    assert_eq!(a.memory.unwrap().to, 1228 * M);
}

#[test]
fn changes_under_10_percent_are_skipped() {
    let mut st = ServiceState::default();
    // 7.5 CPUs busy: +25% is capped at 8.0, a 6.7% step: skipped.
    let d = run(&mut st, &vec![reading(7.4, 7.5, 64 * M, 128 * M); 3], t0());
    match &d[2] {
        Decision::Hold { reason } => assert!(reason.contains("min_change"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bounds_hold_both_ways() {
    let mut st = ServiceState::default();
    let d = run(&mut st, &vec![reading(7.9, 8.0, 64 * M, 128 * M); 3], t0());
    match &d[2] {
        Decision::Hold { reason } => assert!(reason.contains("cpu_max"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut st = ServiceState::default();
    let d = run(&mut st, &vec![reading(0.0, 0.1, 64 * M, 128 * M); 3], t0());
    match &d[2] {
        Decision::Hold { reason } => assert!(reason.contains("cpu_min"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut st = ServiceState::default();
    let d = run(&mut st, &vec![reading(0.0, 0.12, 64 * M, 128 * M); 3], t0());
    // -25% of 0.12 is 0.09, under 0.1: 0.1 (a 17% step).
    assert_eq!(
        adjusted(&d[2]).cpus,
        Some(Move {
            from: 0.12,
            to: 0.1
        })
    );
    let mut st = ServiceState::default();
    let d = run(
        &mut st,
        &vec![reading(0.5, 1.0, 6900 * M, 7000 * M); 3],
        t0(),
    );
    assert_eq!(adjusted(&d[2]).memory.unwrap().to, 8192 * M);
}

#[test]
fn no_rate_yet_or_no_limit_counts_nothing() {
    let mut st = ServiceState::default();
    let mut first = reading(0.0, 1.0, 64 * M, 0);
    first.cpu_used = None;
    let d = run(&mut st, &vec![first; 5], t0());
    assert!(d.iter().all(is_hold));
    assert_eq!(st.cpu.high + st.cpu.low + st.memory.high + st.memory.low, 0);
}

#[test]
fn a_new_container_starts_its_streak_over() {
    let mut st = ServiceState::default();
    let busy = reading(0.9, 1.0, 64 * M, 128 * M);
    let mut other = busy.clone();
    other.container_id = "c2".into();
    let d = run(&mut st, &[busy.clone(), busy, other], t0());
    assert!(d.iter().all(is_hold), "{d:?}");
}
