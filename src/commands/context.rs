//! What every command needs first: the loaded config and a Prometheus client.

use anyhow::Context as _;

use crate::cli::Cli;
use crate::config::{self, Config};
use crate::exit::UsageError;
use crate::metrics::PrometheusClient;

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
    Ok(config)
}

pub fn prometheus(config: &Config) -> anyhow::Result<PrometheusClient> {
    PrometheusClient::new(&config.prometheus.url, config.prometheus.timeout).with_context(|| {
        format!(
            "cannot set up a client for Prometheus at {}",
            config.prometheus.url
        )
    })
}
