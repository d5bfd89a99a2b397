//! One row of the live `pg_settings` view, and the queries that read it.
//!
//! Type, range, allowed values and whether a restart is needed all come
//! from the running server, never from a file of ours: they differ between
//! PostgreSQL versions and builds.

use serde::Serialize;
use tokio_postgres::{Client, Row};

use super::units::BaseUnit;
use super::PostgresError;

/// `pg_settings.vartype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    Bool,
    Integer,
    Real,
    String,
    Enum,
}

/// `pg_settings.context`: when a new value takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Context {
    /// Fixed at build or initdb time; never settable.
    Internal,
    /// Needs a server restart.
    Postmaster,
    /// Reload; existing sessions pick it up.
    Sighup,
    /// Reload; only sessions started afterwards see it.
    SuperuserBackend,
    Backend,
    /// Reload; sessions see it unless they set it themselves.
    Superuser,
    User,
}

impl Context {
    fn parse(s: &str) -> Option<Context> {
        Some(match s {
            "internal" => Context::Internal,
            "postmaster" => Context::Postmaster,
            "sighup" => Context::Sighup,
            "superuser-backend" => Context::SuperuserBackend,
            "backend" => Context::Backend,
            "superuser" => Context::Superuser,
            "user" => Context::User,
            _ => return None,
        })
    }

    /// Whether an existing session keeps its old value after a reload, so
    /// the new value must be confirmed from a fresh connection.
    pub fn per_session(self) -> bool {
        matches!(self, Context::Backend | Context::SuperuserBackend)
    }
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Context::Internal => "internal",
            Context::Postmaster => "postmaster",
            Context::Sighup => "sighup",
            Context::SuperuserBackend => "superuser-backend",
            Context::Backend => "backend",
            Context::Superuser => "superuser",
            Context::User => "user",
        })
    }
}

impl std::fmt::Display for VarType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VarType::Bool => "bool",
            VarType::Integer => "integer",
            VarType::Real => "real",
            VarType::String => "string",
            VarType::Enum => "enum",
        })
    }
}

/// A parameter as the live server describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingInfo {
    pub name: String,
    /// Current value, in `unit`s for numbers.
    pub setting: String,
    pub unit: Option<String>,
    pub vartype: VarType,
    pub context: Context,
    pub min_val: Option<String>,
    pub max_val: Option<String>,
    pub enumvals: Vec<String>,
    /// Where the current value comes from (`default`, `configuration file`, ...).
    pub source: String,
    /// Only visible to superusers; `None` otherwise.
    pub sourcefile: Option<String>,
    pub pending_restart: bool,
}

impl SettingInfo {
    /// The value with its unit, for humans and the audit trail: `1GB`,
    /// `15min`, `on`.
    pub fn human_value(&self) -> String {
        match (
            self.unit.as_deref().and_then(BaseUnit::parse),
            self.setting.trim().parse::<f64>(),
        ) {
            (Some(unit), Ok(n)) => unit.display(n),
            _ => self.setting.clone(),
        }
    }

    /// Whether the live value was written by `ALTER SYSTEM`.
    pub fn from_auto_conf(&self) -> bool {
        self.sourcefile
            .as_deref()
            .is_some_and(|f| f.ends_with("postgresql.auto.conf"))
    }
}

const COLUMNS: &str = "name, setting, unit, vartype, context, min_val, max_val, enumvals, source, sourcefile, pending_restart";

fn from_row(row: &Row) -> Result<SettingInfo, String> {
    let name: String = row.try_get("name").map_err(|e| e.to_string())?;
    let vartype: String = row.try_get("vartype").map_err(|e| e.to_string())?;
    let context: String = row.try_get("context").map_err(|e| e.to_string())?;
    let vartype = match vartype.as_str() {
        "bool" => VarType::Bool,
        "integer" => VarType::Integer,
        "real" => VarType::Real,
        "string" => VarType::String,
        "enum" => VarType::Enum,
        other => return Err(format!("{name}: unknown vartype {other:?}")),
    };
    let context =
        Context::parse(&context).ok_or_else(|| format!("{name}: unknown context {context:?}"))?;
    let get = |col: &str| -> Result<Option<String>, String> {
        row.try_get(col).map_err(|e| e.to_string())
    };
    Ok(SettingInfo {
        setting: get("setting")?.unwrap_or_default(),
        unit: get("unit")?,
        vartype,
        context,
        min_val: get("min_val")?,
        max_val: get("max_val")?,
        enumvals: row
            .try_get::<_, Option<Vec<String>>>("enumvals")
            .map_err(|e| e.to_string())?
            .unwrap_or_default(),
        source: get("source")?.unwrap_or_default(),
        sourcefile: get("sourcefile")?,
        pending_restart: row.try_get("pending_restart").map_err(|e| e.to_string())?,
        name,
    })
}

