//! What a run reports while it waits: a lever whose apply recreates a
//! service or runs a command is a wait of its own, beside settle and
//! observation.

use super::*;
use crate::journal::Event;

const ENV_LEVER: &str = r#"
levers:
  app_batch_size:
    kind: env
    key: BATCH_SIZE
    service: app
    cost: low
    symptoms: [high_wal_rate]
    values: ["500"]
"#;

#[tokio::test(start_paused = true)]
async fn an_env_lever_reports_the_recreate_then_settle_then_observation() {
    let backend = FakeBackend::with(&[("app_batch_size", "100")]);
    let w = World::with_levers(backend, ENV_LEVER);
    let obs = w.observer(|l| {
        if is(l, "app_batch_size", "500") {
            metrics(60.0, 100.0)
        } else {
            metrics(150.0, 100.0)
        }
    });
    let report = w.run(&obs, 1).await;
    assert_eq!(report.cycles.len(), 1, "{}", report.message);

    let waits: Vec<String> = w
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Waiting { what, .. } => Some(what),
            _ => None,
        })
        .collect();
    let recreate = waits
        .iter()
        .position(|w| w == "BATCH_SIZE=500: recreating app")
        .unwrap_or_else(|| panic!("{waits:?}"));
    let settle = waits
        .iter()
        .position(|w| w == "settling after the change")
        .unwrap_or_else(|| panic!("{waits:?}"));
    assert!(recreate < settle, "{waits:?}");
    assert!(
        waits[settle..].iter().any(|w| w == "observing"),
        "{waits:?}"
    );
    let finished = w
        .events
        .events()
        .iter()
        .filter(|e| **e == Event::Finished)
        .count();
    assert_eq!(finished, waits.len(), "every wait ends");
}

#[tokio::test(start_paused = true)]
async fn a_revert_that_recreates_is_a_wait_then_the_settle_after_it() {
    let backend = FakeBackend::with(&[("app_batch_size", "100")]);
    let w = World::with_levers(backend, ENV_LEVER);
    // Nothing moves: the change is rolled back, then re-measured.
    let obs = w.observer(|_| metrics(150.0, 100.0));
    let report = w.run(&obs, 2).await;
    assert!(!report.cycles[0].kept, "{}", report.message);

    let waits: Vec<String> = w
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Waiting { what, .. } => Some(what),
            _ => None,
        })
        .collect();
    let restoring = waits
        .iter()
        .position(|w| w == "restoring BATCH_SIZE=100: recreating app")
        .unwrap_or_else(|| panic!("{waits:?}"));
    assert!(
        waits[..restoring].iter().any(|w| w == "observing"),
        "{waits:?}"
    );
    assert!(
        waits[restoring..]
            .iter()
            .any(|w| w == "settling after the change"),
        "the settle after the revert is a wait too: {waits:?}"
    );
    let finished = w
        .events
        .events()
        .iter()
        .filter(|e| **e == Event::Finished)
        .count();
    assert_eq!(finished, waits.len(), "every wait ends");
}

#[tokio::test(start_paused = true)]
async fn tuner_rollback_reports_a_slow_revert() {
    let backend = FakeBackend::with(&[("app_batch_size", "100")]);
    let w = World::with_levers(backend, ENV_LEVER);
    let obs = w.observer(|l| {
        if is(l, "app_batch_size", "500") {
            metrics(60.0, 100.0)
        } else {
            metrics(150.0, 100.0)
        }
    });
    let report = w.run(&obs, 1).await;
    assert!(report.cycles[0].kept, "{}", report.message);
    let events = crate::journal::Recorded::default();
    let undone = crate::tune::rollback::rollback_reporting(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &w.path("CHANGELOG_TUNING.md"),
        &crate::tune::rollback::Scope::Last,
        false,
        &events,
    )
    .await
    .unwrap();
    assert_eq!(undone.undone.len(), 1);
    assert_eq!(
        events.events(),
        [
            Event::Waiting {
                what: "restoring BATCH_SIZE=100: recreating app".into(),
                total: None,
                unit: None
            },
            Event::Finished
        ]
    );
}
