//! Choosing the lever: the cheapest one for the symptom that has not been
//! tried without effect, moved to its next candidate value.
//!
//! The tier comes from the catalog *raised by what the live system says*:
//! a lever whose plan restarts the database costs at least `medium`, however
//! the file labels it (the runbook calls wal_buffers reload-only; it is not).

use std::collections::BTreeSet;

use serde::Serialize;

use super::catalog::{Catalog, Cost, Lever, Resource, Symptom, Target};
use super::port::{BackendError, Disruption, LeverBackend, Move, Plan};
use crate::config::units::{parse_bytes, parse_cpus};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub lever: Lever,
    pub mv: Move,
    pub plan: Plan,
    /// The tier used for ordering (see module doc).
    pub cost: Cost,
    /// Position in the catalog: the tie-break within a tier.
    pub rank: usize,
}

/// A lever that was considered and passed over, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub lever: String,
    pub reason: String,
}

pub fn effective_cost(lever: &Lever, plan: &Plan) -> Cost {
    if plan.disruption == Disruption::Restart {
        lever.cost.max(Cost::Medium)
    } else {
        lever.cost
    }
}

/// Why a lever that restarts the database was passed over.
pub const RESTART_NOT_ALLOWED: &str =
    "restarts PostgreSQL, and restarts are not allowed in this run (--yes or tune.allow_restart: true allows them)";

/// Splits off the candidates whose plan restarts the database, as levers
/// passed over: an unattended run must not restart it unasked.
pub fn hold_back_restarts(candidates: Vec<Candidate>) -> (Vec<Candidate>, Vec<Skipped>) {
    let (restart, rest): (Vec<_>, Vec<_>) = candidates
        .into_iter()
        .partition(|c| c.plan.disruption == Disruption::Restart);
    let held = restart
        .into_iter()
        .map(|c| Skipped {
            lever: c.lever.name,
            reason: RESTART_NOT_ALLOWED.into(),
        })
        .collect();
    (rest, held)
}

/// The levers of `catalog` whose next move would restart the database, as
/// the backend plans it from the live system (reads only). A lever that
/// cannot be evaluated is left out: the cycle reports it when it comes up.
pub async fn restart_levers(catalog: &Catalog, backend: &dyn LeverBackend) -> Vec<String> {
    let mut out = Vec::new();
    for (rank, lever) in catalog.levers.iter().enumerate() {
        if let Ok(Ok(c)) = evaluate(lever, rank, backend).await {
            if c.plan.disruption == Disruption::Restart {
                out.push(c.lever.name);
            }
        }
    }
    out
}

/// The cheapest candidate; catalog order breaks ties.
pub fn pick(mut candidates: Vec<Candidate>) -> Option<Candidate> {
    candidates.sort_by_key(|c| (c.cost, c.rank));
    candidates.into_iter().next()
}

/// A value as a number in base units (bytes, milliseconds, cores), when it
/// is one, so `4096MB` equals `4GB` and "beyond" has a meaning.
pub fn numeric(lever: &Lever, value: &str) -> Option<f64> {
    let v = value.trim();
    match &lever.target {
        Target::Container {
            resource: Resource::Memory,
            ..
        } => parse_bytes(v).ok().map(|b| b as f64),
        Target::Container {
            resource: Resource::Cpus,
            ..
        } => parse_cpus(v).ok(),
        _ => crate::postgres::units::magnitude(v),
    }
}

