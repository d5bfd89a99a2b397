//! The swap against the in-memory runtime and router, under paused time:
//! every phase succeeding, a failure injected into each phase, and
//! exhaustively into every engine and router call of a run.

use super::fakes::{Rig, BLUE};
use super::record::Outcome;
use super::{DeployError, Phase};
use crate::runtime::fake::Op;
use crate::runtime::Health;

#[tokio::test(start_paused = true)]
async fn every_phase_succeeds_and_green_takes_blues_name() {
    for drains in [true, false] {
        let rig = Rig::new(drains);
        let plan = rig.swap_plan().await;
        let report = rig.swap(&plan).await.expect("swap");
        rig.assert_green_kept(&plan, &format!("drains={drains}"));
        assert_eq!(rig.last_outcome(), Some((Outcome::Succeeded, None)));
        assert_eq!(report.container, BLUE);
        assert!(report.read_back.same_size(&plan.new));
        let phases: Vec<Phase> = report.phases.iter().map(|p| p.phase).collect();
        assert_eq!(phases, Phase::SWAP[..8].to_vec(), "rename covers the rest");
        assert!(
            plan.record
                .override_after
                .as_deref()
                .is_some_and(|t| t.contains("other:") && t.contains("web:")),
            "{:?}",
            plan.record.override_after
        );
        assert_eq!(
            report.router.is_some(),
            drains,
            "only a real router reports its server"
        );
        if drains {
            // What a reload reads back is the state after the swap.
            let saved = rig.router.saved.lock().unwrap().clone();
            assert_eq!(saved, Some(rig.router.servers()));
            let router = report.router.unwrap();
            assert!(router.server.starts_with("web 127.0.0.1:"), "{router:?}");
            assert_eq!(router.state_file.as_deref(), Some("fake-state"));
        }
    }
}

