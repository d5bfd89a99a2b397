//! What a crash or an interrupt leaves, and how the next run or `tuner
//! rollback` restores it.

use super::*;

/// A run wrote its intent, the backend applied, then the process died.
fn crashed_after_intent(w: &World) {
    let lever = w.catalog.get("max_wal_size").unwrap().clone();
    let mv = Move {
        from: Some("1GB".into()),
        to: Some("4GB".into()),
    };
    w.ledger()
        .intent("crashed-1", Action::Apply, &lever, &mv)
        .unwrap();
    w.backend
        .values
        .lock()
        .unwrap()
        .insert("max_wal_size".into(), Some("4GB".into()));
}

#[tokio::test(start_paused = true)]
async fn a_run_after_a_crash_restores_the_open_change_before_its_first_cycle() {
    let w = World::new(World::default_backend());
    crashed_after_intent(&w);
    let obs = w.observer(|l| {
        if is(l, "max_wal_size", "4GB") {
            metrics(60.0, 100.0)
        } else {
            metrics(150.0, 100.0)
        }
    });
    let report = w.run(&obs, 5).await;
    assert_eq!(report.recovered.len(), 1, "{report:?}");
    assert_eq!(report.recovered[0].change_id, "crashed-1");
    // Restored first, then tuned afresh and judged on its own windows.
    let writes = w.backend.writes();
    assert_eq!(writes[0], "revert max_wal_size 4GB->1GB", "{writes:?}");
    assert_eq!(writes[1], "apply max_wal_size 1GB->4GB", "{writes:?}");
    assert_eq!(report.outcome, Outcome::SlaMet);
    let changes = w.ledger().changes().unwrap();
    assert_eq!(changes[0].status(), Status::RolledBack);
    assert_eq!(changes[1].status(), Status::Kept);
    assert!(std::fs::read_to_string(w.path("CHANGELOG_TUNING.md"))
        .unwrap()
        .contains("restored before tuning again"));
}

#[tokio::test(start_paused = true)]
async fn crash_after_intent_is_named_by_a_dry_run_then_rolled_back_once() {
    let w = World::new(World::default_backend());
    crashed_after_intent(&w);
    let obs = w.observer(|_| metrics(150.0, 100.0));
    let (_keep, mut shutdown) = Shutdown::new();
    let err = w.tune(&obs, 5, true, &mut shutdown).await.unwrap_err();
    assert!(matches!(err, TuneError::Unfinished(_)), "{err}");
    assert!(
        err.to_string().contains("crashed-1") && err.to_string().contains("tuner rollback"),
        "{err}"
    );
    assert!(w.backend.writes().is_empty());

    let changelog = w.path("CHANGELOG_TUNING.md");
    let dry = rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        true,
    )
    .await
    .unwrap();
    assert_eq!(dry.undone.len(), 1);
    assert!(w.backend.writes().is_empty(), "dry run changed something");

    let first = rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    assert_eq!(first.undone.len(), 1);
    assert_eq!(first.undone[0].was, Status::Unfinished);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
    let second = rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    assert!(second.undone.is_empty());
    assert_eq!(second.message, "nothing to roll back");
    assert_eq!(w.backend.writes(), ["revert max_wal_size 4GB->1GB"]);
    assert!(std::fs::read_to_string(&changelog)
        .unwrap()
        .contains("unfinished change from an interrupted run"));
}

