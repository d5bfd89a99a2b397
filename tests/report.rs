//! `tuner report` end to end: a real Prometheus (scraping itself every
//! second) gives the ranges, tuning.log and the journal are what a tune run
//! and a deploy write, and the report is rendered by headless Chromium,
//! which must draw every plot and log no error. A missing tuning.log is an
//! exit 2 naming the file.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start() -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("talert-report-prom-")
            .tempdir()
            .expect("temp dir");
        let port = support::free_port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"),
        )
        .expect("write prometheus.yml");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package)");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, prometheus: &str) -> PathBuf {
    let text = format!(
        "prometheus:\n  url: {prometheus}\n  timeout: 3s\npostgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\nprofile: test\npaths:\n  state_dir: state\n  tuning_log: tuning.log\nmetrics:\n  head_series:\n    query: max(prometheus_tsdb_head_series)\n    unit: ratio\n    window: 1m\n  goroutines:\n    query: max(go_goroutines)\n    unit: ratio\n    window: 1m\nprofiles:\n  test:\n    head_series: \"<= 100000\"\n    goroutines: \"<= 500\"\n"
    );
    let path = dir.join("tuner.yaml");
    std::fs::write(&path, text).expect("write tuner.yaml");
    path
}

fn ts(secs_ago: i64) -> String {
    (Utc::now() - chrono::Duration::seconds(secs_ago)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What a tune run with one rolled-back and one kept change, and a deploy,
/// leave behind, timed over the last 20 seconds.
fn write_run(dir: &Path) {
    let mut log = String::new();
    for (i, (id, phase)) in [
        ("measure-1", "measure"),
        ("c1", "before"),
        ("c1", "before"),
        ("c1", "observe"),
        ("c1", "observe"),
        ("c1", "observe"),
        ("c2", "observe"),
        ("c2", "observe"),
        ("c2", "observe"),
    ]
    .iter()
    .enumerate()
    {
        log.push_str(&format!(
            "{{\"timestamp\":\"{}\",\"change_id\":\"{id}\",\"phase\":\"{phase}\",\"head_series\":{},\"goroutines\":{},\"transactions_since_window_start\":{}}}\n",
            ts(20 - 2 * i as i64),
            400 + i * 10,
            30 + i,
            100 * (i + 1)
        ));
    }
    std::fs::write(dir.join("tuning.log"), log).unwrap();
    let lever = |name: &str| {
        format!("{{\"name\":\"{name}\",\"cost\":\"low\",\"symptoms\":[],\"values\":[],\"description\":null,\"target\":\"postgres\"}}")
    };
    let journal = [
        format!("{{\"module\":\"tune\",\"event\":\"intent\",\"change_id\":\"c1\",\"action\":\"apply\",\"lever\":{},\"mv\":{{\"from\":\"1GB\",\"to\":\"4GB\"}},\"at\":\"{}\"}}", lever("max_wal_size"), ts(15)),
        format!("{{\"module\":\"tune\",\"event\":\"decision\",\"change_id\":\"c1\",\"verdict\":\"regressed\",\"kept\":false,\"reason\":\"p95 latency up 30% <beyond noise>\",\"at\":\"{}\"}}", ts(10)),
        format!("{{\"module\":\"tune\",\"event\":\"outcome\",\"change_id\":\"c1\",\"action\":\"revert\",\"ok\":true,\"at\":\"{}\"}}", ts(9)),
        format!("{{\"module\":\"tune\",\"event\":\"intent\",\"change_id\":\"c2\",\"action\":\"apply\",\"lever\":{},\"mv\":{{\"from\":\"0.5\",\"to\":\"0.9\"}},\"at\":\"{}\"}}", lever("checkpoint_completion_target"), ts(8)),
        format!("{{\"module\":\"tune\",\"event\":\"decision\",\"change_id\":\"c2\",\"verdict\":\"improved\",\"kept\":true,\"reason\":\"WAL per transaction down 20%\",\"at\":\"{}\"}}", ts(3)),
        format!("{{\"module\":\"deploy\",\"target\":{{\"service\":\"web\"}},\"event\":\"started\",\"record\":{{\"id\":\"d1\",\"kind\":\"deploy\",\"service\":\"web\",\"old\":{{\"cpus\":1.0,\"memory\":134217728}},\"new\":{{\"cpus\":0.5,\"memory\":100663296}},\"started_at\":\"{}\"}}}}", ts(6)),
        format!("{{\"module\":\"deploy\",\"target\":{{\"service\":\"web\"}},\"event\":\"finished\",\"id\":\"d1\",\"outcome\":\"succeeded\",\"phase\":null,\"reason\":null,\"at\":\"{}\"}}", ts(4)),
    ];
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("state/journal.jsonl"), journal.join("\n") + "\n").unwrap();
}

fn tuner(config: &Path, args: &[&str]) -> Output {
    Command::new(support::tuner_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run tuner")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_report_renders_in_headless_chromium_with_every_plot() {
    let prometheus = Prometheus::start();
    let dir = tempfile::Builder::new()
        .prefix("talert-report-")
        .tempdir()
        .unwrap();
    let config = write_config(dir.path(), &prometheus.url);
    // A few scrapes, so the ranges have points.
    let scraped = support::wait_until(Duration::from_secs(30), || {
        Command::new("curl")
            .args([
                "-sg",
                &format!(
                    "{}/api/v1/query?query=count_over_time(up[1m])",
                    prometheus.url
                ),
            ])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).contains("\"value\":[")
                    && String::from_utf8_lossy(&o.stdout).contains("\"4\"")
            })
            .unwrap_or(false)
    });
    assert!(scraped, "Prometheus never scraped itself 4 times");
    write_run(dir.path());

    let out = tuner(&config, &["report"]);
    assert!(out.status.success(), "{}", show(&out));
    let file = dir.path().join("tuning-report.html");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tuning-report.html"),
        "{}",
        show(&out)
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no remote resources"
    );
    assert_eq!(
        html.matches("<svg class=\"plot\"").count(),
        3,
        "head_series, goroutines, throughput"
    );
    assert_eq!(html.matches("class=\"objective\"").count(), 2);
    assert_eq!(
        html.matches("class=\"marker\" data-verdict=\"regressed\"")
            .count(),
        3
    );
    assert_eq!(
        html.matches("class=\"marker\" data-verdict=\"improved\"")
            .count(),
        3
    );
    assert!(html.contains("&lt;beyond noise&gt;"), "reasons are escaped");
    assert!(
        html.contains("<polyline class=\"series\""),
        "Prometheus ranges plotted: {}",
        show(&out)
    );
    assert!(
        html.contains("class=\"window\""),
        "observation windows shaded"
    );
    assert!(html.contains("max_wal_size") && html.contains("rolled back"));
    assert!(html.contains("<td>d1</td><td>web</td>") && html.contains("succeeded"));

    let profile = tempfile::Builder::new()
        .prefix("talert-chromium-")
        .tempdir()
        .unwrap();
    let browser = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium (Debian package; scripts/setup.sh installs it)");
    let dom = String::from_utf8_lossy(&browser.stdout);
    let log = String::from_utf8_lossy(&browser.stderr);
    assert!(browser.status.success(), "chromium failed:\n{log}");
    assert!(
        dom.contains("data-plots=\"3\""),
        "the browser did not draw 3 plots:\n{dom}\n{log}"
    );
    for bad in ["Uncaught", "Content Security Policy", "ERR_", "CONSOLE"] {
        assert!(!log.contains(bad), "browser console: {bad}\n{log}");
    }
}

#[test]
fn a_missing_tuning_log_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9");
    let out = tuner(&config, &["report"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} not found",
            dir.path().join("tuning.log").display()
        )),
        "{err}"
    );
    assert!(!dir.path().join("tuning-report.html").exists());
}
