//! Writes tuner's own metrics (`output::textfile`) into the textfile
//! collector's folder after each command that knows something new: status
//! (the SLA), tune (at its start, after each judged change, at its end) and
//! rollback (the settings). Best effort: a folder that cannot be written is
//! a warning, never a failed command.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::journal::{Event, Events, Journal};
use crate::levers::{Catalog, LeverBackend};
use crate::metrics::SlaReport;
use crate::output::textfile::{self, Setting};
use crate::tune::ledger::{Ledger, Status};

fn write(dir: &Path, name: &str, text: &str) {
    if let Err(e) = textfile::write(dir, name, text) {
        tracing::warn!("cannot write tuner's metrics to {}: {e}", dir.display());
    }
}

fn ledger(config: &Config) -> Ledger {
    Ledger::new(Journal::new(super::tune::journal_path(config)))
}

/// The last SLA reading, from `status` or the end of `tune`.
pub fn sla(config: &Config, report: &SlaReport) {
    let Some(dir) = config.textfile_dir() else {
        return;
    };
    write(&dir, textfile::INFO_FILE, &textfile::render_info());
    write(&dir, textfile::SLA_FILE, &textfile::render_sla(report));
}

/// Every catalog lever's live value, read through the backend; a lever
/// that cannot be read is left out (its backend may be down).
pub async fn read_settings(
    catalog: &Catalog,
    backend: &dyn LeverBackend,
) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for lever in &catalog.levers {
        if let Ok(value) = backend.current(lever).await {
            out.insert(lever.name.clone(), value);
        }
    }
    out
}

fn settings(catalog: &Catalog, values: &BTreeMap<String, Option<String>>) -> Vec<Setting> {
    catalog
        .levers
        .iter()
        .filter_map(|lever| {
            let value = values.get(&lever.name)?.clone();
            let assignment = lever.assignment(None);
            let setting = assignment
                .split_once('=')
                .map_or(assignment.as_str(), |(k, _)| k)
                .to_string();
            let number = value
                .as_deref()
                .and_then(|v| crate::levers::choose::numeric(lever, v));
            Some(Setting {
                lever: lever.name.clone(),
                setting,
                value,
                number,
            })
        })
        .collect()
}

/// What tuning did and the settings' values, after `tune` or `rollback`.
pub fn tune(config: &Config, catalog: &Catalog, values: &BTreeMap<String, Option<String>>) {
    let Some(dir) = config.textfile_dir() else {
        return;
    };
    let entries = match ledger(config).entries() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("cannot read the journal for tuner's metrics: {e}");
            return;
        }
    };
    write(&dir, textfile::INFO_FILE, &textfile::render_info());
    let text = textfile::render_tune(&entries, &settings(catalog, values), Utc::now());
    write(&dir, textfile::TUNE_FILE, &text);
}

/// Passes a run's events on, and rewrites the tuning metrics whenever a
/// change was judged since the last event: the cycle's own steps are the
/// clock, so the core needs no hook. Settings changed in this run take the
/// value the journal says is in force (kept: the new one; rolled back: the
/// old one) over the snapshot read at the start.
pub struct AfterEachCycle<'a> {
    pub inner: &'a dyn Events,
    pub config: &'a Config,
    pub catalog: &'a Catalog,
    pub started: DateTime<Utc>,
    pub values: BTreeMap<String, Option<String>>,
    decisions: Mutex<usize>,
}

impl<'a> AfterEachCycle<'a> {
    pub fn new(
        inner: &'a dyn Events,
        config: &'a Config,
        catalog: &'a Catalog,
        values: BTreeMap<String, Option<String>>,
    ) -> AfterEachCycle<'a> {
        let decisions = ledger(config)
            .changes()
            .map(|c| c.iter().filter(|c| c.decision.is_some()).count())
            .unwrap_or(0);
        AfterEachCycle {
            inner,
            config,
            catalog,
            started: Utc::now(),
            values,
            decisions: Mutex::new(decisions),
        }
    }

    /// The snapshot with this run's judged changes applied.
    pub fn current(&self) -> BTreeMap<String, Option<String>> {
        let mut values = self.values.clone();
        if let Ok(changes) = ledger(self.config).changes() {
            for c in changes.iter().filter(|c| c.at >= self.started) {
                match c.status() {
                    Status::Kept => values.insert(c.lever.name.clone(), c.mv.to.clone()),
                    Status::RolledBack => values.insert(c.lever.name.clone(), c.mv.from.clone()),
                    Status::Unfinished => None,
                };
            }
        }
        values
    }

    fn refresh(&self) {
        let Ok(changes) = ledger(self.config).changes() else {
            return;
        };
        let judged = changes.iter().filter(|c| c.decision.is_some()).count();
        let mut seen = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        if *seen != judged {
            *seen = judged;
            drop(seen);
            tune(self.config, self.catalog, &self.current());
        }
    }
}

impl Events for AfterEachCycle<'_> {
    fn emit(&self, event: Event) {
        let step = matches!(event, Event::Step { .. });
        self.inner.emit(event);
        if step {
            self.refresh();
        }
    }
}
