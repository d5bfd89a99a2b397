//! The cycle when some objective cannot be measured (no data, no baseline):
//! it is named, never called met, and decides the outcome only when no
//! objective could be measured at all; the same rule `tuner status` exits by.

use std::collections::BTreeMap;

use super::{is, World};
use crate::tune::report::Outcome;

/// Latency has no data (a VM without the exporter, say); WAL is measured.
fn latency_unmeasured(wal: f64) -> BTreeMap<String, Option<f64>> {
    BTreeMap::from([
        ("wal_rate".to_string(), Some(wal)),
        ("p95_write_latency".to_string(), None),
    ])
}

#[tokio::test(start_paused = true)]
async fn an_objective_without_data_is_named_but_does_not_fail_a_met_sla() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|_| latency_unmeasured(50.0));
    let report = w.run(&obs, 5).await;
    assert_eq!(report.outcome, Outcome::SlaMet, "{}", report.message);
    assert_eq!(crate::exit::for_tune(&report), 0);
    assert_eq!(
        report.message,
        "SLA met by every measured objective; not measured: p95_write_latency (no data)"
    );
    let sla = report.sla.as_ref().unwrap();
    assert_eq!(crate::exit::for_sla(sla.verdict), 0, "as `status` exits");
    assert!(w.backend.writes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn with_nothing_measured_the_sla_is_never_called_met() {
    let w = World::new(World::default_backend());
    let obs = w.observer(|_| {
        BTreeMap::from([
            ("wal_rate".to_string(), None),
            ("p95_write_latency".to_string(), None),
        ])
    });
    let report = w.run(&obs, 5).await;
    assert_eq!(report.outcome, Outcome::Unmeasured);
    assert_eq!(crate::exit::for_tune(&report), 1);
    assert!(
        report.message.starts_with(
            "cannot tell whether the SLA holds: no objective could be measured: p95_write_latency (no data), wal_rate (no data)"
        ),
        "{}",
        report.message
    );
    assert!(w.backend.writes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_violated_objective_is_tuned_while_another_has_no_data() {
    // WAL violated, latency unmeasured: tune acts on WAL, and its end says
    // what it could not judge.
    let w = World::new(World::default_backend());
    let obs = w.observer(|l| {
        latency_unmeasured(if is(l, "max_wal_size", "4GB") {
            60.0
        } else {
            150.0
        })
    });
    let report = w.run(&obs, 5).await;
    let kept: Vec<_> = report
        .cycles
        .iter()
        .map(|c| (c.lever.as_str(), c.kept))
        .collect();
    assert_eq!(kept, [("max_wal_size", true)]);
    assert_eq!(report.outcome, Outcome::SlaMet, "{}", report.message);
    assert!(
        report
            .message
            .ends_with("not measured: p95_write_latency (no data)"),
        "{}",
        report.message
    );

    // Nothing helps: no lever is left, and the message still names it.
    let w = World::new(World::default_backend());
    let obs = w.observer(|_| latency_unmeasured(150.0));
    let report = w.run(&obs, 10).await;
    assert_eq!(report.outcome, Outcome::NoLever);
    assert_eq!(crate::exit::for_tune(&report), 3);
    assert!(
        report
            .message
            .ends_with("\nnot measured: p95_write_latency (no data)"),
        "{}",
        report.message
    );
}
