//! `prometheus:` in tuner.yaml: where Prometheus is and how to get in, as
//! it is deployed behind a proxy or as Mimir/Cortex/Thanos: basic auth, a
//! bearer token, extra headers (a tenant's `X-Scope-OrgID`), and TLS with
//! an internal CA or a client certificate. The keys follow Prometheus' own
//! `http_config`, so a scrape config's block can be copied over.
//!
//! Secrets (passwords, tokens, header values) are held in [`Secret`], whose
//! `Debug` never shows them; files are read when the client is built, so a
//! rotated token file is picked up by the next command.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::de_duration;

/// A value that must never be printed: `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    pub url: String,
    #[serde(
        default = "default_prometheus_timeout",
        deserialize_with = "de_duration"
    )]
    pub timeout: Duration,
    /// `username` with `password` or `password_file`.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// A file holding the token (trimmed), read at each start.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Extra headers on every request, e.g. `X-Scope-OrgID: tenant-a`.
    /// Values are treated as secrets: some are API keys.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default)]
    pub tls_config: TlsConfig,
}

impl Default for PrometheusConfig {
    fn default() -> PrometheusConfig {
        PrometheusConfig {
            url: String::new(),
            timeout: default_prometheus_timeout(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            headers: BTreeMap::new(),
            tls_config: TlsConfig::default(),
        }
    }
}

pub(super) fn default_prometheus_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// A file holding the password (trimmed), read at each start.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM CA certificate(s) trusted in addition to the system's store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and its key, for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. Warned about on every run.
    pub insecure_skip_verify: bool,
}

impl TlsConfig {
    fn is_set(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.insecure_skip_verify
    }
}

impl PrometheusConfig {
    /// Every problem of the section as `(key path, message)`, for `load` to
    /// locate in the file.
    pub fn problems(&self) -> Vec<(Vec<&'static str>, String)> {
        let mut out = Vec::new();
        let url = self.url.as_str();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            out.push((
                vec!["prometheus", "url"],
                format!("prometheus.url: {url:?} must start with http:// or https://"),
            ));
        } else if has_userinfo(url) {
            // A password in the URL would be echoed by every error message.
            out.push((
                vec!["prometheus", "url"],
                "prometheus.url: credentials in the URL are refused (they would appear in messages); use prometheus.basic_auth".into(),
            ));
        }
        if let Some(auth) = &self.basic_auth {
            if auth.password.is_some() == auth.password_file.is_some() {
                out.push((
                    vec!["prometheus", "basic_auth"],
                    "prometheus.basic_auth: set exactly one of password or password_file".into(),
                ));
            }
            if auth.username.contains(':') {
                out.push((
                    vec!["prometheus", "basic_auth", "username"],
                    "prometheus.basic_auth.username: must not contain ':'".into(),
                ));
            }
        }
        let bearer = self.bearer_token.is_some() || self.bearer_token_file.is_some();
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            out.push((
                vec!["prometheus", "bearer_token"],
                "prometheus: set at most one of bearer_token or bearer_token_file".into(),
            ));
        }
        if bearer && self.basic_auth.is_some() {
            out.push((
                vec!["prometheus", "basic_auth"],
                "prometheus: basic_auth and a bearer token both set the Authorization header; keep one".into(),
            ));
        }
        for (name, value) in &self.headers {
            if !is_token(name) {
                out.push((
                    vec!["prometheus", "headers"],
                    format!("prometheus.headers: {name:?} is not a valid header name"),
                ));
            } else if name.eq_ignore_ascii_case("authorization")
                && (bearer || self.basic_auth.is_some())
            {
                out.push((
                    vec!["prometheus", "headers"],
                    "prometheus.headers: Authorization is already set by basic_auth or the bearer token".into(),
                ));
            }
            if value.expose().chars().any(|c| c.is_control() && c != '\t') {
                // The value is not echoed: it may be a key.
                out.push((
                    vec!["prometheus", "headers"],
                    format!("prometheus.headers.{name}: the value holds a control character"),
                ));
            }
        }
        let tls = &self.tls_config;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            out.push((
                vec!["prometheus", "tls_config"],
                "prometheus.tls_config: cert_file and key_file go together".into(),
            ));
        }
        if tls.is_set() && url.starts_with("http://") {
            out.push((
                vec!["prometheus", "tls_config"],
                "prometheus.tls_config: applies to https:// only; change prometheus.url to https:// or drop tls_config".into(),
            ));
        }
        out
    }

    /// Every file the section names, for `load` to resolve against the
    /// config's folder.
    pub fn files_mut(&mut self) -> Vec<&mut PathBuf> {
        let mut out = Vec::new();
        if let Some(f) = self
            .basic_auth
            .as_mut()
            .and_then(|a| a.password_file.as_mut())
        {
            out.push(f);
        }
        let tls = &mut self.tls_config;
        out.extend(self.bearer_token_file.as_mut());
        out.extend(tls.ca_file.as_mut());
        out.extend(tls.cert_file.as_mut());
        out.extend(tls.key_file.as_mut());
        out
    }
}

/// `scheme://user[:pass]@host…`
fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// RFC 9110's `token`: what a header name may be.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> PrometheusConfig {
        crate::config::yaml::from_str(yaml).unwrap()
    }

    fn problems(yaml: &str) -> Vec<String> {
        parse(yaml).problems().into_iter().map(|(_, m)| m).collect()
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let c = parse(
            "url: https://p\nbasic_auth: {username: u, password: hunter2}\nheaders: {X-Api-Key: k3y}\n",
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(
            shown.contains("X-Api-Key") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(problems("url: https://p\nbearer_token: t0k\n").is_empty());
        assert!(!format!("{:?}", parse("url: https://p\nbearer_token: t0k\n")).contains("t0k"));
    }

    #[test]
    fn contradictions_are_refused_with_the_fix() {
        let p = problems("url: https://p\nbasic_auth: {username: u}\n");
        assert!(
            p[0].contains("exactly one of password or password_file"),
            "{p:?}"
        );
        let p =
            problems("url: https://p\nbasic_auth: {username: u, password: x}\nbearer_token: t\n");
        assert!(p[0].contains("keep one"), "{p:?}");
        let p = problems("url: http://p\ntls_config: {ca_file: /ca.pem}\n");
        assert!(p[0].contains("https:// only"), "{p:?}");
        let p = problems("url: https://p\ntls_config: {cert_file: /c.pem}\n");
        assert!(p[0].contains("go together"), "{p:?}");
        let p = problems("url: https://u:secret@p\n");
        assert!(
            p[0].contains("basic_auth") && !p[0].contains("secret"),
            "{p:?}"
        );
        let p = problems("url: https://p\nheaders: {\"bad name\": x}\n");
        assert!(p[0].contains("not a valid header name"), "{p:?}");
        assert!(problems("url: https://p/x@y\n").is_empty());
    }
}
