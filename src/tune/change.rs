//! Steps 3 and 4 of a cycle, for one change in flight: back up, journal the
//! intent and apply it while holding the lever's target, then settle and
//! observe. Any failure after the apply restores the change before the
//! error goes up, so nothing is left half-applied.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use super::cycle::{Choice, Tuner};
use super::ledger::Action;
use super::observe::{observe, Observation, Tripwires};
use super::restore::{hold, restore};
use super::windows::{log_line, WindowKind};
use super::TuneError;
use crate::journal::{backup, tuning_log, Shutdown, TargetLock};
use crate::judge::reference::Reference;
use crate::levers::catalog::{Lever, Target};
use crate::postgres::units::to_duration;

/// A change in flight: what was chosen, its id, and the window it is judged
/// against.
pub(super) struct Change {
    pub id: String,
    pub cycle: u32,
    pub kind: WindowKind,
    pub before: Reference,
    pub choice: Choice,
    /// SLA metrics that had data before the change: one going silent after
    /// it ends the observation as no data.
    pub required: Vec<String>,
}

impl Tuner<'_> {
    /// Backs up settings and every file any lever may touch, once per run,
    /// before the first change.
    pub(super) async fn ensure_backup(&mut self) -> Result<(), TuneError> {
        if self.backup.is_some() {
            return Ok(());
        }
        let settings = self.cx.backend.settings_snapshot().await?;
        let mut files: Vec<PathBuf> = Vec::new();
        for lever in &self.cx.catalog.levers {
            for f in self.cx.backend.files_touched(lever) {
                if !files.contains(&f) {
                    files.push(f);
                }
            }
        }
        self.backup = Some(backup::create(
            &self.cx.backups_dir,
            Utc::now(),
            &settings,
            &files,
        )?);
        Ok(())
    }

    /// Step 3: back up, reconcile the move with the live value, take the
    /// lever's target, journal the intent, apply. Returns the target's lock,
    /// held until the change is kept or undone. A failed apply is restored
    /// (its outcome is unknown: half-applied?) and stops the run.
    pub(super) async fn journal_and_apply(
        &mut self,
        change: &mut Change,
        shutdown: &mut Shutdown,
    ) -> Result<Option<TargetLock>, TuneError> {
        self.ensure_backup().await?;
        let lever = &change.choice.candidate.lever;
        // Reconcile: journal the value that is live now, not the one read
        // when the lever was chosen, so a rollback restores what was there.
        let live = self.cx.backend.current(lever).await?;
        let mv = &mut change.choice.candidate.mv;
        if live != mv.from {
            tracing::warn!(lever = %lever.name, "value changed since planning: {:?} -> {:?}", mv.from, live);
            mv.from = live;
        }
        // An interrupt that arrived while preparing: stop before touching anything.
        if shutdown.count() > 0 {
            return Err(TuneError::Interrupted);
        }
        let mv = mv.clone();
        let assignment = lever.assignment(mv.to.as_deref());
        let held = hold(
            &self.cx.locks,
            lever,
            &format!("change {} ({assignment})", change.id),
        )?;
        self.cx
            .progress
            .step(&format!("cycle {}: {assignment}", change.cycle));
        self.cx
            .ledger
            .intent(&change.id, Action::Apply, lever, &mv)?;
        // A recreate or a command can take as long as `tune.command_timeout`;
        // a PostgreSQL restart reports its own wait.
        let slow = match &lever.target {
            Target::Env { service, .. } => Some(format!("{assignment}: recreating {service}")),
            Target::Command { .. } => Some(format!("{assignment}: running its command")),
            Target::Postgres { .. } | Target::Container { .. } => None,
        };
        if let Some(what) = &slow {
            self.cx.progress.waiting(what, None);
        }
        let applied = self.cx.backend.apply(lever, &mv).await;
        if slow.is_some() {
            self.cx.progress.finished();
        }
        crate::crash::at(crate::crash::Point::Apply);
        self.cx.ledger.outcome(
            &change.id,
            Action::Apply,
            &applied.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        )?;
        if let Err(e) = applied {
            restore(&self.cx, &change.id, lever, &mv, shutdown).await?;
            return Err(e.into());
        }
        Ok(held)
    }

    /// Step 4: settle, then watch the after-window the way the before-window
    /// was taken, logging every sample. Metrics that fail restore the change.
    pub(super) async fn observe_change(
        &self,
        change: &Change,
        firing_before: &BTreeSet<String>,
        shutdown: &mut Shutdown,
    ) -> Result<Observation, TuneError> {
        let log = self.cx.tuning_log.clone();
        let id = change.id.clone();
        let observation = observe(
            self.cx.observer,
            &self.opts.windows,
            change.kind.opening(self.cx.backend),
            Tripwires {
                firing_before,
                required: &change.required,
            },
            shutdown,
            self.cx.progress,
            |s, work| {
                tuning_log::append(&log, &log_line(s, &id, "observe", work))?;
                crate::crash::at(crate::crash::Point::Observe);
                Ok(())
            },
        )
        .await;
        match observation {
            Ok(o) => Ok(o),
            Err(e) => {
                let c = &change.choice.candidate;
                restore(&self.cx, &change.id, &c.lever, &c.mv, shutdown).await?;
                Err(e)
            }
        }
    }

    /// The checkpoint cycle a WAL verdict is provisional against.
    pub(super) async fn checkpoint_timeout(&self, wal_goal: bool) -> Option<Duration> {
        if !wal_goal {
            return None;
        }
        let probe = Lever::postgres_probe("checkpoint_timeout");
        match self.cx.backend.current(&probe).await {
            Ok(v) => v.as_deref().and_then(|v| to_duration(v, "s")),
            Err(_) => None,
        }
    }
}
