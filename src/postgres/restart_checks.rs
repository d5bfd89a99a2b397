//! What a restart needs before anything changes: a restarter, configuration
//! files the server will start with, and shared memory that fits the
//! container. Checked while planning, so a plan that would leave the server
//! down is refused, not executed.

use tokio_postgres::Client;

use super::catalog::{self, Context, SettingInfo};
use super::client::PgDatabase;
use super::plan::Activation;
use super::value::{validate, Normalized, Validated};
use super::PostgresError;

impl PgDatabase {
    /// The restarter's description when `activation` is a restart and
    /// every check passes; `None` for a reload.
    pub(super) async fn check_restart(
        &self,
        client: &Client,
        info: &SettingInfo,
        activation: Activation,
        new: Option<&Validated>,
    ) -> Result<Option<String>, PostgresError> {
        if activation != Activation::Restart {
            return Ok(None);
        }
        let restarter = self
            .restarter
            .as_ref()
            .ok_or_else(|| PostgresError::NoRestarter {
                name: info.name.clone(),
            })?;
        let errors = config_file_problems(client).await?;
        if !errors.is_empty() {
            return Err(PostgresError::ConfigFileErrors {
                name: info.name.clone(),
                errors,
            });
        }
        if let Some(limit) = self.options.memory_limit_bytes {
            let needed = shared_memory_estimate(client, info, new).await?;
            if needed > limit {
                return Err(PostgresError::MemoryLimit {
                    name: info.name.clone(),
                    value: new
                        .map(|v| v.value.clone())
                        .unwrap_or_else(|| "(reset)".into()),
                    needed_mb: needed.div_ceil(1 << 20),
                    limit_mb: limit / (1 << 20),
                });
            }
        }
        Ok(Some(restarter.describe()))
    }
}

/// Errors in the configuration files, as the server would see them on
/// start-up. `pg_file_settings` also reports `postmaster` settings that
/// merely wait for the restart we are about to do, in the server's language
/// (so we cannot match the text): a changed one has a file and line and
/// passes if its value validates; a removed one (after `ALTER SYSTEM
/// RESET`) has no file, and passes if the message names a `postmaster`
/// setting.
pub(super) async fn config_file_problems(client: &Client) -> Result<Vec<String>, PostgresError> {
    let mut problems = Vec::new();
    let mut postmaster_names: Option<Vec<String>> = None;
    for row in catalog::file_errors(client).await? {
        if row.sourcefile.is_empty() {
            if postmaster_names.is_none() {
                postmaster_names =
                    Some(catalog::names_in_context(client, Context::Postmaster).await?);
            }
            let names = postmaster_names.as_deref().unwrap_or_default();
            if names.iter().any(|n| mentions(&row.error, n)) {
                continue;
            }
        } else if let Ok(info) = catalog::lookup(client, &row.name).await {
            if info.context == Context::Postmaster && validate(&info, &row.setting).is_ok() {
                continue;
            }
        }
        let place = if row.sourcefile.is_empty() {
            String::new()
        } else {
            format!(
                "{}:{}: {} = {:?}: ",
                row.sourcefile, row.sourceline, row.name, row.setting
            )
        };
        problems.push(format!("{place}{}", row.error));
    }
    Ok(problems)
}

/// Whether `text` names the parameter `name` as a whole word.
fn mentions(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// shared_buffers + wal_buffers + a margin for the rest of PostgreSQL's
/// shared memory (lock tables, proc array, ...), in bytes, with `new`
/// substituted for the setting being changed.
async fn shared_memory_estimate(
    client: &Client,
    changing: &SettingInfo,
    new: Option<&Validated>,
) -> Result<u64, PostgresError> {
    const MIB: f64 = 1024.0 * 1024.0;
    let bytes = |info: &SettingInfo| -> f64 {
        let n = match new {
            Some(Validated {
                normalized: Normalized::Integer(n),
                ..
            }) if info.name == changing.name => *n as f64,
            _ => info.setting.trim().parse::<f64>().unwrap_or(0.0),
        };
        let unit = info
            .unit
            .as_deref()
            .and_then(super::units::BaseUnit::parse)
            .map(|u| u.size)
            .unwrap_or(1.0);
        n * unit
    };
    let shared = bytes(&catalog::lookup(client, "shared_buffers").await?);
    let mut wal = bytes(&catalog::lookup(client, "wal_buffers").await?);
    if wal < 0.0 {
        // -1: PostgreSQL picks 1/32 of shared_buffers, between 64kB and 16MB.
        wal = (shared / 32.0).clamp(64.0 * 1024.0, 16.0 * MIB);
    }
    let core = shared + wal;
    let margin = (core * 0.1).max(64.0 * MIB);
    Ok((core + margin) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_whole_parameter_names_only() {
        let msg = r#"parameter "wal_buffers" cannot be changed without restarting the server"#;
        assert!(mentions(msg, "wal_buffers"));
        assert!(!mentions(msg, "buffers"));
        assert!(!mentions(msg, "wal_buffers_x"));
        assert!(mentions("« wal_buffers »", "wal_buffers"));
    }
}
