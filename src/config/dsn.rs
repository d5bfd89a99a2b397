//! The PostgreSQL DSN holds the password, so it is never printed: messages
//! and `Debug` show `user@host:port/db`, built from the DSN as the client
//! library parses it. Working from the parsed DSN rather than the text
//! covers every way of writing the password (URL userinfo, `?password=`,
//! `password = 'a b'`, escaped quotes, percent-encoding) with no pattern to
//! forget.

use tokio_postgres::config::Host;
use tokio_postgres::Config;

/// What a DSN that does not parse is shown as: any part of it could be the
/// password.
pub const UNPARSED: &str = "(a PostgreSQL DSN that does not parse)";

/// `dsn` without its password, for output and logs.
pub fn redact_dsn(dsn: &str) -> String {
    match dsn.parse::<Config>() {
        Ok(config) => describe(&config),
        Err(_) => UNPARSED.to_string(),
    }
}

/// `user@host:port/db` (every host, comma-separated) from a parsed DSN; the
/// parts the DSN leaves to libpq's defaults are left out.
pub fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(h) if h.contains(':') => format!("[{h}]:{port}"),
                Host::Tcp(h) => format!("{h}:{port}"),
                Host::Unix(p) => format!("{}:{port}", p.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        format!("localhost:{}", ports.first().copied().unwrap_or(5432))
    } else {
        hosts.join(",")
    };
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config
        .get_dbname()
        .map(|d| format!("/{d}"))
        .unwrap_or_default();
    format!("{user}{hosts}{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redacts `dsn` and checks that no spelling of the password survives.
    fn redacted(dsn: &str, secrets: &[&str]) -> String {
        let shown = redact_dsn(dsn);
        for s in secrets {
            assert!(!shown.contains(s), "{s:?} survives in {shown:?}");
        }
        let config = crate::config::PostgresConfig {
            dsn: dsn.to_string(),
            connect_timeout: std::time::Duration::from_secs(1),
        };
        let debug = format!("{config:?}");
        for s in secrets {
            assert!(!debug.contains(s), "{s:?} survives in {debug:?}");
        }
        shown
    }

    #[test]
    fn url_userinfo() {
        assert_eq!(
            redacted(
                "postgresql://app:hunter2@db.example:6543/orders",
                &["hunter2"]
            ),
            "app@db.example:6543/orders"
        );
        assert_eq!(
            redacted(
                "postgres://app:hun%40ter2@h/db",
                &["hun%40ter2", "hun@ter2", "ter2"]
            ),
            "app@h:5432/db"
        );
        assert_eq!(redacted("postgresql://app@h/db", &[]), "app@h:5432/db");
    }

    #[test]
    fn url_query_parameter() {
        assert_eq!(
            redacted(
                "postgresql://app@h:5433/db?password=hunter2&connect_timeout=5",
                &["hunter2"]
            ),
            "app@h:5433/db"
        );
    }

    #[test]
    fn key_value_forms() {
        assert_eq!(
            redacted(
                "host=x user=postgres password=hunter2 dbname=app",
                &["hunter2"]
            ),
            "postgres@x:5432/app"
        );
        assert_eq!(
            redacted("host=x user=u password = hunter2 port=6000", &["hunter2"]),
            "u@x:6000"
        );
        assert_eq!(
            redacted(
                "host=x user=u password='correct horse' dbname=d",
                &["correct", "horse"]
            ),
            "u@x:5432/d"
        );
        assert_eq!(
            redacted(
                r"host=x user=u password='it\'s \\secret' dbname=d",
                &["it", "secret"]
            ),
            "u@x:5432/d"
        );
    }

    #[test]
    fn several_hosts_and_sockets() {
        assert_eq!(
            redacted("host=a,b port=1,2 user=u password=hunter2", &["hunter2"]),
            "u@a:1,b:2"
        );
        assert_eq!(
            redacted("host=/run/postgresql password=hunter2", &["hunter2"]),
            "/run/postgresql:5432"
        );
    }

    #[test]
    fn a_dsn_that_does_not_parse_shows_nothing_of_itself() {
        for dsn in [
            "host=x password='unterminated hunter2",
            "postgresql://u:hunter2@h:notaport/db",
            "host=x pasword=hunter2",
        ] {
            assert_eq!(redacted(dsn, &["hunter2"]), UNPARSED, "{dsn}");
        }
    }
}
