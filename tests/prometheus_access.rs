//! `tuner status` against a Prometheus behind HTTPS (a private CA), basic
//! auth and required client certificates, as the real binary runs it: the
//! right credentials work; a wrong password, an unknown CA or a missing
//! client certificate each exit 1 naming the cause; no secret is printed,
//! even at `-vv`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::secured::{SecuredPrometheus, USER};

/// What varies between the runs; everything else is the right setup.
#[derive(Default)]
struct Access {
    password: Option<String>,
    no_ca: bool,
    no_client_cert: bool,
    insecure: bool,
}

fn write_config(dir: &Path, prom: &SecuredPrometheus, access: &Access) -> PathBuf {
    let password_file = dir.join("password");
    let password = access.password.as_deref().unwrap_or(&prom.password);
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let mut tls = String::new();
    if !access.no_ca {
        tls.push_str(&format!("    ca_file: {}\n", prom.path("ca.crt").display()));
    }
    if !access.no_client_cert {
        tls.push_str(&format!(
            "    cert_file: {}\n    key_file: {}\n",
            prom.path("client.crt").display(),
            prom.path("client.key").display()
        ));
    }
    if access.insecure {
        tls.push_str("    insecure_skip_verify: true\n");
    }
    let text = format!(
        "prometheus:\n  url: {url}\n  timeout: 5s\n  basic_auth:\n    username: {USER}\n    password_file: password\n  headers:\n    X-Scope-OrgID: tenant-a\n  tls_config:\n{tls}postgres:\n  dsn: postgresql://postgres@127.0.0.1:1/app\nprofile: test\npaths:\n  baseline: baseline.yaml\nmetrics:\n  answer:\n    query: vector(1)\n    unit: ratio\n    window: 30s\n    direction: higher_is_better\nprofiles:\n  test:\n    answer: \">= 0.5\"\n",
        url = prom.url
    );
    let path = dir.join("tuner.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn status(config: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out: Output = Command::new(support::tuner_bin())
        .arg("--config")
        .arg(config)
        .arg("status")
        .args(extra)
        .env_remove("TUNER_PG_DSN")
        .env_remove("TUNER_LOG")
        .output()
        .expect("run tuner");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `user:password` as the Authorization header carries it.
fn basic_header(password: &str) -> String {
    let mut child = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("base64");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{USER}:{password}").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn assert_no_secret(prom: &SecuredPrometheus, text: &str) {
    assert!(!text.contains(&prom.password), "password printed:\n{text}");
    let header = basic_header(&prom.password);
    assert!(
        !text.contains(&header),
        "Authorization header printed:\n{text}"
    );
    // Private keys only: a certificate is public, and Docker's own info (logged
    // at -vv) carries the swarm's root certificate when the engine is in one.
    assert!(
        !text.contains("PRIVATE KEY"),
        "key material printed:\n{text}"
    );
}

#[test]
fn status_through_tls_basic_auth_and_client_certificates() {
    let prom = SecuredPrometheus::start();
    let dir = tempfile::tempdir().unwrap();

    // The right credentials, CA and client certificate, at -vv.
    let config = write_config(dir.path(), &prom, &Access::default());
    let (code, stdout, stderr) = status(&config, &["-vv"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}\n{}", prom.log());
    assert!(stdout.contains("answer"), "{stdout}");
    assert_no_secret(&prom, &stdout);
    assert_no_secret(&prom, &stderr);

    // The health check goes through the same client.
    let (code, stdout, stderr) = status(&config, &["--health", "-vv"]);
    assert!(
        stdout.contains("prometheus") && stdout.contains("ready"),
        "{stdout}\n{stderr}"
    );
    assert_ne!(code, Some(2), "{stdout}\n{stderr}");
    assert_no_secret(&prom, &stdout);
    assert_no_secret(&prom, &stderr);

    // A wrong password: exit 1, naming the URL and the 401.
    let wrong = Access {
        password: Some("not-the-password".into()),
        ..Access::default()
    };
    let config = write_config(dir.path(), &prom, &wrong);
    let (code, stdout, stderr) = status(&config, &["-vv"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&prom.url) && stderr.contains("401"),
        "{stderr}"
    );
    assert!(stderr.contains("basic_auth"), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    assert!(
        !stderr.contains(&basic_header("not-the-password")),
        "{stderr}"
    );

    // The private CA not given: the system store does not know it.
    let no_ca = Access {
        no_ca: true,
        ..Access::default()
    };
    let config = write_config(dir.path(), &prom, &no_ca);
    let (code, stdout, stderr) = status(&config, &[]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains(&prom.url), "{stderr}");
    assert!(
        stderr.contains("certificate") && stderr.contains("ca_file"),
        "{stderr}"
    );
    assert_no_secret(&prom, &stderr);

    // No client certificate: the server refuses the handshake.
    let no_cert = Access {
        no_client_cert: true,
        ..Access::default()
    };
    let config = write_config(dir.path(), &prom, &no_cert);
    let (code, stdout, stderr) = status(&config, &[]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains(&prom.url), "{stderr}");

    // insecure_skip_verify is warned about, and works without the CA.
    let insecure = Access {
        no_ca: true,
        insecure: true,
        ..Access::default()
    };
    let config = write_config(dir.path(), &prom, &insecure);
    let (code, stdout, stderr) = status(&config, &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("insecure_skip_verify"), "{stderr}");
}

#[test]
fn unreadable_credential_files_are_config_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tuner.yaml");
    std::fs::write(
        &config,
        "prometheus:\n  url: https://127.0.0.1:9\n  bearer_token_file: no-such-token\npostgres:\n  dsn: host=x\nprofile: t\nmetrics:\n  m: {query: vector(1), unit: ratio, window: 30s}\nprofiles:\n  t: {m: \">= 0\"}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = status(&config, &[]);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("bearer_token_file") && stderr.contains("no-such-token"),
        "{stderr}"
    );
}