pub fn same_value(lever: &Lever, a: &str, b: &str) -> bool {
    match (numeric(lever, a), numeric(lever, b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(1.0),
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

/// The value to move to from `current`: the one after it in the list; when
/// the current value is not listed and the list is numeric and ordered, the
/// first value beyond it in the list's direction (so a server already above
/// every candidate is never turned *down*); otherwise the first value that
/// differs. `None` when the lever has nothing left to try.
pub fn next_value(lever: &Lever, current: Option<&str>) -> Option<String> {
    let values = &lever.values;
    let Some(current) = current else {
        return values.first().cloned();
    };
    if let Some(i) = values.iter().position(|v| same_value(lever, v, current)) {
        return values.get(i + 1).cloned();
    }
    let nums: Option<Vec<f64>> = values.iter().map(|v| numeric(lever, v)).collect();
    if let (Some(nums), Some(cur)) = (nums, numeric(lever, current)) {
        if nums.len() >= 2 {
            let rising = nums.windows(2).all(|w| w[0] < w[1]);
            let falling = nums.windows(2).all(|w| w[0] > w[1]);
            if rising || falling {
                return values
                    .iter()
                    .zip(&nums)
                    .find(|(_, n)| if rising { **n > cur } else { **n < cur })
                    .map(|(v, _)| v.clone());
            }
        }
    }
    values
        .iter()
        .find(|v| !same_value(lever, v, current))
        .cloned()
}

/// Evaluates every lever for `symptom` not in `exhausted` through the backend
/// (reads only: `current` and `plan`) and returns the candidates plus the
/// levers passed over.
pub async fn candidates(
    catalog: &Catalog,
    symptom: Symptom,
    exhausted: &BTreeSet<String>,
    backend: &dyn LeverBackend,
) -> Result<(Vec<Candidate>, Vec<Skipped>), BackendError> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for (rank, lever) in catalog.levers.iter().enumerate() {
        if !lever.treats(symptom) {
            continue;
        }
        if exhausted.contains(&lever.name) {
            skipped.push(Skipped {
                lever: lever.name.clone(),
                reason: "already tried in this run".into(),
            });
            continue;
        }
        match evaluate(lever, rank, backend).await? {
            Ok(candidate) => found.push(candidate),
            Err(reason) => skipped.push(Skipped {
                lever: lever.name.clone(),
                reason,
            }),
        }
    }
    Ok((found, skipped))
}

/// One lever as a candidate, or the reason it is passed over (the backend
/// refused it, or it has no further value to try).
async fn evaluate(
    lever: &Lever,
    rank: usize,
    backend: &dyn LeverBackend,
) -> Result<Result<Candidate, String>, BackendError> {
    let current = match backend.current(lever).await {
        Ok(c) => c,
        Err(BackendError::Rejected { reason, .. }) => return Ok(Err(reason)),
        Err(e) => return Err(e),
    };
    let Some(to) = next_value(lever, current.as_deref()) else {
        let now = current.unwrap_or_else(|| "unset".into());
        return Ok(Err(format!("already at {now}; no further value to try")));
    };
    let mv = Move {
        from: current,
        to: Some(to),
    };
    let plan = match backend.plan(lever, &mv).await {
        Ok(p) => p,
        Err(BackendError::Rejected { reason, .. }) => return Ok(Err(reason)),
        Err(e) => return Err(e),
    };
    let cost = effective_cost(lever, &plan);
    Ok(Ok(Candidate {
        lever: lever.clone(),
        mv,
        plan,
        cost,
        rank,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::levers::catalog::Target;

    fn pg(name: &str, cost: Cost, values: &[&str]) -> Lever {
        Lever {
            name: name.into(),
            cost,
            symptoms: vec![Symptom::HighWalRate],
            values: values.iter().map(|v| v.to_string()).collect(),
            description: None,
            target: Target::Postgres {
                parameter: name.into(),
                allow_unsafe: false,
            },
        }
    }

    fn cand(lever: Lever, disruption: Disruption, rank: usize) -> Candidate {
        let plan = Plan {
            steps: vec![],
            disruption,
        };
        Candidate {
            cost: effective_cost(&lever, &plan),
            lever,
            mv: Move {
                from: None,
                to: None,
            },
            plan,
            rank,
        }
    }

    #[test]
    fn cheapest_tier_first_then_catalog_order() {
        let picked = pick(vec![
            cand(
                pg("shared_buffers", Cost::Medium, &["1GB"]),
                Disruption::Restart,
                0,
            ),
            cand(
                pg("checkpoint_timeout", Cost::Low, &["15min"]),
                Disruption::Reload,
                2,
            ),
            cand(
                pg("max_wal_size", Cost::Low, &["4GB"]),
                Disruption::Reload,
                1,
            ),
        ])
        .unwrap();
        assert_eq!(picked.lever.name, "max_wal_size");
    }

    #[test]
    fn a_restart_raises_a_low_lever_to_medium() {
        // The file says low (as the runbook does for wal_buffers); the server says restart.
        let wal_buffers = cand(
            pg("wal_buffers", Cost::Low, &["16MB"]),
            Disruption::Restart,
            0,
        );
        assert_eq!(wal_buffers.cost, Cost::Medium);
        let env = cand(pg("batch", Cost::Low, &["500"]), Disruption::Recreate, 5);
        assert_eq!(pick(vec![wal_buffers, env]).unwrap().lever.name, "batch");
    }

    #[test]
    fn held_back_restarts_become_skipped_levers() {
        let wal_buffers = cand(
            pg("wal_buffers", Cost::Low, &["16MB"]),
            Disruption::Restart,
            0,
        );
        let max_wal = cand(
            pg("max_wal_size", Cost::Low, &["4GB"]),
            Disruption::Reload,
            1,
        );
        let (kept, held) = hold_back_restarts(vec![wal_buffers, max_wal]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].lever.name, "max_wal_size");
        assert_eq!(
            held,
            [Skipped {
                lever: "wal_buffers".into(),
                reason: RESTART_NOT_ALLOWED.into()
            }]
        );
    }

    #[tokio::test]
    async fn restart_levers_are_read_from_the_backend_plans() {
        let catalog = Catalog::parse(
            std::path::Path::new("levers.yaml"),
            "levers:\n  wal_buffers: {kind: postgres, parameter: wal_buffers, cost: low, symptoms: [high_wal_rate], values: [16MB]}\n  max_wal_size: {kind: postgres, parameter: max_wal_size, cost: low, symptoms: [high_wal_rate], values: [4GB]}\n  done: {kind: postgres, parameter: done, cost: low, symptoms: [high_wal_rate], values: [1]}\n",
        )
        .unwrap();
        let mut backend = crate::levers::fakes::FakeBackend::with(&[
            ("wal_buffers", "4MB"),
            ("max_wal_size", "1GB"),
            ("done", "1"),
        ]);
        // `done` would restart too, but has no value left to move to.
        backend.restart = vec!["wal_buffers".into(), "done".into()];
        assert_eq!(restart_levers(&catalog, &backend).await, ["wal_buffers"]);
    }

    #[test]
    fn next_value_walks_the_list_and_never_turns_down() {
        let l = pg("max_wal_size", Cost::Low, &["4GB", "8GB"]);
        assert_eq!(next_value(&l, Some("1GB")).as_deref(), Some("4GB"));
        assert_eq!(next_value(&l, Some("4096MB")).as_deref(), Some("8GB"));
        assert_eq!(next_value(&l, Some("8GB")), None);
        assert_eq!(
            next_value(&l, Some("16GB")),
            None,
            "already beyond every candidate"
        );
        assert_eq!(next_value(&l, Some("6GB")).as_deref(), Some("8GB"));
        assert_eq!(next_value(&l, None).as_deref(), Some("4GB"));
        let c = pg("wal_compression", Cost::Low, &["lz4"]);
        assert_eq!(next_value(&c, Some("off")).as_deref(), Some("lz4"));
        assert_eq!(next_value(&c, Some("LZ4")), None);
        let t = pg("checkpoint_timeout", Cost::Low, &["15min", "30min"]);
        assert_eq!(next_value(&t, Some("5min")).as_deref(), Some("15min"));
        assert_eq!(next_value(&t, Some("900s")).as_deref(), Some("30min"));
    }
}
