//! `tuner check` as a CI gate: result files that pass and files that fail,
//! from the real tools where they install here (pgbench, Locust) and after
//! the formats' documentation where they do not (k6), with exit codes and a
//! JUnit file validated against the junit-10 schema CI systems read; the
//! bad inputs; and `--live` reading what `status` reads.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check");

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn tuner(args: &[&str]) -> Output {
    Command::new(support::tuner_bin())
        .args(args)
        .env_remove("TUNER_BUDGET")
        .env_remove("TUNER_CONFIG")
        .output()
        .expect("run tuner")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn check(args: &[&str], junit: &Path) -> (Option<i32>, String, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let junit_arg = junit.to_string_lossy().into_owned();
    all.extend_from_slice(&["--junit", &junit_arg]);
    let out = tuner(&all);
    let xml = std::fs::read_to_string(junit).unwrap_or_default();
    (out.status.code(), text(&out), xml)
}

/// The JUnit file holds to the junit-10 schema (xmllint from libxml2-utils,
/// installed by scripts/setup.sh).
fn assert_valid_junit(path: &Path) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(fixture("junit-10.xsd"))
        .arg(path)
        .output()
        .expect("run xmllint (scripts/setup.sh installs libxml2-utils)");
    assert!(
        out.status.success(),
        "{} does not validate: {}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write test file");
    path
}

#[test]
fn k6_summaries_that_pass_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let budget = fixture("k6_budget.yaml");
    let junit = dir.path().join("pass.xml");
    let (code, out, xml) = check(
        &[
            fixture("k6_summary_pass.json").to_str().unwrap(),
            "--budget",
            budget.to_str().unwrap(),
        ],
        &junit,
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("PASS: 5 PASS, 0 WARN, 0 FAIL"), "{out}");
    assert!(out.contains("74.8ms (n=2400)"), "{out}");
    assert_valid_junit(&junit);
    assert!(!xml.contains("<failure"), "{xml}");

    let junit = dir.path().join("fail.xml");
    let (code, out, xml) = check(
        &[
            fixture("k6_summary_fail.json").to_str().unwrap(),
            "--budget",
            budget.to_str().unwrap(),
        ],
        &junit,
    );
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("FAIL p95_latency: past critical (> 1s)"),
        "{out}"
    );
    // k6's `true` is a failed threshold.
    assert!(
        out.contains("FAIL k6 threshold http_req_failed: rate<0.01: k6 marked it failed"),
        "{out}"
    );
    assert!(
        out.contains("WARN error_rate: past warning (> 1%)"),
        "{out}"
    );
    assert_valid_junit(&junit);
    assert!(xml.contains("failures=\"3\""), "{xml}");
}

/// A k6 `--out json` stream in the documented shape: Metric lines, then a
/// Point per sample; request `i` takes `base + i % 100` ms, every
/// `fail_every`-th fails.
fn k6_stream(requests: usize, base: f64, fail_every: usize) -> String {
    let mut out = String::new();
    for (name, kind) in [
        ("http_reqs", "counter"),
        ("http_req_duration", "trend"),
        ("http_req_failed", "rate"),
        ("vus", "gauge"),
    ] {
        out.push_str(&format!(
            "{{\"type\":\"Metric\",\"data\":{{\"name\":\"{name}\",\"type\":\"{kind}\",\"contains\":\"default\",\"thresholds\":[],\"submetrics\":null}},\"metric\":\"{name}\"}}\n"
        ));
    }
    for i in 0..requests {
        let time = format!(
            "2024-03-01T12:{:02}:{:02}.{:03}Z",
            i / 6000,
            i / 100 % 60,
            i % 100 * 10
        );
        let failed = i % fail_every == 0;
        let tags = format!(
            "{{\"expected_response\":\"{}\",\"method\":\"GET\",\"name\":\"http://127.0.0.1/api\",\"status\":\"{}\"}}",
            !failed,
            if failed { 500 } else { 200 }
        );
        for (metric, value) in [
            ("http_reqs", 1.0),
            ("http_req_duration", base + (i % 100) as f64),
            ("http_req_failed", if failed { 1.0 } else { 0.0 }),
            ("vus", 10.0),
        ] {
            out.push_str(&format!(
                "{{\"type\":\"Point\",\"data\":{{\"time\":\"{time}\",\"value\":{value},\"tags\":{tags}}},\"metric\":\"{metric}\"}}\n"
            ));
        }
    }
    out
}

