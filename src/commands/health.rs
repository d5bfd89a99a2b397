//! `tuner status --health`: one line per dependency, ✓ or ✗ with the reason,
//! in the spirit of `vector validate`.

use std::time::Duration;

use serde::Serialize;

use super::context;
use crate::cli::{Cli, OutputFormat};
use crate::config::{redact_dsn, Config};
use crate::exit;
use crate::runtime::docker::{self, DockerRuntime};
use crate::runtime::{DockerError, Runtime};

#[derive(Debug, Serialize)]
pub struct Check {
    pub component: String,
    pub endpoint: String,
    pub ok: bool,
    pub detail: String,
}

pub async fn run(cli: &Cli) -> anyhow::Result<u8> {
    let config = context::load_config(cli)?;
    let checks = check_all(&config).await;
    match cli.output {
        OutputFormat::Json => crate::output::print_json(&checks)?,
        OutputFormat::Table => {
            let lines: Vec<String> = checks
                .iter()
                .map(|c| {
                    let mark = crate::output::term::mark(c.ok);
                    format!("{mark} {:<28} {:<45} {}", c.component, c.endpoint, c.detail)
                })
                .collect();
            crate::output::emit(&lines.join("\n"))?;
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        eprintln!("{failed} of {} checks failed", checks.len());
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

pub async fn check_all(config: &Config) -> Vec<Check> {
    let (mut prometheus, postgres, docker) = tokio::join!(
        check_prometheus(config),
        check_postgres(config),
        check_docker(config)
    );
    prometheus.push(postgres);
    prometheus.push(docker);
    prometheus
}

async fn check_prometheus(config: &Config) -> Vec<Check> {
    let url = config.prometheus.url.clone();
    let client = match context::prometheus(config) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check {
                component: "prometheus".into(),
                endpoint: url,
                ok: false,
                detail: format!("{e:#}"),
            }]
        }
    };
    if let Err(e) = client.ready().await {
        return vec![Check {
            component: "prometheus".into(),
            endpoint: url,
            ok: false,
            detail: e.to_string(),
        }];
    }
    let mut checks = vec![Check {
        component: "prometheus".into(),
        endpoint: url.clone(),
        ok: true,
        detail: "ready".into(),
    }];
    let targets = client.targets().await;
    let exporter_scraped = targets.as_ref().is_ok_and(|ts| {
        ts.iter()
            .any(|t| t.health == "up" && t.job().contains("postgres"))
    });
    match targets {
        Ok(targets) if targets.is_empty() => checks.push(Check {
            component: "scrape targets".into(),
            endpoint: url,
            ok: false,
            detail: "Prometheus has no active scrape targets".into(),
        }),
        Ok(targets) => {
            for t in targets {
                let up = t.health == "up";
                let detail = if up {
                    "up".to_string()
                } else if t.last_error.is_empty() {
                    format!("{} (no scrape yet)", t.health)
                } else {
                    format!("{}: {}", t.health, t.last_error)
                };
                checks.push(Check {
                    component: format!("target {}", t.job()),
                    endpoint: t.scrape_url.clone(),
                    ok: up,
                    detail,
                });
            }
        }
        Err(e) => checks.push(Check {
            component: "scrape targets".into(),
            endpoint: url,
            ok: false,
            detail: e.to_string(),
        }),
    }
    checks.extend(through_exporters(&client, exporter_scraped).await);
    checks
}

