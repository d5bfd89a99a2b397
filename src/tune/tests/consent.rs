//! Restart levers when the run may not restart PostgreSQL: passed over with
//! the reason, beside the other skipped levers; the cheaper ones still run.

use super::*;
use crate::levers::choose::RESTART_NOT_ALLOWED;

#[tokio::test(start_paused = true)]
async fn restart_levers_are_skipped_with_the_reason_when_not_allowed() {
    let w = World::new(World::default_backend());
    // Nothing helps: every lever is tried until none is left.
    let obs = w.observer(|_| metrics(150.0, 100.0));
    let (_keep, mut shutdown) = Shutdown::new();
    let report = w
        .tune_with(&obs, 5, false, false, &mut shutdown)
        .await
        .unwrap();

    assert_eq!(report.outcome, Outcome::NoLever, "{}", report.message);
    let tried: Vec<&str> = report.cycles.iter().map(|c| c.lever.as_str()).collect();
    assert_eq!(tried, ["max_wal_size", "checkpoint_timeout"]);
    for write in w.backend.writes() {
        assert!(
            !write.contains("wal_buffers") && !write.contains("shared_buffers"),
            "a restart lever was applied: {write}"
        );
    }
    assert!(
        report
            .message
            .contains(&format!("skipped wal_buffers: {RESTART_NOT_ALLOWED}")),
        "{}",
        report.message
    );
    assert!(
        report
            .message
            .contains(&format!("skipped shared_buffers: {RESTART_NOT_ALLOWED}")),
        "{}",
        report.message
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_lists_the_held_back_restart_lever_among_the_skipped() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|_| metrics(150.0, 100.0));
    let (_keep, mut shutdown) = Shutdown::new();
    let report = w
        .tune_with(&obs, 1, true, false, &mut shutdown)
        .await
        .unwrap();
    let plan = report.dry_run.expect("a plan");
    assert_eq!(plan.lever, "max_wal_size");
    assert!(
        plan.skipped
            .iter()
            .any(|s| s.lever == "wal_buffers" && s.reason == RESTART_NOT_ALLOWED),
        "{:?}",
        plan.skipped
    );

    // Allowed, the same reading lists no such reason.
    let report = w.tune(&obs, 1, true, &mut shutdown).await.unwrap();
    let plan = report.dry_run.expect("a plan");
    assert!(plan.skipped.iter().all(|s| s.reason != RESTART_NOT_ALLOWED));
}