fn decode_error(doing: &str, detail: String) -> PostgresError {
    PostgresError::Unexpected {
        doing: doing.to_string(),
        detail,
    }
}

/// Looks a parameter up; `UnknownParameter` if the server has no such name.
/// Names are matched case-insensitively, as PostgreSQL does.
pub async fn lookup(client: &Client, name: &str) -> Result<SettingInfo, PostgresError> {
    let sql = format!("SELECT {COLUMNS} FROM pg_catalog.pg_settings WHERE lower(name) = lower($1)");
    let rows = client
        .query(&sql, &[&name.trim()])
        .await
        .map_err(|source| PostgresError::Query {
            doing: format!("looking up {name} in pg_settings"),
            source,
        })?;
    let row = rows
        .first()
        .ok_or_else(|| PostgresError::UnknownParameter {
            name: name.to_string(),
        })?;
    from_row(row).map_err(|d| decode_error("reading pg_settings", d))
}

/// All settings whose value does not come from the built-in default, for
/// backups before a change.
pub async fn non_default(client: &Client) -> Result<Vec<SettingInfo>, PostgresError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM pg_catalog.pg_settings WHERE source <> 'default' ORDER BY name"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|source| PostgresError::Query {
            doing: "listing non-default settings".into(),
            source,
        })?;
    rows.iter()
        .map(|r| from_row(r).map_err(|d| decode_error("reading pg_settings", d)))
        .collect()
}

/// Names of all parameters in one context.
pub async fn names_in_context(
    client: &Client,
    context: Context,
) -> Result<Vec<String>, PostgresError> {
    let rows = client
        .query(
            "SELECT name FROM pg_catalog.pg_settings WHERE context = $1",
            &[&context.to_string()],
        )
        .await
        .map_err(|source| PostgresError::Query {
            doing: format!("listing {context} parameters"),
            source,
        })?;
    rows.iter()
        .map(|r| {
            r.try_get(0)
                .map_err(|e| decode_error("reading pg_settings", e.to_string()))
        })
        .collect()
}

/// A line of a configuration file the server reports an error for.
#[derive(Debug, Clone)]
pub struct FileSettingError {
    pub sourcefile: String,
    pub sourceline: i32,
    pub name: String,
    pub setting: String,
    pub error: String,
}

/// Rows of `pg_file_settings` with an error. The view re-reads the files on
/// every query, so this shows what a restart would find.
pub async fn file_errors(client: &Client) -> Result<Vec<FileSettingError>, PostgresError> {
    let rows = client
        .query(
            "SELECT coalesce(sourcefile, ''), coalesce(sourceline, 0), coalesce(name, ''), coalesce(setting, ''), error \
             FROM pg_catalog.pg_file_settings WHERE error IS NOT NULL ORDER BY seqno",
            &[],
        )
        .await
        .map_err(|source| PostgresError::Query { doing: "reading pg_file_settings".into(), source })?;
    rows.iter()
        .map(|r| {
            Ok(FileSettingError {
                sourcefile: r
                    .try_get(0)
                    .map_err(|e| decode_error("reading pg_file_settings", e.to_string()))?,
                sourceline: r
                    .try_get(1)
                    .map_err(|e| decode_error("reading pg_file_settings", e.to_string()))?,
                name: r
                    .try_get(2)
                    .map_err(|e| decode_error("reading pg_file_settings", e.to_string()))?,
                setting: r
                    .try_get(3)
                    .map_err(|e| decode_error("reading pg_file_settings", e.to_string()))?,
                error: r
                    .try_get(4)
                    .map_err(|e| decode_error("reading pg_file_settings", e.to_string()))?,
            })
        })
        .collect()
}
