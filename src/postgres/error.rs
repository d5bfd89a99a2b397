//! The one error type of the `postgres` module.
//!
//! Every refusal names the parameter, the offending value and what would have
//! been accepted, so the user can fix the lever without reading our code.
//! Refusals (`Unknown*`, `Invalid*`, `OutOfRange`, ...) are raised before
//! anything is written: the server and `postgresql.auto.conf` are untouched.
//! The DSN password never appears: connection errors carry a redacted target.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("the PostgreSQL DSN is invalid: {reason}")]
    InvalidDsn { reason: String },

    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },

    #[error("PostgreSQL query failed while {doing}: {source}")]
    Query {
        doing: String,
        #[source]
        source: tokio_postgres::Error,
    },

    #[error("unexpected answer from PostgreSQL while {doing}: {detail}")]
    Unexpected { doing: String, detail: String },

    #[error(
        "{name}: unknown parameter (not in pg_settings of the live server); check the spelling"
    )]
    UnknownParameter { name: String },

    #[error("{name}: is a read-only `internal` parameter (fixed when PostgreSQL was built or initialised) and cannot be set")]
    InternalParameter { name: String },

    #[error("{name}: {value:?} {reason}; accepted: {accepted}")]
    InvalidValue {
        name: String,
        value: String,
        reason: String,
        accepted: String,
    },

    #[error(
        "{name}: {value:?} contains {what}, which is never valid for {vartype} parameters; refused"
    )]
    ForbiddenCharacters {
        name: String,
        value: String,
        what: &'static str,
        vartype: String,
    },

    /// `problem` is "below the minimum" or "above the maximum"; `allowed`
    /// spells the unit and the range, e.g. `unit MB: 2MB..2147483647MB`.
    #[error("{name}: {value} is {problem} {bound} ({allowed})")]
    OutOfRange {
        name: String,
        value: String,
        problem: &'static str,
        bound: String,
        allowed: String,
    },

    #[error("{name}: {value:?} is not one of {}", allowed.join(", "))]
    NotInEnum {
        name: String,
        value: String,
        allowed: Vec<String>,
    },

    #[error("{name}: {value:?} weakens durability ({reason}); refused unless allow_unsafe is set")]
    UnsafeValue {
        name: String,
        value: String,
        reason: String,
    },

    #[error("{name}: needs a PostgreSQL restart (context postmaster) but no restarter is configured; configure one or skip this lever")]
    NoRestarter { name: String },

    #[error("{name}: refusing to restart: the configuration files have errors PostgreSQL would trip over: {}", errors.join("; "))]
    ConfigFileErrors { name: String, errors: Vec<String> },

    #[error("{name}: {value:?} would need about {needed_mb} MB of shared memory, over the {limit_mb} MB memory limit; lower it or raise the limit")]
    MemoryLimit {
        name: String,
        value: String,
        needed_mb: u64,
        limit_mb: u64,
    },

    #[error("{name}: reload was not picked up within {seconds}s (pg_conf_load_time did not move)")]
    ReloadTimeout { name: String, seconds: u64 },

    #[error("{name}: asked for {expected:?} but the server reports {actual:?} (source: {source_kind}){}", if *reverted { "; the change was reverted" } else { "" })]
    NotConfirmed {
        name: String,
        expected: String,
        actual: String,
        source_kind: String,
        reverted: bool,
    },

    #[error("{name}: PostgreSQL did not accept queries within {seconds}s after the restart ({reason}); {}", if *restored { "the previous postgresql.auto.conf was restored and the server started again" } else { "restoring the previous postgresql.auto.conf FAILED too: check the server now" })]
    RestartFailed {
        name: String,
        seconds: u64,
        reason: String,
        restored: bool,
    },

    #[error("restarter {restarter}: {reason}")]
    Restarter { restarter: String, reason: String },

    #[error("docker: {0}")]
    Docker(#[from] crate::runtime::DockerError),

    #[error("{doing} {}: {source}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
