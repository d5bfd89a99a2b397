//! Crash recovery: a run is stopped at every point an engine or router
//! call could be cut short, the journal and the containers are put back as
//! that crash leaves them, and recovery must finish or undo the deploy.

use std::collections::BTreeSet;

use super::fakes::{crash_and_recover, crash_points, snapshots, Rig, BLUE, OVERRIDE_BEFORE};
use super::inplace;
use super::prepare::Strategy;
use super::record::{Kind, Outcome};
use super::Phase;
use crate::journal::Event;
use crate::runtime::Health;

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_point_of_a_swap_is_recovered() {
    for drains in [true, false] {
        let mut rig = Rig::new(drains);
        let plan = rig.swap_plan().await;
        let taken = snapshots(&rig, || async {
            rig.swap(&plan).await.expect("clean run");
        })
        .await;
        let points = crash_points(taken);
        let mut seen = BTreeSet::new();
        for at in &points {
            let (last, outcome) = crash_and_recover(&mut rig, at, drains).await;
            let context = format!("drains={drains}, crash after journaling {last:?}");
            seen.insert(last);
            if last.is_some_and(|p| p >= Phase::StopBlue) {
                assert_eq!(outcome, Outcome::Completed, "{context}");
                rig.assert_green_kept(&plan, &context);
            } else {
                assert_eq!(outcome, Outcome::Undone, "{context}");
                rig.assert_blue_kept(&plan, &context);
            }
        }
        for phase in Phase::SWAP {
            assert!(
                seen.contains(&Some(phase)),
                "no crash after journaling {phase}: {seen:?}"
            );
        }
    }
}

/// The open-ended waits recovery reported, by what they wait for; each
/// one ended.
fn recovery_waits(rig: &Rig) -> Vec<String> {
    let events = rig.recovery_events.events();
    let waits: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Waiting { what, .. } => Some(what.clone()),
            _ => None,
        })
        .collect();
    let finished = events.iter().filter(|e| **e == Event::Finished).count();
    assert_eq!(finished, waits.len(), "every wait ends: {events:?}");
    waits
}

#[tokio::test(start_paused = true)]
async fn recovery_reports_its_waits_for_health_the_router_and_the_drain() {
    for drains in [true, false] {
        let mut rig = Rig::new(drains);
        let plan = rig.swap_plan().await;
        let taken = snapshots(&rig, || async {
            rig.swap(&plan).await.expect("clean run");
        })
        .await;
        for at in &crash_points(taken) {
            rig.recovery_events.0.lock().unwrap().clear();
            let (last, outcome) = crash_and_recover(&mut rig, at, drains).await;
            let waits = recovery_waits(&rig);
            let context = format!("drains={drains}, after {last:?}: {waits:?}");
            let has = |part: &str| waits.iter().any(|w| w.contains(part));
            if outcome == Outcome::Completed {
                assert!(has("until green"), "{context}");
                // Blue is drained only by a router that drains, and only
                // while its container is left: before `stop-blue` it always
                // is; within it, the crash may fall before or after the
                // removal.
                if !drains {
                    assert!(!has("draining blue"), "{context}");
                } else if last < Some(Phase::StopBlue) {
                    assert!(has("draining blue"), "{context}");
                }
            } else {
                assert!(has(" sees blue "), "{context}");
            }
            assert!(
                rig.recovery_events.events().iter().any(|e| matches!(e,
                    Event::Step { message } if message.starts_with("recovering the interrupted deploy"))),
                "{context}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_with_blue_stopped_and_green_unhealthy_restarts_blue() {
    let mut rig = Rig::new(false);
    let plan = rig.swap_plan().await;
    let taken = snapshots(&rig, || async {
        rig.swap(&plan).await.expect("clean run");
    })
    .await;
    // The first point where blue is stopped: make green sick there.
    let mut at = crash_points(taken)
        .into_iter()
        .find(|s| {
            s.world
                .containers
                .values()
                .any(|c| c.name == BLUE && !c.running)
        })
        .expect("a point with blue stopped");
    for c in at.world.containers.values_mut() {
        if c.name != BLUE {
            c.health = Health::Unhealthy;
            c.health_script.clear();
        }
    }
    let (last, outcome) = crash_and_recover(&mut rig, &at, false).await;
    assert_eq!(last, Some(Phase::StopBlue));
    assert_eq!(outcome, Outcome::Undone);
    rig.assert_blue_kept(&plan, "blue restarted");
    let waits = recovery_waits(&rig);
    assert!(
        waits
            .iter()
            .any(|w| w.contains(&format!("until blue {BLUE} serves"))),
        "{waits:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_point_of_an_in_place_update_is_recovered() {
    // A rollback journals its own kind, not `in-place`: recovery must still
    // see the live update.
    for kind in [Kind::Deploy, Kind::Rollback] {
        crash_in_place(kind).await;
    }
}

async fn crash_in_place(kind: Kind) {
    let mut rig = Rig::new(true);
    let mut request = rig.request(Strategy::InPlace, 1.5, 384 << 20);
    request.kind = kind;
    let plan = rig.plan_for(&request).await;
    let taken = snapshots(&rig, || async {
        inplace::run(rig.runtime.as_ref(), &rig.journal, &plan)
            .await
            .expect("clean run");
    })
    .await;
    let mut seen = BTreeSet::new();
    for at in &crash_points(taken) {
        let updated = at
            .world
            .containers
            .values()
            .any(|c| c.limits.same_size(&plan.new));
        let (last, outcome) = crash_and_recover(&mut rig, at, true).await;
        let context = format!("{kind}: crash after journaling {last:?}");
        seen.insert(last);
        let blue = rig.runtime.get(BLUE).unwrap();
        assert_eq!(blue.id, rig.blue_id, "{context}");
        if updated {
            assert_eq!(outcome, Outcome::Completed, "{context}");
            assert!(blue.limits.same_size(&plan.new), "{context}");
            assert_eq!(rig.override_text(), plan.record.override_after, "{context}");
        } else {
            assert_eq!(outcome, Outcome::Undone, "{context}");
            assert_eq!(blue.limits, plan.old, "{context}");
            assert_eq!(
                rig.override_text().as_deref(),
                Some(OVERRIDE_BEFORE),
                "{context}"
            );
        }
    }
    for phase in [
        Phase::Prepare,
        Phase::LiveUpdate,
        Phase::Persist,
        Phase::Verify,
    ] {
        assert!(
            seen.contains(&Some(phase)),
            "no crash after journaling {phase}: {seen:?}"
        );
    }
}