#[test]
fn k6_streams_plain_and_gzipped_pass_and_fail_and_compare_with_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let budget = fixture("k6_budget.yaml");
    let budget = budget.to_str().unwrap();
    // 3000 requests over 30 s: 100/s, 0.5% failed, 10..109 ms.
    let good = write(dir.path(), "good.json", &k6_stream(3000, 10.0, 200));
    let baseline = dir.path().join("baseline.yaml");
    let junit = dir.path().join("good.xml");
    let (code, out, _) = check(
        &[
            good.to_str().unwrap(),
            "--budget",
            budget,
            "--save-baseline",
            baseline.to_str().unwrap(),
        ],
        &junit,
    );
    assert_eq!(code, Some(0), "{out}");
    // p95 of 30 copies of 10..=109: rank 0.95 * 2999 = 2849.05, 104.05 ms.
    assert!(out.contains("104ms (n=3000)"), "{out}");
    assert_valid_junit(&junit);
    assert!(std::fs::read_to_string(&baseline)
        .unwrap()
        .contains("p95_latency:"));

    // Gzipped, 600 ms slower and 10% failed: FAIL, and worse than the baseline.
    let slow = k6_stream(3000, 610.0, 10);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(slow.as_bytes()).unwrap();
    let slow_gz = dir.path().join("slow.json.gz");
    std::fs::write(&slow_gz, gz.finish().unwrap()).unwrap();
    let junit = dir.path().join("slow.xml");
    let (code, out, xml) = check(
        &[
            slow_gz.to_str().unwrap(),
            "--budget",
            budget,
            "--baseline",
            baseline.to_str().unwrap(),
        ],
        &junit,
    );
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("WARN p95_latency: past warning (> 500ms)"),
        "{out}"
    );
    assert!(
        out.contains("FAIL error_rate: past critical (> 5%)"),
        "{out}"
    );
    assert!(
        out.contains("FAIL p95_latency vs baseline: ") && out.contains("more than the 10% allowed"),
        "{out}"
    );
    assert_valid_junit(&junit);
    assert!(xml.contains("classname=\"tuner.check.baseline\""), "{xml}");

    // Zero samples never pass: a tag no request carries.
    let none = write(
        dir.path(),
        "none.yaml",
        "objectives:\n  admin:\n    metric: latency\n    stat: p99\n    tags: {name: \"http://127.0.0.1/admin\"}\n    critical: \"> 1s\"\n",
    );
    let junit = dir.path().join("none.xml");
    let (code, out, _) = check(
        &[good.to_str().unwrap(), "--budget", none.to_str().unwrap()],
        &junit,
    );
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(
            "nothing to judge: no samples of http_req_duration{name:http://127.0.0.1/admin}"
        ),
        "{out}"
    );
    assert_valid_junit(&junit);

    // JSON for machines: the same rows as data.
    let out = tuner(&[
        "--output",
        "json",
        "check",
        good.to_str().unwrap(),
        "--budget",
        budget,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "PASS");
    assert_eq!(json["results"][0]["name"], "p95_latency");
    // 104 + 0.05 * (105 - 104), exact: the file is under the sketch's buffer.
    let p95 = json["results"][0]["value"].as_f64().unwrap();
    assert!((p95 - 104.05).abs() < 1e-9, "{p95}");
}