#[tokio::test(start_paused = true)]
async fn rollback_last_to_and_all_undo_kept_changes_newest_first() {
    let w = World::new(World::default_backend());
    // Each step helps a little, never enough: three kept changes.
    let obs = w.observer(|l| {
        let mut wal = 400.0;
        if is(l, "max_wal_size", "4GB") {
            wal = 300.0;
        }
        if is(l, "max_wal_size", "8GB") {
            wal = 250.0;
        }
        if is(l, "checkpoint_timeout", "15min") {
            wal -= 100.0;
        }
        metrics(wal, 100.0)
    });
    let report = w.run(&obs, 3).await;
    let kept: Vec<_> = report
        .cycles
        .iter()
        .filter(|c| c.kept)
        .map(|c| c.assignment.clone())
        .collect();
    assert_eq!(
        kept,
        [
            "max_wal_size=4GB",
            "max_wal_size=8GB",
            "checkpoint_timeout=15min"
        ]
    );
    let ids: Vec<String> = report.cycles.iter().map(|c| c.change_id.clone()).collect();
    let changelog = w.path("CHANGELOG_TUNING.md");
    let ledger = w.ledger();

    let last = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    assert_eq!(last.undone[0].change_id, ids[2]);
    assert_eq!(
        w.backend.value("checkpoint_timeout").as_deref(),
        Some("5min")
    );

    let to = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::To(ids[1].clone()),
        false,
    )
    .await
    .unwrap();
    assert_eq!(to.undone.len(), 1);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("4GB"));

    let all = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::All,
        false,
    )
    .await
    .unwrap();
    assert_eq!(all.undone.len(), 1);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
    let again = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::All,
        false,
    )
    .await
    .unwrap();
    assert!(again.undone.is_empty());
    let unknown = rollback(
        &ledger,
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::To("nope".into()),
        false,
    )
    .await
    .unwrap_err();
    assert!(unknown.is_usage());
}

#[tokio::test(start_paused = true)]
async fn second_interrupt_aborts_the_rollback_and_leaves_it_to_tuner_rollback() {
    let w = World::new(World::default_backend());
    let (trigger, mut shutdown) = Shutdown::new();
    let mut obs = w.observer(|_| metrics(150.0, 100.0));
    obs.interrupt = Some((3, trigger, 2));
    let err = w.tune(&obs, 5, false, &mut shutdown).await.unwrap_err();
    assert!(matches!(err, TuneError::Aborted { .. }), "{err}");
    assert!(err.to_string().contains("tuner rollback"), "{err}");
    // The change is still applied and open in the journal...
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("4GB"));
    assert_eq!(
        w.ledger().changes().unwrap()[0].status(),
        Status::Unfinished
    );
    // ...and `tuner rollback` restores it.
    let changelog = w.path("CHANGELOG_TUNING.md");
    rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
    assert_eq!(
        w.ledger().changes().unwrap()[0].status(),
        Status::RolledBack
    );
}

#[tokio::test(start_paused = true)]
async fn rollback_notes_a_lever_changed_by_hand_and_restores_anyway() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|l| {
        if is(l, "max_wal_size", "4GB") {
            metrics(300.0, 100.0)
        } else {
            metrics(400.0, 100.0)
        }
    });
    let report = w.run(&obs, 1).await;
    assert!(report.cycles[0].kept);
    w.backend
        .values
        .lock()
        .unwrap()
        .insert("max_wal_size".into(), Some("6GB".into()));
    let changelog = w.path("CHANGELOG_TUNING.md");
    let out = rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::Last,
        false,
    )
    .await
    .unwrap();
    let note = out.undone[0].drift.clone().unwrap();
    assert!(
        note.contains("6GB") && note.contains("restoring 1GB"),
        "{note}"
    );
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
}

#[tokio::test(start_paused = true)]
async fn a_deploy_restores_only_the_changes_left_open_on_its_own_target() {
    let w = World::new(World::default_backend());
    crashed_after_intent(&w);
    let changelog = w.path("CHANGELOG_TUNING.md");
    let service = crate::journal::Target::Service("web".into());
    let other = rollback(
        &w.ledger(),
        &w.locks(),
        w.backend.as_ref(),
        &changelog,
        &Scope::UnfinishedOn(service),
        false,
    )
    .await
    .unwrap();
    assert!(other.undone.is_empty(), "a PostgreSQL change is not web's");
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("4GB"));
    // Held already by the caller (a deploy holds its target): taken again.
    let locks = w.locks();
    let _held = locks
        .acquire(&crate::journal::Target::Postgres, "outer")
        .unwrap();
    let own = rollback(
        &w.ledger(),
        &locks,
        w.backend.as_ref(),
        &changelog,
        &Scope::UnfinishedOn(crate::journal::Target::Postgres),
        false,
    )
    .await
    .unwrap();
    assert_eq!(own.undone.len(), 1);
    assert_eq!(w.backend.value("max_wal_size").as_deref(), Some("1GB"));
}