/// How a test breaks one phase.
#[derive(Debug, Clone, Copy)]
enum Break {
    Engine(Op, At),
    Router(&'static str),
    /// Green's health after its start.
    GreenHealth(&'static [Health]),
}

/// Which container an engine failure aims at.
#[derive(Debug, Clone, Copy)]
enum At {
    Blue,
    Green,
    Any,
}

#[tokio::test(start_paused = true)]
async fn a_failure_in_any_phase_before_blue_is_removed_leaves_blue_serving() {
    use Break::*;
    const UNHEALTHY: &[Health] = &[Health::Starting, Health::Unhealthy];
    const NEVER: &[Health] = &[Health::Starting];
    let cases: &[(bool, Phase, Break)] = &[
        (true, Phase::Prepare, Engine(Op::Inspect, At::Blue)),
        (true, Phase::CreateGreen, Engine(Op::CreateClone, At::Any)),
        (true, Phase::CreateGreen, Engine(Op::Start, At::Green)),
        (true, Phase::Health, Engine(Op::Inspect, At::Green)),
        (true, Phase::Health, Router("add_standby")),
        (true, Phase::Health, GreenHealth(UNHEALTHY)),
        (true, Phase::Health, GreenHealth(NEVER)),
        (true, Phase::Switch, Router("wait_healthy")),
        (true, Phase::Switch, Router("promote")),
        (true, Phase::Drain, Router("drain")),
        (true, Phase::StopBlue, Engine(Op::Remove, At::Blue)),
        (false, Phase::StopBlue, Engine(Op::Stop, At::Blue)),
        (false, Phase::RemoveBlue, Engine(Op::Remove, At::Blue)),
    ];
    for &(drains, phase, how) in cases {
        let context = format!("{phase} broken by {how:?} (drains={drains})");
        let rig = Rig::new(drains);
        let plan = rig.swap_plan().await;
        let green = plan.record.green_name.clone();
        match how {
            Engine(op, at) => {
                let target = match at {
                    At::Blue => Some(rig.blue_id.as_str()),
                    At::Green => Some(green.as_str()),
                    At::Any => None,
                };
                rig.runtime.fail_once(op, target);
            }
            Router(action) => rig.router.fail_once(action),
            GreenHealth(states) => rig.runtime.world().start_health = states.to_vec(),
        }
        let err = rig.swap(&plan).await.expect_err(&context);
        match &err {
            DeployError::PhaseFailed {
                phase: failed,
                aftermath,
                ..
            } => {
                assert_eq!(*failed, phase, "{context}: {err}");
                assert!(aftermath.contains("left as it was"), "{context}: {err}");
            }
            other => panic!("{context}: {other}"),
        }
        rig.assert_blue_kept(&plan, &context);
        assert_eq!(rig.last_outcome(), Some((Outcome::Failed, Some(phase))));
        assert!(
            rig.recover().await.is_none(),
            "{context}: nothing left to recover"
        );
    }
}

/// The index (among all engine calls, the plan's included) of the `nth`
/// call (from 0) of a clean swap that `pick` chooses.
async fn call_index(drains: bool, pick: impl Fn(&(Op, String)) -> bool, nth: usize) -> usize {
    let rig = Rig::new(drains);
    let plan = rig.swap_plan().await;
    let before = rig.runtime.calls().len();
    rig.swap(&plan).await.expect("clean run");
    let calls = rig.runtime.calls();
    (before..calls.len())
        .filter(|&i| pick(&calls[i]))
        .nth(nth)
        .expect("such a call")
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_blue_is_removed_is_finished_by_recovery() {
    // Green is renamed, then read back under blue's name to verify.
    let rename = call_index(true, |c| c.0 == Op::Rename, 0).await;
    let verify = call_index(true, |c| c == &(Op::Inspect, BLUE.to_string()), 0).await;
    for (call, phase) in [(rename, Phase::Rename), (verify, Phase::Verify)] {
        let context = format!("engine call {call} fails in {phase}");
        let rig = Rig::new(true);
        let plan = rig.swap_plan().await;
        rig.runtime.fail_call(call);
        let err = rig.swap(&plan).await.expect_err(&context);
        let DeployError::PhaseFailed {
            phase: failed,
            aftermath,
            ..
        } = &err
        else {
            panic!("{context}: {err}");
        };
        assert_eq!(*failed, phase, "{context}: {err}");
        assert!(
            aftermath.contains("tuner deploy status"),
            "{context}: {err}"
        );
        assert!(rig.journal.open().unwrap().is_some(), "{context}");
        let recovered = rig.recover().await.expect("an open deploy");
        assert_eq!(recovered.outcome, Outcome::Completed, "{context}");
        rig.assert_green_kept(&plan, &context);
    }
}

/// Blue is already removed (rm -f after the drain) when the no-op remove
/// of the next phase fails: undoing now would leave nothing serving.
#[tokio::test(start_paused = true)]
async fn a_failure_once_a_drained_blue_is_removed_goes_forward() {
    let second_remove = call_index(true, |c| c.0 == Op::Remove, 1).await;
    let rig = Rig::new(true);
    let plan = rig.swap_plan().await;
    rig.runtime.fail_call(second_remove);
    let err = rig.swap(&plan).await.expect_err("remove fails");
    assert!(
        matches!(&err, DeployError::PhaseFailed { phase: Phase::RemoveBlue, aftermath, .. } if aftermath.contains("tuner deploy status")),
        "{err}"
    );
    assert!(
        rig.runtime
            .get(&plan.record.green_name)
            .is_some_and(|g| g.view().serving()),
        "green keeps serving"
    );
    let recovered = rig.recover().await.expect("an open deploy");
    assert_eq!(recovered.outcome, Outcome::Completed);
    rig.assert_green_kept(&plan, "finished by recovery");
}

/// Runs a swap with the `n`-th engine call (or router call) failing and
/// checks the one invariant that matters: afterwards exactly one container
/// serves under blue's name, with either the old limits (undone) or the new
/// ones (finished, by the run or by the recovery it asks for).
async fn swap_with_one_failure(
    drains: bool,
    engine_call: Option<usize>,
    router_call: Option<usize>,
) {
    let context =
        format!("drains={drains} engine call {engine_call:?} router call {router_call:?}");
    let rig = Rig::new(drains);
    let plan = rig.swap_plan().await;
    let before = rig.runtime.calls().len();
    if let Some(n) = engine_call {
        rig.runtime.fail_call(before + n);
    }
    *rig.router.fail_call.lock().unwrap() = router_call;
    match rig.swap(&plan).await {
        Ok(_) => rig.assert_green_kept(&plan, &context),
        Err(e) => {
            if rig.journal.open().unwrap().is_none() {
                assert_eq!(
                    rig.last_outcome().map(|o| o.0),
                    Some(Outcome::Failed),
                    "{context}: {e}"
                );
                rig.assert_blue_kept(&plan, &format!("{context}: {e}"));
            } else {
                let recovered = rig.recover().await.expect("an open deploy");
                assert_eq!(recovered.outcome, Outcome::Completed, "{context}: {e}");
                rig.assert_green_kept(&plan, &format!("{context}: {e}"));
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_at_any_engine_or_router_call_is_undone_or_finished() {
    for drains in [true, false] {
        let rig = Rig::new(drains);
        let plan = rig.swap_plan().await;
        let before = rig.runtime.calls().len();
        rig.swap(&plan).await.expect("clean run");
        let engine_calls = rig.runtime.calls().len() - before;
        let router_calls = *rig.router.calls.lock().unwrap();
        assert!(
            engine_calls > 10 && router_calls >= 5,
            "{engine_calls} {router_calls}"
        );
        for n in 0..engine_calls {
            swap_with_one_failure(drains, Some(n), None).await;
        }
        for n in 0..router_calls {
            swap_with_one_failure(drains, None, Some(n)).await;
        }
    }
}

/// Every wait of a swap (green's health, the router seeing it, the drain, a
/// graceful stop) is reported as a wait that ends, in phase order, so a
/// terminal shows a spinner and `--output json` a pair of events for each.
#[tokio::test(start_paused = true)]
async fn every_wait_of_a_swap_is_reported_and_ends() {
    use crate::journal::{Event, Recorded};
    for drains in [true, false] {
        let rig = Rig::new(drains);
        let plan = rig.swap_plan().await;
        let events = Recorded::default();
        rig.swap_reporting(&plan, &events).await.expect("swap");
        let waits: Vec<String> = events
            .events()
            .iter()
            .filter_map(|e| match e {
                Event::Waiting { what, .. } => Some(what.clone()),
                _ => None,
            })
            .collect();
        let expected: &[&str] = if drains {
            &["green to be healthy", "sees green", "draining blue"]
        } else {
            &[
                "green to be healthy",
                "sees green",
                "draining blue",
                "stopping blue",
            ]
        };
        assert_eq!(waits.len(), expected.len(), "drains={drains}: {waits:?}");
        for (seen, want) in waits.iter().zip(expected) {
            assert!(seen.contains(want), "drains={drains}: {waits:?}");
        }
        // Each wait ends before the next begins.
        let mut open = false;
        for e in events.events() {
            match e {
                Event::Waiting { .. } => {
                    assert!(!open, "drains={drains}: nested wait");
                    open = true;
                }
                Event::Finished => open = false,
                _ => {}
            }
        }
        assert!(!open, "drains={drains}: a wait never ended");
    }
}
