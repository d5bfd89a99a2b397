//! The PostgreSQL applier against a real PostgreSQL 15: reloads, restarts
//! through an argv restarter, refusals that leave `postgresql.auto.conf`
//! byte-identical, reset, and recovery from a restart that fails.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::postgres::PgServer;
use tuner::journal::{Event, Recorded};
use tuner::postgres::{
    Activation, ArgvRestarter, Database, PgDatabase, PgOptions, PostgresError, Restarter,
    SettingChange,
};

fn db(pg: &PgServer, restarter: Option<Arc<dyn Restarter>>) -> PgDatabase {
    let options = PgOptions {
        restart_timeout: Duration::from_secs(60),
        ..PgOptions::default()
    };
    PgDatabase::new(&pg.dsn(), restarter, options).expect("valid DSN")
}

fn script_restarter(pg: &PgServer) -> Arc<dyn Restarter> {
    Arc::new(ArgvRestarter {
        argv: vec![pg.restart_script().display().to_string()],
        timeout: Duration::from_secs(60),
        data_dir: pg.data_dir(),
    })
}

fn auto_conf(pg: &PgServer) -> Vec<u8> {
    std::fs::read(pg.auto_conf()).expect("read postgresql.auto.conf")
}

fn set(name: &str, value: &str) -> SettingChange {
    SettingChange::new(name, value)
}

#[tokio::test]
async fn reload_setting_is_applied_and_confirmed() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, None);

    let plan = db.plan(&set("max_wal_size", "2GB")).await.unwrap();
    assert_eq!(plan.activation, Activation::Reload);
    assert_eq!(plan.sql, r#"ALTER SYSTEM SET "max_wal_size" = '2GB'"#);
    assert!(
        !String::from_utf8_lossy(&auto_conf(&pg)).contains("max_wal_size"),
        "planning must not change anything"
    );

    let applied = db.apply(&set("max_wal_size", "2GB")).await.unwrap();
    assert_eq!(applied.activation, Activation::Reload);
    assert_eq!(applied.previous.setting, "1024");
    assert_eq!(applied.current.setting, "2048");
    assert_eq!(applied.current.unit.as_deref(), Some("MB"));
    assert_eq!(pg.psql("SHOW max_wal_size"), "2GB");
    assert!(String::from_utf8_lossy(&auto_conf(&pg)).contains("max_wal_size = '2GB'"));
}

#[tokio::test]
async fn current_value_carries_its_unit_and_non_defaults_are_listed() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, None);
    let current = db.current("shared_buffers").await.unwrap();
    assert_eq!(current.unit.as_deref(), Some("8kB"));
    assert_eq!(current.human_value(), "32MB");

    let non_default = db.non_default_settings().await.unwrap();
    assert!(non_default.iter().any(|s| s.name == "shared_buffers"));
    assert!(non_default.iter().all(|s| s.source != "default"));
}

#[tokio::test]
async fn postmaster_setting_restarts_through_argv_restarter() {
    let pg = PgServer::start(&[]);
    let before_pid = pg.postmaster_pid();
    let events = Arc::new(Recorded::default());
    let db = db(&pg, Some(script_restarter(&pg))).with_events(events.clone());

    let plan = db.plan(&set("wal_buffers", "16MB")).await.unwrap();
    assert_eq!(plan.activation, Activation::Restart);
    assert!(plan
        .restarter
        .as_deref()
        .unwrap_or("")
        .contains("restart.sh"));

    let applied = db.apply(&set("wal_buffers", "16MB")).await.unwrap();
    assert_eq!(applied.activation, Activation::Restart);
    assert_eq!(applied.current.setting, "2048");
    assert!(!applied.current.pending_restart);
    assert_eq!(pg.psql("SHOW wal_buffers"), "16MB");
    assert_ne!(pg.postmaster_pid(), before_pid, "the server was restarted");
    // The restart and the wait for the server to answer are one reported wait.
    let events = events.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        matches!(&events[0], Event::Waiting { what, total: None, .. }
            if what.starts_with("restarting PostgreSQL through command") && what.contains("restart.sh")),
        "{events:?}"
    );
    assert_eq!(events[1], Event::Finished);
}

#[tokio::test]
async fn restart_lever_without_restarter_is_refused() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, None);
    let before = auto_conf(&pg);
    let e = db.apply(&set("wal_buffers", "16MB")).await.unwrap_err();
    assert!(matches!(e, PostgresError::NoRestarter { .. }), "{e}");
    assert!(e.to_string().contains("no restarter is configured"), "{e}");
    assert_eq!(auto_conf(&pg), before);
}

#[tokio::test]
async fn restart_beyond_memory_limit_is_refused() {
    let pg = PgServer::start(&[]);
    let options = PgOptions {
        memory_limit_bytes: Some(256 << 20),
        ..PgOptions::default()
    };
    let db = PgDatabase::new(&pg.dsn(), Some(script_restarter(&pg)), options).unwrap();
    let before = auto_conf(&pg);
    let e = db.apply(&set("shared_buffers", "1GB")).await.unwrap_err();
    assert!(matches!(e, PostgresError::MemoryLimit { .. }), "{e}");
    assert_eq!(auto_conf(&pg), before);
}

