//! Values that trade durability for speed.
//!
//! A tuner chasing latency would happily find that `fsync = off` "improves"
//! everything; the data loss shows up only after the next crash. Such values
//! are refused unless the caller explicitly allows them, and then logged
//! loudly.

use super::catalog::SettingInfo;
use super::value::Normalized;

const WAL_LEVELS: &[&str] = &["minimal", "replica", "logical"];

/// Why the new value weakens durability, or `None` if it does not.
pub fn durability_risk(info: &SettingInfo, new: &Normalized) -> Option<String> {
    match (info.name.to_ascii_lowercase().as_str(), new) {
        ("fsync", Normalized::Bool(false)) => {
            Some("without fsync an OS crash or power loss can corrupt the whole cluster".into())
        }
        ("full_page_writes", Normalized::Bool(false)) => Some(
            "without full-page writes a crash can leave torn pages that recovery cannot repair"
                .into(),
        ),
        ("synchronous_commit", Normalized::Enum(v)) if v.eq_ignore_ascii_case("off") => Some(
            "commits are acknowledged before their WAL is flushed and can be lost on a crash"
                .into(),
        ),
        ("wal_level", Normalized::Enum(v)) => {
            let rank = |s: &str| {
                WAL_LEVELS
                    .iter()
                    .position(|l| l.eq_ignore_ascii_case(s.trim()))
            };
            match (rank(&info.setting), rank(v)) {
                (Some(old), Some(new)) if new < old => Some(format!(
                    "lowering wal_level from {} to {v} breaks replication, WAL archiving and point-in-time recovery",
                    info.setting
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::catalog::{Context, VarType};

    fn info(name: &str, setting: &str) -> SettingInfo {
        SettingInfo {
            name: name.into(),
            setting: setting.into(),
            unit: None,
            vartype: VarType::Enum,
            context: Context::Sighup,
            min_val: None,
            max_val: None,
            enumvals: vec![],
            source: "default".into(),
            sourcefile: None,
            pending_restart: false,
        }
    }

    #[test]
    fn durability_weakening_values_are_flagged() {
        assert!(durability_risk(&info("fsync", "on"), &Normalized::Bool(false)).is_some());
        assert!(
            durability_risk(&info("full_page_writes", "on"), &Normalized::Bool(false)).is_some()
        );
        assert!(durability_risk(
            &info("synchronous_commit", "on"),
            &Normalized::Enum("off".into())
        )
        .is_some());
        assert!(durability_risk(
            &info("wal_level", "replica"),
            &Normalized::Enum("minimal".into())
        )
        .is_some());
    }

    #[test]
    fn safe_values_pass() {
        assert!(durability_risk(&info("fsync", "off"), &Normalized::Bool(true)).is_none());
        assert!(durability_risk(
            &info("synchronous_commit", "on"),
            &Normalized::Enum("local".into())
        )
        .is_none());
        assert!(durability_risk(
            &info("wal_level", "replica"),
            &Normalized::Enum("logical".into())
        )
        .is_none());
        assert!(
            durability_risk(&info("max_wal_size", "1024"), &Normalized::Integer(2048)).is_none()
        );
    }
}
