//! `--strategy in-place` against the in-memory runtime.

use super::fakes::{Rig, BLUE, OVERRIDE_BEFORE};
use super::plan::Plan;
use super::prepare::Strategy;
use super::record::Outcome;
use super::swap::Report;
use super::{inplace, DeployError, Phase};
use crate::runtime::fake::Op;

async fn in_place(rig: &Rig, plan: &Plan) -> Result<Report, DeployError> {
    inplace::run(rig.runtime.as_ref(), &rig.journal, plan).await
}

#[tokio::test(start_paused = true)]
async fn in_place_updates_the_live_container_and_the_override() {
    let rig = Rig::new(true);
    let plan = rig.plan(Strategy::InPlace, 1.5, 384 << 20).await;
    let report = in_place(&rig, &plan).await.expect("in-place");
    let blue = rig.runtime.get(BLUE).unwrap();
    assert_eq!(blue.id, rig.blue_id, "the same container");
    assert!(blue.limits.same_size(&plan.new) && report.read_back.same_size(&plan.new));
    assert_eq!(rig.override_text(), plan.record.override_after);
    assert_eq!(rig.last_outcome(), Some((Outcome::Succeeded, None)));
    let last = rig.journal.history().unwrap().pop().unwrap().last_phase;
    assert_eq!(last, Some(Phase::Verify));
}

#[tokio::test(start_paused = true)]
async fn in_place_refuses_to_shrink_below_usage_before_anything_changes() {
    let rig = Rig::new(true);
    rig.runtime
        .world()
        .containers
        .values_mut()
        .for_each(|c| c.usage.usage = 200 << 20);
    let plan = rig.plan(Strategy::InPlace, 1.0, 128 << 20).await;
    let err = in_place(&rig, &plan).await.expect_err("usage too high");
    assert!(err.is_usage(), "{err}");
    assert!(
        rig.journal.history().unwrap().is_empty(),
        "nothing journaled"
    );
    assert_eq!(rig.runtime.get(BLUE).unwrap().limits, plan.old);
}

#[tokio::test(start_paused = true)]
async fn in_place_failures_keep_or_finish_the_update() {
    // The live update fails: nothing changed.
    let rig = Rig::new(true);
    let plan = rig.plan(Strategy::InPlace, 1.5, 384 << 20).await;
    rig.runtime.fail_once(Op::UpdateLimits, None);
    let err = in_place(&rig, &plan).await.expect_err("update fails");
    assert!(
        matches!(
            err,
            DeployError::PhaseFailed {
                phase: Phase::LiveUpdate,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(rig.runtime.get(BLUE).unwrap().limits, plan.old);
    assert_eq!(
        rig.last_outcome(),
        Some((Outcome::Failed, Some(Phase::LiveUpdate)))
    );
    assert_eq!(rig.override_text().as_deref(), Some(OVERRIDE_BEFORE));

    // Reading back fails after the update: recovery sees it happened.
    let rig = Rig::new(true);
    let plan = rig.plan(Strategy::InPlace, 1.5, 384 << 20).await;
    rig.runtime.fail_after(Op::Inspect, Some(BLUE), 0);
    let err = in_place(&rig, &plan).await.expect_err("verify fails");
    assert!(matches!(err, DeployError::Docker(_)), "{err}");
    let recovered = rig.recover().await.expect("open");
    assert_eq!(recovered.outcome, Outcome::Completed);
    assert!(rig.runtime.get(BLUE).unwrap().limits.same_size(&plan.new));
    assert_eq!(rig.override_text(), plan.record.override_after);
}