/// A loopback HTTP server for Locust: `/` answers 200, anything else 404.
/// Each connection serves one request; the thread ends with the test.
fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let ok = got.starts_with(b"GET / ");
                let (status, body) = if ok {
                    ("200 OK", "ok")
                } else {
                    ("404 Not Found", "no")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                // Close gracefully: no reset for a client still sending.
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

#[test]
fn a_real_locust_run_passes_on_one_endpoint_and_fails_on_the_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let port = http_server();
    let locustfile = write(
        dir.path(),
        "locustfile.py",
        "from locust import HttpUser, task, constant\n\nclass Visitor(HttpUser):\n    wait_time = constant(0.02)\n\n    @task(3)\n    def home(self):\n        self.client.get(\"/\")\n\n    @task(1)\n    def missing(self):\n        self.client.get(\"/missing\")\n",
    );
    let prefix = dir.path().join("run");
    // Bounded: 4 users for 3 s against loopback, killed after 60 s at most.
    let mut child = Command::new("python3")
        .args(["-m", "locust", "-f"])
        .arg(&locustfile)
        .args([
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3s",
            "--only-summary",
        ])
        .args([
            "--loglevel",
            "WARNING",
            "--host",
            &format!("http://127.0.0.1:{port}"),
        ])
        .arg("--csv")
        .arg(&prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run locust (scripts/setup.sh installs it from PyPI)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("locust did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = dir.path().join("run_stats.csv");
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(stats.exists(), "locust wrote no {}: {err}", stats.display());

    let budget = write(
        dir.path(),
        "home.yaml",
        "objectives:\n  home_p95:\n    metric: latency\n    stat: p95\n    endpoint: /\n    critical: \"> 5s\"\n  home_errors:\n    metric: error_rate\n    endpoint: /\n    critical: \"> 5%\"\n  rps:\n    metric: throughput\n    critical: \"< 1/s\"\n",
    );
    let junit = dir.path().join("home.xml");
    let (code, out, _) = check(
        &[
            stats.to_str().unwrap(),
            "--budget",
            budget.to_str().unwrap(),
        ],
        &junit,
    );
    let csv = std::fs::read_to_string(&stats).unwrap_or_default();
    assert_eq!(code, Some(0), "{out}\n{csv}");
    assert!(out.contains("Locust _stats.csv"), "{out}");
    assert_valid_junit(&junit);

    let budget = write(
        dir.path(),
        "all.yaml",
        "objectives:\n  errors:\n    metric: error_rate\n    warning: \"> 1%\"\n    critical: \"> 5%\"\n",
    );
    let junit = dir.path().join("all.xml");
    let (code, out, xml) = check(
        &[
            stats.to_str().unwrap(),
            "--budget",
            budget.to_str().unwrap(),
        ],
        &junit,
    );
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(
            "FAIL errors: past critical (> 5%) (Aggregated Failure Count / Request Count)"
        ),
        "{out}"
    );
    assert_valid_junit(&junit);
    assert!(xml.contains("<failure"), "{xml}");
}

#[test]
fn a_real_pgbench_summary_and_log_pass_and_fail() {
    const BIN: &str = "/usr/lib/postgresql/15/bin";
    let pg = support::postgres::PgServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pgbench = |args: &[&str]| {
        Command::new(format!("{BIN}/pgbench"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(args)
            .arg("postgres")
            .env("PGPASSWORD", support::postgres::PASSWORD)
            .current_dir(dir.path())
            .output()
            .expect("run pgbench")
    };
    let init = pgbench(&["-i", "-s", "1", "-q"]);
    assert!(init.status.success(), "{}", text(&init));
    // Bounded: 2 clients for 3 s, on loopback.
    let run = pgbench(&[
        "-T",
        "3",
        "-c",
        "2",
        "-j",
        "2",
        "--log",
        "--log-prefix",
        "pgbench_log",
    ]);
    assert!(run.status.success(), "{}", text(&run));
    let summary = dir.path().join("pgbench.txt");
    std::fs::write(&summary, &run.stdout).unwrap();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("pgbench_log."))
        })
        .collect();
    logs.sort();
    assert_eq!(logs.len(), 2, "one log per thread: {logs:?}");

    let pass = write(
        dir.path(),
        "pass.yaml",
        "objectives:\n  latency:\n    metric: latency\n    stat: avg\n    critical: \"> 2s\"\n  tps:\n    metric: throughput\n    target: \"> 5/s\"\n  failed:\n    metric: error_rate\n    critical: \"> 1%\"\n",
    );
    let junit = dir.path().join("summary.xml");
    let (code, out, _) = check(
        &[
            summary.to_str().unwrap(),
            "--budget",
            pass.to_str().unwrap(),
        ],
        &junit,
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("pgbench summary"), "{out}");
    assert_valid_junit(&junit);

    let mut args: Vec<&str> = logs.iter().map(|p| p.to_str().unwrap()).collect();
    let pass_log = write(
        dir.path(),
        "pass_log.yaml",
        "objectives:\n  p99:\n    metric: latency\n    stat: p99\n    critical: \"> 5s\"\n  tps:\n    metric: throughput\n    target: \"> 5/s\"\n  failed:\n    metric: error_rate\n    critical: \"> 1%\"\n",
    );
    args.extend(["--budget", pass_log.to_str().unwrap()]);
    let junit = dir.path().join("log.xml");
    let (code, out, _) = check(&args, &junit);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("pgbench --log"), "{out}");
    assert_valid_junit(&junit);

    // The same runs against budgets they cannot meet.
    let fail = write(
        dir.path(),
        "fail.yaml",
        "objectives:\n  tps:\n    metric: throughput\n    target: \"> 1000000/s\"\n",
    );
    let junit = dir.path().join("fail.xml");
    let (code, out, xml) = check(
        &[
            summary.to_str().unwrap(),
            "--budget",
            fail.to_str().unwrap(),
        ],
        &junit,
    );
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("FAIL tps: misses target (> 1000000/s)"),
        "{out}"
    );
    assert_valid_junit(&junit);
    assert!(xml.contains("<failure"), "{xml}");

    let fail_log = write(
        dir.path(),
        "fail_log.yaml",
        "objectives:\n  p50:\n    metric: latency\n    stat: p50\n    critical: \"> 1us\"\n",
    );
    let mut args: Vec<&str> = logs.iter().map(|p| p.to_str().unwrap()).collect();
    args.extend(["--budget", fail_log.to_str().unwrap()]);
    let junit = dir.path().join("fail_log.xml");
    let (code, out, _) = check(&args, &junit);
    assert_eq!(code, Some(3), "{out}");
    assert_valid_junit(&junit);

    // Percentiles are not in the summary: an error that points to --log.
    let junit = dir.path().join("p99.xml");
    let (code, out, _) = check(
        &[
            summary.to_str().unwrap(),
            "--budget",
            pass_log.to_str().unwrap(),
        ],
        &junit,
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("latency average only, no p99: run pgbench with --log"),
        "{out}"
    );
    assert!(!junit.exists(), "nothing is written on a usage error");
}