/// Each bad input is refused with a message naming the parameter, the value
/// and what is allowed, and nothing is written.
#[tokio::test]
async fn bad_input_is_refused_and_auto_conf_is_untouched() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, Some(script_restarter(&pg)));
    // A non-empty auto.conf makes "byte-identical" mean something.
    db.apply(&set("checkpoint_timeout", "10min")).await.unwrap();
    pg.psql("CREATE TABLE x (id int)");

    let cases: &[(&str, &str, &[&str])] = &[
        (
            "no_such_setting",
            "1",
            &["no_such_setting", "unknown parameter"],
        ),
        (
            "max_wal_size",
            "1MB",
            &["max_wal_size", "below the minimum 2", "2MB..2147483647MB"],
        ),
        (
            "max_wal_size",
            "99999999GB",
            &["max_wal_size", "above the maximum 2147483647"],
        ),
        (
            "max_wal_size",
            "5 parsecs",
            &["max_wal_size", "5 parsecs", "B, kB, MB, GB, TB"],
        ),
        (
            "wal_compression",
            "zip",
            &["wal_compression: \"zip\" is not one of", "lz4"],
        ),
        (
            "max_wal_size",
            "'; DROP TABLE x; --",
            &["max_wal_size", "quote, backslash or semicolon"],
        ),
        (
            "wal_compression",
            "lz4; DROP TABLE x",
            &["wal_compression", "semicolon"],
        ),
        (
            "fsync",
            "off",
            &["fsync", "weakens durability", "allow_unsafe"],
        ),
        (
            "full_page_writes",
            "off",
            &["full_page_writes", "allow_unsafe"],
        ),
        (
            "synchronous_commit",
            "off",
            &["synchronous_commit", "allow_unsafe"],
        ),
        ("wal_level", "minimal", &["wal_level", "allow_unsafe"]),
        ("block_size", "16384", &["block_size", "internal"]),
        (
            "checkpoint_timeout",
            "15",
            &["checkpoint_timeout", "below the minimum 30"],
        ),
        ("jit", "maybe", &["jit", "not a boolean", "on, off"]),
        (
            "random_page_cost",
            "1.1MB",
            &["random_page_cost", "takes none"],
        ),
    ];
    for (name, value, fragments) in cases {
        let before = auto_conf(&pg);
        let planned = db.plan(&set(name, value)).await;
        let applied = db.apply(&set(name, value)).await;
        let e = applied.expect_err(&format!("{name} = {value:?} must be refused"));
        let msg = e.to_string();
        for f in *fragments {
            assert!(msg.contains(f), "{name} = {value:?}: {msg:?} lacks {f:?}");
        }
        assert!(planned.is_err(), "plan must refuse {name} = {value:?} too");
        assert!(!msg.contains(support::postgres::PASSWORD));
        assert_eq!(
            auto_conf(&pg),
            before,
            "{name} = {value:?} changed postgresql.auto.conf"
        );
    }
    assert_eq!(pg.psql("SELECT count(*) FROM x"), "0");
}

#[tokio::test]
async fn string_values_are_quoted_not_executed() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, None);
    pg.psql("CREATE TABLE x (id int)");
    let nasty = "'; DROP TABLE x; --";
    let applied = db.apply(&set("application_name", nasty)).await.unwrap();
    assert_eq!(applied.current.setting, nasty);
    assert_eq!(pg.psql("SELECT count(*) FROM x"), "0");
    assert!(String::from_utf8_lossy(&auto_conf(&pg))
        .contains("application_name = '''; DROP TABLE x; --'"));
}

#[tokio::test]
async fn unsafe_value_is_applied_only_when_allowed() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, None);
    let change = SettingChange {
        allow_unsafe: true,
        ..set("synchronous_commit", "off")
    };
    let plan = db.plan(&change).await.unwrap();
    assert!(plan.warnings.iter().any(|w| w.contains("UNSAFE")));
    let applied = db.apply(&change).await.unwrap();
    assert_eq!(applied.current.setting, "off");
}

#[tokio::test]
async fn reset_restores_the_default() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, None);
    db.apply(&set("checkpoint_timeout", "15min")).await.unwrap();
    assert_eq!(pg.psql("SHOW checkpoint_timeout"), "15min");

    let plan = db.plan_reset("checkpoint_timeout").await.unwrap();
    assert_eq!(plan.sql, r#"ALTER SYSTEM RESET "checkpoint_timeout""#);
    let reset = db.reset("checkpoint_timeout").await.unwrap();
    assert_eq!(reset.previous.setting, "900");
    assert_eq!(reset.current.setting, "300");
    assert_eq!(reset.current.source, "default");
    assert_eq!(pg.psql("SHOW checkpoint_timeout"), "5min");
    assert!(!String::from_utf8_lossy(&auto_conf(&pg)).contains("checkpoint_timeout"));
}

