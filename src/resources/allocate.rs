//! Limits and reservations per service from the host, its tier (or the
//! profile asked for) and services.yaml. Never more than the host minus its
//! reserve: sizes shrink toward each service's minimum, then the optional
//! services (enabled above the lowest tier) are left out from the end of
//! the file, each with its reason.

use serde::Serialize;

use super::host::HostFacts;
use super::score::{Score, Tier};
use super::services::ServicesFile;

/// `--profile`: which tier's sizes and reserves to plan with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The host's own tier, from its score.
    Auto,
    Minimal,
    Balanced,
    Performance,
}

impl Profile {
    pub const NAMES: [&'static str; 4] = ["auto", "minimal", "balanced", "performance"];

    pub fn parse(name: &str) -> Option<Profile> {
        match name {
            "auto" => Some(Profile::Auto),
            "minimal" => Some(Profile::Minimal),
            "balanced" => Some(Profile::Balanced),
            "performance" => Some(Profile::Performance),
            _ => None,
        }
    }

    /// The tier planned for: the host's own for `auto`.
    pub fn tier(self, host_tier: Tier) -> Tier {
        match self {
            Profile::Auto => host_tier,
            Profile::Minimal => Tier::Minimal,
            Profile::Balanced => Tier::Standard,
            Profile::Performance => Tier::Performance,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocated {
    pub service: String,
    pub cpus: f64,
    pub memory: u64,
    pub cpu_reservation: f64,
    pub memory_reservation: u64,
    /// Shrunk below base x multiplier to fit the host.
    pub shrunk: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOut {
    pub service: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    pub score: Score,
    pub host_tier: Tier,
    pub profile: Profile,
    pub tier: Tier,
    pub multiplier: f64,
    pub host_cpus: f64,
    pub host_memory: u64,
    pub reserve_cpus: f64,
    pub reserve_memory: u64,
    pub available_cpus: f64,
    pub available_memory: u64,
    pub services: Vec<Allocated>,
    pub left_out: Vec<LeftOut>,
}

impl Allocation {
    pub fn total_cpus(&self) -> f64 {
        self.services.iter().map(|s| s.cpus).sum()
    }
    pub fn total_memory(&self) -> u64 {
        self.services.iter().map(|s| s.memory).sum()
    }
    pub fn get(&self, service: &str) -> Option<&Allocated> {
        self.services.iter().find(|s| s.service == service)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AllocateError {
    #[error("the plan is larger than the host: the services enabled from the lowest tier ({services}) need at least {need} even at their minimums (min_cpus/min_memory in {file}), but the host has {have} after its reserve; lower their minimums or run on a larger host")]
    TooLarge {
        services: String,
        need: String,
        have: String,
        file: String,
    },
}

const MIB: u64 = 1 << 20;

/// Plans every service of `file` on `host`.
pub fn allocate(
    host: &HostFacts,
    score: Score,
    profile: Profile,
    file: &ServicesFile,
) -> Result<Allocation, AllocateError> {
    let host_tier = Tier::of(score.total);
    let tier = profile.tier(host_tier);
    let multiplier = file.multipliers.get(&tier).copied().unwrap_or(1.0);
    let host_cpus = host.usable_cpus();
    let host_memory = host.usable_memory();
    let reserve_pct = tier.reserve_percent().max(file.reserve_cpu_percent);
    let reserve_cpus = host_cpus * reserve_pct / 100.0;
    let reserve_memory = ((host_memory as f64 * tier.reserve_percent() / 100.0) as u64)
        .max(file.reserve_memory)
        .min(host_memory);
    let available_cpus = floor_cents(host_cpus - reserve_cpus);
    let available_memory = host_memory - reserve_memory;

    let mut left_out = Vec::new();
    let mut wanted = Vec::new();
    for s in &file.services {
        if s.enabled_from > tier {
            left_out.push(LeftOut {
                service: s.name.clone(),
                reason: format!(
                    "enabled from the {} tier; planning for {} ({})",
                    s.enabled_from.name(),
                    tier.name(),
                    why_tier(profile, score)
                ),
            });
        } else {
            wanted.push(s);
        }
    }

    loop {
        let floor_cpus: f64 = wanted.iter().map(|s| s.min_cpus).sum();
        let floor_memory: u64 = wanted.iter().map(|s| s.min_memory).sum();
        if floor_cpus <= available_cpus + 1e-9 && floor_memory <= available_memory {
            break;
        }
        // The last optional service goes first; the lowest tier's are the plan's core.
        match wanted.iter().rposition(|s| s.enabled_from > Tier::Minimal) {
            Some(i) => {
                let s = wanted.remove(i);
                left_out.push(LeftOut {
                    service: s.name.clone(),
                    reason: format!(
                        "no room: the services before it need {} CPUs and {} at their minimums, the host has {} CPUs and {} after its reserve",
                        trim(floor_cpus - s.min_cpus),
                        human(floor_memory - s.min_memory),
                        trim(available_cpus),
                        human(available_memory)
                    ),
                });
            }
            None => {
                return Err(AllocateError::TooLarge {
                    services: wanted
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    need: format!("{} CPUs and {}", trim(floor_cpus), human(floor_memory)),
                    have: format!(
                        "{} CPUs and {}",
                        trim(available_cpus),
                        human(available_memory)
                    ),
                    file: file.path.display().to_string(),
                })
            }
        }
    }

    let cpus: Vec<f64> = wanted
        .iter()
        .map(|s| (s.cpus * multiplier).min(available_cpus))
        .collect();
    let memory: Vec<u64> = wanted
        .iter()
        .map(|s| ((s.memory as f64 * multiplier) as u64).min(available_memory))
        .collect();
    let mins_cpu: Vec<f64> = wanted.iter().map(|s| s.min_cpus).collect();
    let mins_mem: Vec<f64> = wanted.iter().map(|s| s.min_memory as f64).collect();
    let cpus = fit(&cpus, &mins_cpu, available_cpus);
    let mem_f: Vec<f64> = memory.iter().map(|&m| m as f64).collect();
    let memory = fit(&mem_f, &mins_mem, available_memory as f64);

    let services = wanted
        .iter()
        .zip(cpus.iter().zip(&memory))
        .map(|(s, (&c, &m))| {
            let cpus = floor_cents(c).max(0.01);
            let memory = ((m as u64) / MIB * MIB).max(s.min_memory.min(m as u64));
            Allocated {
                service: s.name.clone(),
                cpus,
                memory,
                cpu_reservation: floor_cents(cpus * file.reservation),
                memory_reservation: (memory as f64 * file.reservation) as u64 / MIB * MIB,
                shrunk: cpus + 1e-9 < s.cpus * multiplier
                    || memory < (s.memory as f64 * multiplier) as u64 / MIB * MIB,
            }
        })
        .collect();
    Ok(Allocation {
        score,
        host_tier,
        profile,
        tier,
        multiplier,
        host_cpus,
        host_memory,
        reserve_cpus,
        reserve_memory,
        available_cpus,
        available_memory,
        services,
        left_out,
    })
}

fn why_tier(profile: Profile, score: Score) -> String {
    match profile {
        Profile::Auto => format!("the host scores {}", score.total),
        p => format!("--profile {}", Profile::NAMES[p as usize]),
    }
}

/// Shrinks `wanted` so it sums to at most `total`, never below `mins`:
/// the room above the minimums is shared in proportion to what each wanted
/// above its minimum. The caller made sure the minimums fit.
fn fit(wanted: &[f64], mins: &[f64], total: f64) -> Vec<f64> {
    let sum: f64 = wanted.iter().sum();
    if sum <= total {
        return wanted.to_vec();
    }
    let floor: f64 = mins.iter().sum();
    let above: f64 = wanted.iter().zip(mins).map(|(w, m)| (w - m).max(0.0)).sum();
    let share = if above > 0.0 {
        ((total - floor) / above).clamp(0.0, 1.0)
    } else {
        0.0
    };
    wanted
        .iter()
        .zip(mins)
        .map(|(w, m)| m + (w - m).max(0.0) * share)
        .collect()
}

fn floor_cents(x: f64) -> f64 {
    ((x * 100.0) + 1e-6).floor().max(0.0) / 100.0
}

fn trim(cpus: f64) -> String {
    crate::runtime::limits::trim(floor_cents(cpus))
}

fn human(bytes: u64) -> String {
    crate::config::units::format_bytes(bytes / MIB * MIB)
}
