//! The Prometheus client against a real Prometheus scraping a real
//! postgres-exporter in front of a real PostgreSQL.

mod support;

use std::time::Duration;

use chrono::Utc;
use support::prometheus::Monitoring;
use tuner::metrics::{Metrics, MetricsError, PrometheusClient};

fn client(url: &str) -> PrometheusClient {
    PrometheusClient::new(url, Duration::from_secs(3)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_targets_and_no_data_against_a_real_chain() {
    let mon = Monitoring::start();
    let prom = client(&mon.prometheus_url);

    // A real value through the whole chain.
    assert_eq!(
        prom.instant("pg_up", "max(pg_up)").await.unwrap(),
        Some(1.0)
    );

    // WAL moves when we write, and rate() over the counter sees it.
    mon.write_load(20_000);
    let mut rate = None;
    for _ in 0..40 {
        rate = prom
            .instant("wal_rate", "sum(rate(pg_wal_lsn_bytes[5s]))")
            .await
            .unwrap();
        if rate.unwrap_or(0.0) > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(rate.unwrap_or(0.0) > 0.0, "WAL rate never rose: {rate:?}");

    // Empty result, NaN and Inf are no data, never 0.
    assert_eq!(
        prom.instant("missing", "no_such_metric_anywhere")
            .await
            .unwrap(),
        None
    );
    assert_eq!(prom.instant("nan", "vector(0) / 0").await.unwrap(), None);
    assert_eq!(prom.instant("inf", "vector(1) / 0").await.unwrap(), None);

    // Range queries return points over the window.
    let end = Utc::now();
    let points = prom
        .range(
            "pg_up",
            "max(pg_up)",
            end - chrono::Duration::seconds(10),
            end,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(points.len() >= 2, "{points:?}");
    assert!(points.iter().all(|p| p.value == 1.0));

    // Several series are a configuration error naming the query and the
    // count, never reduced to one (the max would flatter a higher-is-better
    // metric), for instant and range queries alike.
    let two = r#"label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")"#;
    let err = prom.instant("xact_rate", two).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, MetricsError::SeveralSeries { count: 2, .. })
            && msg.contains("xact_rate")
            && msg.contains("2 series")
            && msg.contains(r#"a="x""#),
        "{msg}"
    );
    let err = prom
        .range(
            "xact_rate",
            two,
            end - chrono::Duration::seconds(10),
            end,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetricsError::SeveralSeries { count: 2, .. }),
        "{err:?}"
    );

    // Syntax errors carry Prometheus' message and the metric's name.
    let err = prom
        .instant("p95_write_latency", "rate(foo[5m]")
        .await
        .unwrap_err();
    assert!(matches!(err, MetricsError::Query { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("p95_write_latency") && msg.contains("bad_data"),
        "{msg}"
    );

    // Targets report the exporter's health.
    let targets = prom.targets().await.unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].health, "up");
    assert_eq!(targets[0].job(), "postgres-exporter");
}

#[tokio::test]
async fn unreachable_prometheus_is_an_error_naming_the_url() {
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let err = client(&url).instant("wal_rate", "up").await.unwrap_err();
    assert!(matches!(err, MetricsError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn silent_server_times_out_within_the_configured_timeout() {
    // A listener that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let prom = PrometheusClient::new(&url, Duration::from_millis(500)).unwrap();
    let started = std::time::Instant::now();
    let err = prom.instant("io_wait", "up").await.unwrap_err();
    assert!(matches!(err, MetricsError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_samples_history_and_firing_tuning_triggers() {
    use tuner::tune::ports::Observer;
    use tuner::tune::prometheus::MetricsObserver;

    let mon = Monitoring::start();
    mon.set_rules(
        "groups:\n  - name: t\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n        labels: {tuning_trigger: \"true\"}\n      - alert: NotATrigger\n        expr: vector(1)\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = support::config::write(
        dir.path(),
        &mon.prometheus_url,
        &mon.pg.dsn(),
        support::config::TEST_METRICS,
        "    pg_up: \">= 1\"",
    );
    let config = tuner::config::load(Some(&path)).unwrap();
    let prom = client(&mon.prometheus_url);
    let observer = MetricsObserver::new(&prom, &config);

    let sample = observer.sample().await.unwrap();
    assert_eq!(sample.get("pg_up"), Some(1.0));
    assert_eq!(
        sample.values.get("cpu_temp"),
        Some(&None),
        "no sensor must be no data, not 0"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let history = observer
        .history(Duration::from_secs(10), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(history.len() >= 2, "{history:?}");
    assert!(history.windows(2).all(|w| w[0].at < w[1].at));

    let mut firing = Vec::new();
    for _ in 0..20 {
        firing = observer.firing_triggers().await.unwrap();
        if !firing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(firing, vec!["AlwaysFiring".to_string()]);

    // Prometheus gone: sampling fails (the cycle then fails closed).
    let mut mon = mon;
    mon.stop_prometheus();
    assert!(observer.sample().await.is_err());
}
