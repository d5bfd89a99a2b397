//! The HTTP side of the Prometheus client, built from `prometheus:` in
//! tuner.yaml: credentials, extra headers and TLS.
//!
//! TLS trusts the system's store (Debian's ca-certificates, where an
//! internal CA is usually installed) plus `tls_config.ca_file`. Credential
//! files are read here, at every start, so a rotated token is picked up;
//! their contents never reach an error message.

use std::path::Path;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::MetricsError;
use crate::config::{PrometheusConfig, Secret};

/// How each request proves who it is. `Debug` hides the secret.
#[derive(Clone)]
pub enum Auth {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Auth {
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
        }
    }
}

fn setup_error(url: &str, reason: String) -> MetricsError {
    MetricsError::Setup {
        url: url.to_string(),
        reason,
    }
}

/// Reads a secret file, trimmed as Prometheus trims it. The error names the
/// key and the file, never what it holds.
fn read_secret(url: &str, key: &str, path: &Path) -> Result<Secret, MetricsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| setup_error(url, format!("cannot read {key} {}: {e}", path.display())))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(setup_error(
            url,
            format!("{key} {} is empty", path.display()),
        ));
    }
    Ok(Secret::new(value))
}

fn read_file(url: &str, key: &str, path: &Path) -> Result<Vec<u8>, MetricsError> {
    std::fs::read(path)
        .map_err(|e| setup_error(url, format!("cannot read {key} {}: {e}", path.display())))
}

/// The credentials of `config`, files read now.
pub fn auth(config: &PrometheusConfig) -> Result<Auth, MetricsError> {
    let url = &config.url;
    if let Some(basic) = &config.basic_auth {
        let password = match (&basic.password, &basic.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(file)) => read_secret(url, "prometheus.basic_auth.password_file", file)?,
            (None, None) => Secret::new(""),
        };
        return Ok(Auth::Basic {
            username: basic.username.clone(),
            password,
        });
    }
    match (&config.bearer_token, &config.bearer_token_file) {
        (Some(t), _) => Ok(Auth::Bearer(t.clone())),
        (None, Some(file)) => Ok(Auth::Bearer(read_secret(
            url,
            "prometheus.bearer_token_file",
            file,
        )?)),
        (None, None) => Ok(Auth::None),
    }
}

/// Extra headers, marked sensitive so reqwest never shows their values.
fn headers(config: &PrometheusConfig) -> Result<HeaderMap, MetricsError> {
    let mut map = HeaderMap::new();
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            setup_error(
                &config.url,
                format!("prometheus.headers: {name:?} is not a valid header name"),
            )
        })?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
            setup_error(
                &config.url,
                format!("prometheus.headers.{name}: the value is not a valid header value"),
            )
        })?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// The reqwest client for `config`: timeouts, extra headers, TLS roots and
/// the client certificate.
pub fn client(config: &PrometheusConfig) -> Result<reqwest::Client, MetricsError> {
    let url = &config.url;
    let timeout = config.timeout;
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(5)))
        .default_headers(headers(config)?);
    let tls = &config.tls_config;
    if let Some(ca) = &tls.ca_file {
        let pem = read_file(url, "prometheus.tls_config.ca_file", ca)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                setup_error(
                    url,
                    format!(
                        "prometheus.tls_config.ca_file {} holds no PEM certificate",
                        ca.display()
                    ),
                )
            })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = read_file(url, "prometheus.tls_config.cert_file", cert)?;
        pem.push(b'\n');
        pem.extend(read_file(url, "prometheus.tls_config.key_file", key)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            setup_error(
                url,
                format!(
                    "prometheus.tls_config.cert_file {} and key_file {} are not a PEM certificate and its key: {e}",
                    cert.display(),
                    key.display()
                ),
            )
        })?;
        builder = builder.identity(identity);
    }
    if tls.insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| setup_error(url, format!("cannot build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> PrometheusConfig {
        crate::config::yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn secret_files_are_read_trimmed_and_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let c = config(&format!(
            "url: https://p\nbasic_auth: {{username: u, password_file: {}}}\n",
            file.display()
        ));
        match auth(&c).unwrap() {
            Auth::Basic { username, password } => {
                assert_eq!(username, "u");
                assert_eq!(password.expose(), "s3cret");
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{:?}", auth(&c).unwrap()).contains("s3cret"));

        std::fs::write(&file, "  \n").unwrap();
        let err = auth(&c).unwrap_err().to_string();
        assert!(
            err.contains("is empty") && err.contains("password_file"),
            "{err}"
        );
        let missing = config("url: https://p\nbearer_token_file: /no/such/token\n");
        let err = auth(&missing).unwrap_err().to_string();
        assert!(err.contains("/no/such/token"), "{err}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let c = config(&format!(
            "url: https://p\ntls_config: {{ca_file: {}}}\n",
            ca.display()
        ));
        let err = client(&c).unwrap_err().to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }
}
