//! The sizing rule, pure: one reading of a service against its state and
//! the `watch:` numbers gives a decision. No I/O, so every rule (the third
//! check, the cooldown, the daily limit, the memory floor, the OOM rule,
//! the 10% skip, the bounds) is tested over fake usage sequences.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::state::ServiceState;
use crate::config::units::format_bytes;
use crate::config::watch::WatchConfig;
use crate::runtime::limits::trim;

/// What one check saw of one service's container.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    pub container_id: String,
    /// Cores in use over the last interval; `None` before a rate exists.
    pub cpu_used: Option<f64>,
    /// Cores allowed; 0 = no limit.
    pub cpu_limit: f64,
    /// Working set (usage minus inactive file cache), bytes.
    pub memory_used: u64,
    /// 0 = no limit.
    pub memory_limit: u64,
    /// The container's OOM-kill counter.
    pub oom_kills: u64,
}

impl Reading {
    pub fn cpu_share(&self) -> Option<f64> {
        let used = self.cpu_used?;
        (self.cpu_limit > 0.0).then(|| used / self.cpu_limit)
    }

    pub fn memory_share(&self) -> Option<f64> {
        (self.memory_limit > 0).then(|| self.memory_used as f64 / self.memory_limit as f64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// One resource's move.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Move<T> {
    pub from: T,
    pub to: T,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Adjustment {
    pub cpus: Option<Move<f64>>,
    pub memory: Option<Move<u64>>,
    /// Why, in words: `cpu above 80% for 3 checks`.
    pub reason: String,
    /// Raised at once after an OOM kill.
    pub oom: bool,
}

impl Adjustment {
    /// Up when anything grows: a raise is the side that protects the service.
    pub fn direction(&self) -> Direction {
        let cpu_up = self.cpus.is_some_and(|m| m.to > m.from);
        let mem_up = self.memory.is_some_and(|m| m.to > m.from);
        if cpu_up || mem_up {
            Direction::Up
        } else {
            Direction::Down
        }
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.cpus {
            parts.push(format!("cpus {} -> {}", trim(m.from), trim(m.to)));
        }
        if let Some(m) = self.memory {
            parts.push(format!(
                "memory {} -> {}",
                format_bytes(m.from),
                format_bytes(m.to)
            ));
        }
        parts.join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Adjust(Adjustment),
    Hold { reason: String },
}

fn hold(reason: impl Into<String>) -> Decision {
    Decision::Hold {
        reason: reason.into(),
    }
}

/// Counts this reading into `st` (streaks, peak, OOMs) and decides. The
/// caller records a made change with [`record_change`].
pub fn decide(
    cfg: &WatchConfig,
    st: &mut ServiceState,
    r: &Reading,
    now: DateTime<Utc>,
) -> Decision {
    st.follow(&r.container_id);
    st.peak_memory = st.peak_memory.max(r.memory_used);
    let new_oom = r.oom_kills > st.oom_kills_seen;
    st.oom_kills_seen = r.oom_kills;
    if new_oom {
        st.ooms.push(now);
        let keep = Duration::from_std(cfg.oom_block).unwrap_or(Duration::hours(24));
        st.ooms
            .retain(|t| now - *t <= keep.max(Duration::hours(24)));
    }
    if let Some(share) = r.cpu_share() {
        st.cpu.count(share, cfg.high, cfg.low, cfg.checks);
    }
    if let Some(share) = r.memory_share() {
        st.memory.count(share, cfg.high, cfg.low, cfg.checks);
    }
    let today = st.changes_today(now);
    let daily_full = today >= cfg.max_per_day as usize;

    if new_oom {
        if r.memory_limit == 0 {
            return hold("OOM kill, but the container has no memory limit to raise");
        }
        if daily_full {
            return hold(format!(
                "OOM kill, but {today} adjustments in 24h already (watch.max_per_day)"
            ));
        }
        let from = r.memory_limit;
        let raised = (from as f64 * (1.0 + cfg.oom_raise_by)) as u64;
        let to = round_mib(raised.max(from + cfg.oom_raise_min).min(cfg.memory_max));
        if to <= from {
            return hold(format!(
                "OOM kill, but memory is at its ceiling {} (watch.memory_max)",
                format_bytes(cfg.memory_max)
            ));
        }
        st.memory = Default::default();
        return Decision::Adjust(Adjustment {
            cpus: None,
            memory: Some(Move { from, to }),
            reason: format!(
                "OOM kill: memory up at once; no decrease for {}",
                crate::config::units::format_duration(cfg.oom_block)
            ),
            oom: true,
        });
    }

    if let Some(last) = st.last_change {
        let cooldown = Duration::from_std(cfg.cooldown).unwrap_or(Duration::minutes(30));
        if now - last < cooldown {
            return hold(format!(
                "cooldown until {} ({})",
                (last + cooldown).format("%H:%M:%S UTC"),
                usage_words(cfg, st, r)
            ));
        }
    }
    if daily_full {
        return hold(format!(
            "{today} adjustments in 24h, the most allowed (watch.max_per_day)"
        ));
    }

    let mut reasons = Vec::new();
    let mut skipped = Vec::new();
    let cpus = cpu_move(cfg, st, r, &mut reasons, &mut skipped);
    let memory = memory_move(cfg, st, r, now, &mut reasons, &mut skipped);
    if cpus.is_none() && memory.is_none() {
        let mut why = usage_words(cfg, st, r);
        if !skipped.is_empty() {
            why = format!("{why}; {}", skipped.join("; "));
        }
        return hold(why);
    }
    if cpus.is_some() {
        st.cpu = Default::default();
    }
    if memory.is_some() {
        st.memory = Default::default();
    }
    Decision::Adjust(Adjustment {
        cpus,
        memory,
        reason: reasons.join("; "),
        oom: false,
    })
}

/// Starts the cooldown and counts the change into the day.
pub fn record_change(st: &mut ServiceState, now: DateTime<Utc>) {
    st.last_change = Some(now);
    st.changes.push(now);
}

fn cpu_move(
    cfg: &WatchConfig,
    st: &ServiceState,
    r: &Reading,
    reasons: &mut Vec<String>,
    skipped: &mut Vec<String>,
) -> Option<Move<f64>> {
    let from = r.cpu_limit;
    if from <= 0.0 || r.cpu_share().is_none() {
        return None;
    }
    let to = if st.cpu.high >= cfg.checks {
        let to = round_cpus((from * (1.0 + cfg.raise_by)).min(cfg.cpu_max));
        if to <= from {
            skipped.push(format!(
                "cpu at its ceiling {} (watch.cpu_max)",
                trim(cfg.cpu_max)
            ));
            return None;
        }
        reasons.push(format!(
            "cpu above {:.0}% for {} checks",
            cfg.high * 100.0,
            st.cpu.high
        ));
        to
    } else if st.cpu.low >= cfg.checks {
        let to = round_cpus((from * (1.0 - cfg.lower_by)).max(cfg.cpu_min));
        if to >= from {
            skipped.push(format!(
                "cpu at its floor {} (watch.cpu_min)",
                trim(cfg.cpu_min)
            ));
            return None;
        }
        reasons.push(format!(
            "cpu below {:.0}% for {} checks",
            cfg.low * 100.0,
            st.cpu.low
        ));
        to
    } else {
        return None;
    };
    if (to - from).abs() / from < cfg.min_change {
        reasons.pop();
        skipped.push(format!(
            "cpu change {} -> {} is under {:.0}% (watch.min_change)",
            trim(from),
            trim(to),
            cfg.min_change * 100.0
        ));
        return None;
    }
    Some(Move { from, to })
}

fn memory_move(
    cfg: &WatchConfig,
    st: &ServiceState,
    r: &Reading,
    now: DateTime<Utc>,
    reasons: &mut Vec<String>,
    skipped: &mut Vec<String>,
) -> Option<Move<u64>> {
    let from = r.memory_limit;
    if from == 0 {
        return None;
    }
    let to = if st.memory.high >= cfg.checks {
        let to = round_mib(((from as f64 * (1.0 + cfg.raise_by)) as u64).min(cfg.memory_max));
        if to <= from {
            skipped.push(format!(
                "memory at its ceiling {} (watch.memory_max)",
                format_bytes(cfg.memory_max)
            ));
            return None;
        }
        reasons.push(format!(
            "memory above {:.0}% for {} checks",
            cfg.high * 100.0,
            st.memory.high
        ));
        to
    } else if st.memory.low >= cfg.checks {
        let block = Duration::from_std(cfg.oom_block).unwrap_or(Duration::hours(24));
        if let Some(oom) = st.last_oom().filter(|t| now - *t < block) {
            skipped.push(format!(
                "memory not lowered: OOM kill at {} (watch.oom_block)",
                oom.format("%Y-%m-%d %H:%M UTC")
            ));
            return None;
        }
        let floor = floor(cfg, st).max(r.memory_used + margin(r.memory_used));
        let to = round_mib_up(((from as f64 * (1.0 - cfg.lower_by)) as u64).max(floor));
        if to >= from {
            skipped.push(format!(
                "memory at its floor {} (peak {} + {:.0}%, watch.memory_min {})",
                format_bytes(floor),
                format_bytes(st.peak_memory),
                cfg.peak_margin * 100.0,
                format_bytes(cfg.memory_min)
            ));
            return None;
        }
        reasons.push(format!(
            "memory below {:.0}% for {} checks",
            cfg.low * 100.0,
            st.memory.low
        ));
        to
    } else {
        return None;
    };
    if (to as f64 - from as f64).abs() / (from as f64) < cfg.min_change {
        reasons.pop();
        skipped.push(format!(
            "memory change {} -> {} is under {:.0}% (watch.min_change)",
            format_bytes(from),
            format_bytes(to),
            cfg.min_change * 100.0
        ));
        return None;
    }
    Some(Move { from, to })
}

/// The headroom the engine side demands above the working set before it
/// shrinks a limit (`Runtime::check_memory_fits`): deciding below it would
/// only earn a refusal.
fn margin(used: u64) -> u64 {
    crate::runtime::MemoryUsage {
        usage: used,
        inactive_file: 0,
        limit: 0,
    }
    .margin()
}

/// The lowest memory limit allowed: the observed peak plus its margin, and
/// never under `memory_min`.
pub fn floor(cfg: &WatchConfig, st: &ServiceState) -> u64 {
    ((st.peak_memory as f64 * (1.0 + cfg.peak_margin)) as u64).max(cfg.memory_min)
}

fn usage_words(cfg: &WatchConfig, st: &ServiceState, r: &Reading) -> String {
    let cpu = match r.cpu_share() {
        Some(s) => format!(
            "cpu {:.0}% of {} (high {}/{}, low {}/{})",
            s * 100.0,
            trim(r.cpu_limit),
            st.cpu.high,
            cfg.checks,
            st.cpu.low,
            cfg.checks
        ),
        None if r.cpu_limit <= 0.0 => "cpu: no limit".to_string(),
        None => "cpu: first reading".to_string(),
    };
    let mem = match r.memory_share() {
        Some(s) => format!(
            "memory {:.0}% of {} (high {}/{}, low {}/{})",
            s * 100.0,
            format_bytes(r.memory_limit),
            st.memory.high,
            cfg.checks,
            st.memory.low,
            cfg.checks
        ),
        None => "memory: no limit".to_string(),
    };
    format!("{cpu}, {mem}")
}

/// Docker takes CPUs to a hundredth.
fn round_cpus(c: f64) -> f64 {
    (c * 100.0).round() / 100.0
}

const MIB: u64 = 1 << 20;

/// Whole MiB, so the Compose file can say `96m`.
fn round_mib(b: u64) -> u64 {
    (b / MIB).max(1) * MIB
}

fn round_mib_up(b: u64) -> u64 {
    b.div_ceil(MIB) * MIB
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