#[tokio::test]
async fn reset_of_a_restart_setting_restarts() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, Some(script_restarter(&pg)));
    db.apply(&set("wal_buffers", "16MB")).await.unwrap();
    let reset = db.reset("wal_buffers").await.unwrap();
    assert_eq!(reset.activation, Activation::Restart);
    assert_eq!(reset.current.source, "default");
    assert_eq!(
        pg.psql("SHOW wal_buffers"),
        "1MB",
        "auto: 1/32 of 32MB shared_buffers"
    );
}

/// wal_level=minimal with the default max_wal_senders=10 passes validation
/// but PostgreSQL refuses to start with it: the restart fails, the previous
/// postgresql.auto.conf comes back and the server starts again.
#[tokio::test]
async fn restart_that_never_comes_back_restores_auto_conf() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, Some(script_restarter(&pg)));
    db.apply(&set("checkpoint_timeout", "10min")).await.unwrap();
    let before = auto_conf(&pg);

    let change = SettingChange {
        allow_unsafe: true,
        ..set("wal_level", "minimal")
    };
    let e = db.apply(&change).await.unwrap_err();
    assert!(
        matches!(e, PostgresError::RestartFailed { restored: true, .. }),
        "{e}\nserver log:\n{}",
        pg.restart_log()
    );
    assert!(
        e.to_string()
            .contains("previous postgresql.auto.conf was restored"),
        "{e}"
    );
    assert_eq!(auto_conf(&pg), before);
    assert_eq!(pg.psql("SHOW wal_level"), "replica");
    assert_eq!(pg.psql("SHOW checkpoint_timeout"), "10min");
}

/// A restarter command that fails without doing anything: the file is put
/// back and the server, never stopped, is still answering.
#[tokio::test]
async fn failing_restarter_command_restores_auto_conf() {
    let pg = PgServer::start(&[]);
    let failing: Arc<dyn Restarter> = Arc::new(ArgvRestarter {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "echo cannot restart >&2; exit 1".into(),
        ],
        timeout: Duration::from_secs(10),
        data_dir: pg.data_dir(),
    });
    let db = db(&pg, Some(failing));
    let before = auto_conf(&pg);
    let e = db.apply(&set("wal_buffers", "16MB")).await.unwrap_err();
    assert!(
        matches!(e, PostgresError::RestartFailed { restored: true, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("cannot restart"), "{e}");
    assert_eq!(auto_conf(&pg), before);
    assert_eq!(pg.psql("SELECT 1"), "1");
}

#[tokio::test]
async fn dsn_password_never_appears_in_errors() {
    let port = support::free_port();
    let dsn = format!("postgresql://postgres:s3cret-pw@127.0.0.1:{port}/postgres");
    let db = PgDatabase::new(&dsn, None, PgOptions::default()).unwrap();
    let e = db.current("max_wal_size").await.unwrap_err();
    assert!(matches!(e, PostgresError::Connect { .. }), "{e}");
    assert!(!e.to_string().contains("s3cret-pw"), "{e}");
    assert!(!format!("{e:?}").contains("s3cret-pw"));
    assert!(!format!("{db:?}").contains("s3cret-pw"));
}

/// `superuser-backend` settings never change in an open session: the value
/// is confirmed from a new one.
#[tokio::test]
async fn backend_setting_is_confirmed_from_a_new_session() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, None);
    let plan = db.plan(&set("log_connections", "on")).await.unwrap();
    assert_eq!(plan.activation, Activation::Reload);
    assert!(plan
        .warnings
        .iter()
        .any(|w| w.contains("sessions started after")));
    let applied = db.apply(&set("log_connections", "on")).await.unwrap();
    assert_eq!(applied.current.setting, "on");
}

/// A value the server does not take up (here a per-database override wins)
/// is reported, and the file goes back to what it was.
#[tokio::test]
async fn unconfirmed_change_is_reverted() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, None);
    pg.psql("ALTER DATABASE postgres SET work_mem = '8MB'");
    let before = auto_conf(&pg);
    let e = db.apply(&set("work_mem", "16MB")).await.unwrap_err();
    assert!(
        matches!(e, PostgresError::NotConfirmed { reverted: true, .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("work_mem") && msg.contains("16384") && msg.contains("8192"),
        "{msg}"
    );
    assert!(
        msg.contains("database"),
        "names where the value comes from: {msg}"
    );
    assert_eq!(auto_conf(&pg), before);
}

/// The transaction counter the tuner pairs WAL windows by: it moves by the
/// transactions run in between (statistics are flushed at most a second
/// late, so the test waits for them), and never backwards.
#[tokio::test]
async fn transactions_count_what_ran_since_the_last_read() {
    let pg = PgServer::start(&[]);
    let db = db(&pg, None);
    db.checkpoint().await.unwrap();
    let before = db.transactions().await.unwrap();
    for i in 0..20 {
        pg.psql(&format!("SELECT {i}"));
    }
    let mut after = before;
    for _ in 0..50 {
        after = db.transactions().await.unwrap();
        if after >= before + 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(after >= before + 20, "{before} -> {after}");
    // Its own reads (one each) and autovacuum count too, but not hundreds.
    assert!(after <= before + 20 + 150, "{before} -> {after}");
}