#[test]
fn bad_inputs_are_errors_naming_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let budget = fixture("k6_budget.yaml");
    let budget = budget.to_str().unwrap();
    let stream = k6_stream(50, 10.0, 10);
    let cases: Vec<(PathBuf, Vec<String>, &str)> = vec![
        (
            write(dir.path(), "page.html", "<html>results</html>\n"),
            vec![],
            "page.html: unknown format (first line \"<html>results</html>\")",
        ),
        (
            write(dir.path(), "cut.json", &stream[..stream.len() - 20]),
            vec![],
            "cut.json: line 204: truncated: the file ends inside a JSON line",
        ),
        (
            write(dir.path(), "no_reqs.json", &stream.replace("\"http_reqs\"", "\"requests\"")),
            vec![],
            "no_reqs.json: no metric http_reqs in the stream (metrics in it: http_req_duration, http_req_failed, requests, vus)",
        ),
        (
            write(dir.path(), "cut_summary.json", &std::fs::read_to_string(fixture("k6_summary_pass.json")).unwrap()[..900]),
            vec![],
            "cut_summary.json: truncated JSON",
        ),
        (
            fixture("k6_summary_pass.json"),
            vec!["--format".into(), "locust".into()],
            "k6_summary_pass.json: no \"Type\" column: not a Locust _stats.csv",
        ),
        (
            write(dir.path(), "empty.json", ""),
            vec![],
            "empty.json: empty; expected a k6 --summary-export JSON",
        ),
        (
            dir.path().join("absent.json"),
            vec![],
            "cannot read ",
        ),
    ];
    for (file, extra, expected) in cases {
        let junit = dir.path().join("never.xml");
        let mut args = vec![file.to_str().unwrap(), "--budget", budget];
        args.extend(extra.iter().map(String::as_str));
        let (code, out, _) = check(&args, &junit);
        assert_eq!(code, Some(2), "{expected}: {out}");
        assert!(out.contains(expected), "{expected:?} not in {out}");
        assert!(!junit.exists(), "a usage error writes nothing: {out}");
    }

    // p99 from a summary that stops at p(95).
    let p99 = write(
        dir.path(),
        "p99.yaml",
        "objectives:\n  p99:\n    metric: latency\n    stat: p99\n    critical: \"> 1s\"\n",
    );
    let out = tuner(&[
        "check",
        fixture("k6_summary_pass.json").to_str().unwrap(),
        "--budget",
        p99.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("metrics.http_req_duration has no \"p(99)\""),
        "{}",
        text(&out)
    );

    // A budget with an unknown key or a bad unit: file:line.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "objectives:\n  p95:\n    metric: latency\n    stat: p95\n    critcal: \"> 1s\"\n",
    );
    let out = tuner(&[
        "check",
        fixture("k6_summary_pass.json").to_str().unwrap(),
        "--budget",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("bad.yaml:5:5: objectives.p95: unknown field `critcal`"),
        "{}",
        text(&out)
    );
    let unit = write(
        dir.path(),
        "unit.yaml",
        "objectives:\n  p95:\n    metric: latency\n    stat: p95\n    critical: \"> 1 fortnight\"\n",
    );
    let out = tuner(&[
        "check",
        fixture("k6_summary_pass.json").to_str().unwrap(),
        "--budget",
        unit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("unit.yaml:5:5: objectives.p95.critical"),
        "{}",
        text(&out)
    );
    let out = tuner(&["check", "--budget", budget]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn live_reads_the_sla_measurement_that_status_reads() {
    let mon = support::prometheus::Monitoring::start();
    let dir = tempfile::tempdir().unwrap();
    let config = support::config::write(
        dir.path(),
        &mon.prometheus_url,
        &mon.pg.dsn(),
        support::config::TEST_METRICS,
        "    pg_up: \">= 0.5\"",
    );
    let has_up = support::wait_until(Duration::from_secs(30), || {
        mon.query_raw("max(pg_up)")
            .map(|b| b.contains("\"value\""))
            .unwrap_or(false)
    });
    assert!(has_up, "no pg_up yet:\n{}", mon.logs());
    let budget = write(
        dir.path(),
        "budget.yaml",
        "objectives:\n  up:\n    metric: pg_up\n    critical: \"< 1\"\n  wal:\n    metric: wal_rate\n    critical: \"> 1G\"\n",
    );
    let config = config.to_str().unwrap();
    let status = tuner(&["--config", config, "--output", "json", "status"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let out = tuner(&[
        "--config",
        config,
        "--output",
        "json",
        "check",
        "--live",
        "--budget",
        budget.to_str().unwrap(),
    ]);
    let check: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = if check["verdict"] == "FAIL" { 3 } else { 0 };
    assert_eq!(out.status.code(), Some(expected), "{}", text(&out));
    let of = |name: &str| {
        status["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(check["results"][0]["value"], of("pg_up"));
    assert_eq!(check["results"][0]["value"], 1.0);
    // WAL is the window mean, as status reads it: the same value (or the
    // same no data, while Prometheus' history is younger than the grid).
    let wal = &check["results"][1];
    assert!(
        wal["source"]
            .as_str()
            .unwrap()
            .starts_with("wal_rate (mean of "),
        "{check}"
    );
    if wal["value"].is_null() {
        assert_eq!(wal["state"], "FAIL", "{check}");
    }
    assert_eq!(
        check["verdict"],
        if wal["value"].is_null() {
            "FAIL"
        } else {
            "PASS"
        }
    );
    assert!(
        of("wal_rate").is_null() == wal["value"].is_null(),
        "status {status}\ncheck {check}"
    );

    // A metric with no data fails; a metric not in tuner.yaml is an error.
    let temp = write(
        dir.path(),
        "temp.yaml",
        "objectives:\n  temp:\n    metric: cpu_temp\n    critical: \"> 85\"\n",
    );
    let out = tuner(&[
        "--config",
        config,
        "check",
        "--live",
        "--budget",
        temp.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("FAIL temp: nothing to judge: Prometheus has no data"),
        "{}",
        text(&out)
    );
    let latency = write(
        dir.path(),
        "latency.yaml",
        "objectives:\n  p95:\n    metric: latency\n    stat: p95\n    critical: \"> 1s\"\n",
    );
    let out = tuner(&[
        "--config",
        config,
        "check",
        "--live",
        "--budget",
        latency.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("with --live, \"latency\" must be a metric of"),
        "{}",
        text(&out)
    );
}
