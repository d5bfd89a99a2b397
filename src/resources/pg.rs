//! PostgreSQL memory settings from the memory its *container* is given, not
//! the host's RAM (the gap timescaledb-tune users report in its issue #58:
//! sizing from host RAM lets a container's shared_buffers alone exceed its
//! limit), and max_wal_size from free disk. Shown as the `ALTER SYSTEM` plan
//! `tune` would apply; `resources` never applies it.

use serde::Serialize;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// One setting with the reason for its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PgSetting {
    pub name: &'static str,
    /// In PostgreSQL's own notation (`256MB`, `4MB`, `64kB`).
    pub value: String,
    pub bytes: u64,
    pub why: String,
}

impl PgSetting {
    pub fn alter_system(&self) -> String {
        format!("ALTER SYSTEM SET {} = '{}';", self.name, self.value)
    }
}

/// The settings for a container limited to `memory` bytes, on a volume
/// with `free_disk` bytes free, for `max_connections` connections.
pub fn settings(memory: u64, free_disk: u64, max_connections: u32) -> Vec<PgSetting> {
    let shared = round_down(memory / 4, MIB).max(128 * KIB);
    let cache = round_down(memory * 3 / 4, MIB).max(8 * KIB);
    // Each connection may run a few sorts/hashes at once; what shared
    // buffers leave is split between them.
    let per_conn = (memory - shared.min(memory)) / (u64::from(max_connections.max(1)) * 3);
    let work = round_down(per_conn, KIB).clamp(64 * KIB, GIB);
    let maintenance = round_down(memory / 16, MIB).clamp(MIB, 2 * GIB);
    // A tenth of the free disk, between PostgreSQL's 1GB default and 16GB;
    // never more than a quarter of what is free.
    let wal = round_down(
        (free_disk / 10).clamp(GIB, 16 * GIB).min(free_disk / 4),
        MIB,
    )
    .max(32 * MIB);
    let limit = crate::config::units::format_bytes(memory);
    vec![
        PgSetting {
            name: "shared_buffers",
            value: pg_bytes(shared),
            bytes: shared,
            why: format!("25% of the container's {limit}"),
        },
        PgSetting {
            name: "effective_cache_size",
            value: pg_bytes(cache),
            bytes: cache,
            why: format!("75% of the container's {limit}"),
        },
        PgSetting {
            name: "work_mem",
            value: pg_bytes(work),
            bytes: work,
            why: format!("(limit - shared_buffers) / ({max_connections} connections x 3)"),
        },
        PgSetting {
            name: "maintenance_work_mem",
            value: pg_bytes(maintenance),
            bytes: maintenance,
            why: format!("1/16 of the container's {limit}, at most 2GB"),
        },
        PgSetting {
            name: "max_wal_size",
            value: pg_bytes(wal),
            bytes: wal,
            why: format!(
                "a tenth of the {} free on the data volume, 1GB-16GB",
                crate::config::units::format_bytes(round_down(free_disk, MIB))
            ),
        },
    ]
}

fn round_down(x: u64, unit: u64) -> u64 {
    x / unit * unit
}

/// Bytes in PostgreSQL's units (kB, MB, GB; 1024-based).
pub fn pg_bytes(bytes: u64) -> String {
    for (unit, size) in [("GB", GIB), ("MB", MIB)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{}kB", bytes / KIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(s: &[PgSetting], name: &str) -> u64 {
        s.iter().find(|x| x.name == name).map(|x| x.bytes).unwrap()
    }

    #[test]
    fn settings_follow_the_container_limit_not_the_host() {
        let small = settings(GIB, 40 * GIB, 100);
        let large = settings(4 * GIB, 40 * GIB, 100);
        assert_eq!(get(&small, "shared_buffers"), 256 * MIB);
        assert_eq!(get(&large, "shared_buffers"), GIB);
        assert_eq!(get(&small, "effective_cache_size"), 768 * MIB);
        assert_eq!(get(&small, "maintenance_work_mem"), 64 * MIB);
        // (1024 - 256) MB / 300
        assert_eq!(get(&small, "work_mem"), 2621 * KIB);
        assert!(small
            .iter()
            .filter(|s| s.name != "max_wal_size")
            .all(|s| s.bytes < GIB));
        assert_eq!(
            small[0].alter_system(),
            "ALTER SYSTEM SET shared_buffers = '256MB';"
        );
    }

    #[test]
    fn max_wal_size_follows_free_disk() {
        assert_eq!(get(&settings(GIB, 40 * GIB, 100), "max_wal_size"), 4 * GIB);
        assert_eq!(
            get(&settings(GIB, 500 * GIB, 100), "max_wal_size"),
            16 * GIB
        );
        // 2 GB free: 1 GB would be half of it, a quarter is the ceiling.
        assert_eq!(get(&settings(GIB, 2 * GIB, 100), "max_wal_size"), 512 * MIB);
    }

    #[test]
    fn units_as_postgres_writes_them() {
        assert_eq!(pg_bytes(GIB), "1GB");
        assert_eq!(pg_bytes(1536 * MIB), "1536MB");
        assert_eq!(pg_bytes(2621 * KIB), "2621kB");
    }
}
