//! A real Prometheus as it is often deployed: HTTPS with a certificate from
//! a private CA, basic auth, and client certificates required, through its
//! own `--web.config.file`. The CA, the server and client certificates are
//! made here with the `openssl` CLI; the bcrypt hash with `htpasswd -B`
//! (apache2-utils, installed by scripts/setup.sh).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const USER: &str = "tuner";

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct SecuredPrometheus {
    pub url: String,
    pub password: String,
    pub dir: tempfile::TempDir,
    _process: Process,
}

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A CA (`<name>.crt`, `<name>.key`) in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A key and certificate `<name>.{key,crt}` signed by the CA `ca`, valid for
/// 127.0.0.1 (server) or as a client.
fn make_cert(dir: &Path, ca: &str, name: &str, server: bool) {
    run(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    let ext = if server {
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    } else {
        "extendedKeyUsage=clientAuth\n"
    };
    std::fs::write(dir.join(format!("{name}.ext")), ext).expect("write ext");
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

impl SecuredPrometheus {
    pub fn start() -> SecuredPrometheus {
        let dir = tempfile::Builder::new()
            .prefix("tuner-secured-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        make_ca(d, "ca");
        make_cert(d, "ca", "server", true);
        make_cert(d, "ca", "client", false);
        let password = format!("pw-{}-{}", std::process::id(), super::free_port());
        let line = run(d, "htpasswd", &["-nbB", "-C", "5", USER, &password]);
        let hash = line
            .trim()
            .split_once(':')
            .map(|(_, h)| h.to_string())
            .expect("htpasswd output");
        std::fs::write(
            d.join("web.yml"),
            format!(
                "tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {0}/ca.crt\nbasic_auth_users:\n  {USER}: '{hash}'\n",
                d.display()
            ),
        )
        .expect("write web.yml");
        std::fs::write(d.join("prometheus.yml"), "global:\n  scrape_interval: 1s\n")
            .expect("write prometheus.yml");
        let port = super::free_port();
        let process = Command::new("prometheus")
            .arg(format!("--config.file={}/prometheus.yml", d.display()))
            .arg(format!("--web.config.file={}/web.yml", d.display()))
            .arg(format!("--storage.tsdb.path={}/data", d.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("prometheus.log")).expect("log"))
            .spawn()
            .expect("spawn prometheus");
        let prom = SecuredPrometheus {
            url: format!("https://127.0.0.1:{port}"),
            password,
            dir,
            _process: Process(process),
        };
        let ready = super::wait_until(Duration::from_secs(60), || prom.curl_ready());
        assert!(
            ready,
            "secured Prometheus never became ready:\n{}",
            prom.log()
        );
        prom
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn curl_ready(&self) -> bool {
        Command::new("curl")
            .args(["-sf", "--max-time", "2", "--cacert"])
            .arg(self.path("ca.crt"))
            .arg("--cert")
            .arg(self.path("client.crt"))
            .arg("--key")
            .arg(self.path("client.key"))
            .arg("-u")
            .arg(format!("{USER}:{}", self.password))
            .arg(format!("{}/-/ready", self.url))
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("prometheus.log")).unwrap_or_default()
    }
}