/// What the exporters say about the database: a scrape target can be up
/// while the exporter, or the app it watches, cannot log in (a new
/// password, a dropped role), and then Prometheus has no WAL or latency
/// data although every container looks healthy. `pg_up` is
/// postgres_exporter's own verdict; `loadgen_connected_workers` is the
/// demo app's (examples/loadgen.rs), checked where Prometheus has it.
async fn through_exporters(
    client: &crate::metrics::PrometheusClient,
    exporter_scraped: bool,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let instance = |labels: &std::collections::BTreeMap<String, String>| {
        labels
            .get("instance")
            .or_else(|| labels.get("job"))
            .cloned()
            .unwrap_or_default()
    };
    match client.vector("pg_up", "pg_up").await {
        Ok(series) if series.is_empty() && exporter_scraped => checks.push(Check {
            component: "postgres via exporter".into(),
            endpoint: "pg_up".into(),
            ok: false,
            // postgres_exporter 0.11 drops pg_up while it cannot log in.
            detail: "a postgres exporter is scraped but reports no pg_up: it cannot connect or log in to PostgreSQL; check its connection string and password".into(),
        }),
        Ok(series) => {
            for (labels, value) in series {
                let ok = value >= 1.0;
                checks.push(Check {
                    component: "postgres via exporter".into(),
                    endpoint: instance(&labels),
                    ok,
                    detail: if ok {
                        "pg_up 1: the exporter reaches PostgreSQL and logs in".into()
                    } else {
                        "pg_up 0: the exporter cannot connect or log in to PostgreSQL; check its connection string and password (Prometheus gets no database metrics)".into()
                    },
                });
            }
        }
        Err(e) => checks.push(Check {
            component: "postgres via exporter".into(),
            endpoint: "pg_up".into(),
            ok: false,
            detail: e.to_string(),
        }),
    }
    let workers = "loadgen_connected_workers";
    if let Ok(series) = client.vector(workers, workers).await {
        for (labels, value) in series {
            let ok = value > 0.0;
            checks.push(Check {
                component: "app workers".into(),
                endpoint: instance(&labels),
                ok,
                detail: if ok {
                    format!("{value} connected to PostgreSQL")
                } else {
                    "none connected to PostgreSQL: the app cannot log in (check its DSN and password)".into()
                },
            });
        }
    }
    checks
}

async fn check_postgres(config: &Config) -> Check {
    let endpoint = redact_dsn(&config.postgres.dsn);
    let result = tokio::time::timeout(config.postgres.connect_timeout, async {
        let (client, connection) =
            tokio_postgres::connect(&config.postgres.dsn, tokio_postgres::NoTls).await?;
        let conn = tokio::spawn(connection);
        let row = client
            .query_one("SELECT current_setting('server_version')", &[])
            .await?;
        drop(client);
        let _ = conn.await;
        Ok::<String, tokio_postgres::Error>(row.get(0))
    })
    .await;
    let (ok, detail) = match result {
        Ok(Ok(version)) => (true, format!("PostgreSQL {version}")),
        Ok(Err(e)) => (false, postgres_reason(&e)),
        Err(_) => (
            false,
            format!("no answer within {:?}", config.postgres.connect_timeout),
        ),
    };
    Check {
        component: "postgres".into(),
        endpoint,
        ok,
        detail,
    }
}

/// tokio-postgres' Display is terse ("db error"); the source has the server's words.
fn postgres_reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

async fn check_docker(config: &Config) -> Check {
    let configured = config.docker.host.as_deref();
    let endpoint = docker::resolve_host(configured);
    // One budget for connecting and asking: a health line must not hang on
    // an engine that accepts connections and never answers.
    let result = tokio::time::timeout(Duration::from_secs(5), async {
        let runtime = DockerRuntime::connect(configured)
            .await
            .map_err(|e| match e {
                DockerError::Connect { reason, .. } => reason,
                other => other.to_string(),
            })?;
        let engine = runtime.engine().await.map_err(|e| e.to_string())?;
        Ok::<String, String>(format!(
            "engine {} (API {})",
            engine.version, engine.api_version
        ))
    })
    .await
    .unwrap_or_else(|_| Err("no answer within 5s".to_string()));
    match result {
        Ok(detail) => Check {
            component: "docker".into(),
            endpoint,
            ok: true,
            detail,
        },
        Err(reason) => Check {
            component: "docker".into(),
            endpoint: endpoint.clone(),
            ok: false,
            detail: format!("Docker engine not reachable at {endpoint}: {reason}"),
        },
    }
}
