//! Writing the override: under every planned service's lock, the intent
//! (old and new text) journaled before the atomic write, the outcome after.
//! An intent left without outcome by a crash is settled by the next run:
//! the write is atomic, so the file holds either text.

use serde::{Deserialize, Serialize};

use super::write::OverridePlan;
use crate::journal::{Journal, JournalError, Locks, Target};
use crate::runtime::{OverrideError, OverrideFile};

pub const MODULE: &str = "resources";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Entry {
    Intent {
        id: String,
        path: String,
        before: Option<String>,
        after: String,
    },
    Outcome {
        id: String,
        /// `written`, or after a crash `found_new` / `found_old`.
        result: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Override(#[from] OverrideError),
}

/// Writes `plan` to `file`, journaled and locked.
pub fn write(
    file: &OverrideFile,
    plan: &OverridePlan,
    services: &[String],
    journal: &Journal,
    locks: &Locks,
) -> Result<(), ApplyError> {
    let targets: Vec<Target> = services.iter().cloned().map(Target::Service).collect();
    let _held = locks.acquire_all(&targets, "resources: write the Compose override")?;
    settle(file, journal)?;
    let id = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    journal.append_as(
        MODULE,
        None,
        &Entry::Intent {
            id: id.clone(),
            path: file.path.display().to_string(),
            before: plan.before.clone(),
            after: plan.after.clone(),
        },
    )?;
    file.write(Some(&plan.after))?;
    journal.append_as(
        MODULE,
        None,
        &Entry::Outcome {
            id,
            result: "written".into(),
        },
    )?;
    Ok(())
}

/// Records what an interrupted write left: the file's text decides.
pub fn settle(file: &OverrideFile, journal: &Journal) -> Result<(), ApplyError> {
    let entries: Vec<Entry> = journal.entries_of(MODULE, None)?;
    let Some(Entry::Intent { id, after, .. }) = entries.last() else {
        return Ok(());
    };
    let now = file.read()?;
    let result = if now.as_deref() == Some(after.as_str()) {
        "found_new"
    } else {
        "found_old"
    };
    journal.append_as(
        MODULE,
        None,
        &Entry::Outcome {
            id: id.clone(),
            result: result.into(),
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_then_outcome_and_a_crash_is_settled() {
        let dir = tempfile::tempdir().unwrap();
        let file = OverrideFile::in_dir(dir.path());
        let journal = Journal::new(dir.path().join(".tuner/journal.jsonl"));
        let locks = Locks::new(&dir.path().join(".tuner"), "test");
        let plan = OverridePlan {
            path: file.path.clone(),
            before: None,
            after: "services: {}\n".into(),
            changes: Vec::new(),
            conflicts: Vec::new(),
        };
        write(&file, &plan, &["db".into()], &journal, &locks).unwrap();
        assert_eq!(file.read().unwrap().as_deref(), Some("services: {}\n"));
        let entries: Vec<Entry> = journal.entries_of(MODULE, None).unwrap();
        assert!(matches!(entries[0], Entry::Intent { .. }));
        assert!(matches!(&entries[1], Entry::Outcome { result, .. } if result == "written"));

        // A crash between intent and write: the next run records it.
        journal
            .append_as(
                MODULE,
                None,
                &Entry::Intent {
                    id: "x".into(),
                    path: String::new(),
                    before: None,
                    after: "other\n".into(),
                },
            )
            .unwrap();
        settle(&file, &journal).unwrap();
        let entries: Vec<Entry> = journal.entries_of(MODULE, None).unwrap();
        assert!(
            matches!(entries.last(), Some(Entry::Outcome { result, .. }) if result == "found_old")
        );
    }
}
