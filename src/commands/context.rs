//! What every command needs first: the loaded config and a Prometheus client.

use crate::cli::Cli;
use crate::config::{self, Config};
use crate::exit::UsageError;
use crate::metrics::{MetricsError, PrometheusClient};

pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = config::load(cli.config.as_deref())?;
    if let Some(profile) = &cli.profile {
        if !config.profiles.contains_key(profile) {
            let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
            return Err(UsageError(format!(
                "--profile {profile:?} is not defined in {} (defined: {})",
                config.source.display(),
                known.join(", ")
            ))
            .into());
        }
        config.profile = profile.clone();
    }
    use_compose_command(&config);
    Ok(config)
}

/// Hands `compose.command` to the one Compose chooser before anything runs
/// Compose, so every caller runs the same one.
pub fn use_compose_command(config: &Config) {
    crate::runtime::compose_cmd::configure(
        config.compose.as_ref().and_then(|c| c.command.as_deref()),
    );
}

/// The Prometheus client as `prometheus:` describes it. A credential or CA
/// file that cannot be used is a configuration error (exit 2).
/// `insecure_skip_verify` is warned about on every run.
pub fn prometheus(config: &Config) -> anyhow::Result<PrometheusClient> {
    if config.prometheus.tls_config.insecure_skip_verify {
        eprintln!(
            "warning: prometheus.tls_config.insecure_skip_verify is on: the certificate of {} is not checked, so anyone on the path can read the credentials and forge the metrics",
            config.prometheus.url
        );
    }
    PrometheusClient::from_config(&config.prometheus).map_err(|e| match e {
        MetricsError::Setup { .. } => UsageError(e.to_string()).into(),
        e => anyhow::Error::new(e).context(format!(
            "cannot set up a client for Prometheus at {}",
            config.prometheus.url
        )),
    })
}
