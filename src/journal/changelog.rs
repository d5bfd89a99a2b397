//! `CHANGELOG_TUNING.md`: the human audit trail, one section per change in
//! the runbook's format (`## <time>`, `* Lever:`, `* Goal metric:`,
//! `* Result:`), followed by the evidence behind the verdict.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{io_error, write_atomic, JournalError};

const HEADER: &str =
    "# Tuning changelog\n\nWritten by `tuner tune` and `tuner rollback`; newest last.\n\n";

#[derive(Debug, Clone, PartialEq)]
pub struct ChangelogEntry {
    pub at: DateTime<Utc>,
    /// `checkpoint_timeout=10min`.
    pub lever: String,
    /// (metric, before, after) as printed values.
    pub goal: Option<(String, String, String)>,
    /// `✅ improved` or `↩️ rolled back (no_effect): ...`.
    pub result: String,
    /// Further bullets: change id, window, sample counts, noise band.
    pub details: Vec<String>,
}

impl ChangelogEntry {
    pub fn render(&self) -> String {
        let mut out = format!("## {}\n\n", self.at.format("%Y-%m-%d %H:%M UTC"));
        out.push_str(&format!("* Lever: {}\n", self.lever));
        if let Some((metric, from, to)) = &self.goal {
            out.push_str(&format!("* Goal metric: {metric} from {from} → {to}\n"));
        }
        out.push_str(&format!("* Result: {}\n", self.result));
        for d in &self.details {
            out.push_str(&format!("* {d}\n"));
        }
        out.push('\n');
        out
    }
}

/// Appends one section. The whole file is rewritten atomically so a crash
/// leaves the old or the new file, never half a section.
pub fn append(path: &Path, entry: &ChangelogEntry) -> Result<(), JournalError> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_string(),
        Err(e) => return Err(io_error("read changelog", path)(e)),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&entry.render());
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn renders_in_the_runbook_format_and_appends() {
        let entry = ChangelogEntry {
            at: Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0).unwrap(),
            lever: "checkpoint_timeout=10min".into(),
            goal: Some(("wal_rate".into(), "1234567".into(), "987654".into())),
            result: "✅ improved".into(),
            details: vec!["Change: c1".into()],
        };
        assert_eq!(
            entry.render(),
            "## 2024-01-15 10:30 UTC\n\n* Lever: checkpoint_timeout=10min\n* Goal metric: wal_rate from 1234567 → 987654\n* Result: ✅ improved\n* Change: c1\n\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("CHANGELOG_TUNING.md");
        append(&path, &entry).unwrap();
        append(&path, &entry).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Tuning changelog"));
        assert_eq!(text.matches("## 2024-01-15 10:30 UTC").count(), 2);
    }
}
