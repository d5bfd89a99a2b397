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
