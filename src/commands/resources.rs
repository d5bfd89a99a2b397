//! `tuner resources`: detect the host, plan every service of services.yaml,
//! show PostgreSQL's settings for its container, write the Compose override
//! (unless `--dry-run`), and with `--capacity` the plan from Prometheus.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::context;
use crate::cli::{Cli, OutputFormat, ResourcesArgs};
use crate::config::{self, Config};
use crate::exit::{UsageError, OK};
use crate::journal::{self, Journal, Locks};
use crate::resources::{self, apply, capacity, services, Profile, Report};
use crate::runtime::compose_hash::services_changed;
use crate::runtime::OverrideFile;

pub async fn run(cli: &Cli, args: &ResourcesArgs) -> anyhow::Result<u8> {
    let profile = sizing_profile(cli.profile.as_deref())?;
    // The SLA `--profile` check of other commands does not apply here.
    let config = config::load(cli.config.as_deref())?;
    context::use_compose_command(&config);
    let path = args
        .services
        .clone()
        .unwrap_or_else(|| services_beside(&config));
    let file = services::load(&path).map_err(|e| UsageError(e.to_string()))?;
    let override_file = config
        .compose
        .as_ref()
        .map(|c| OverrideFile::in_dir(&c.project_dir));
    if let Some(of) = &override_file {
        if let Some((main, known)) = of.main_services()? {
            let problems = file.unknown_services(&known, &main);
            if !problems.is_empty() {
                return Err(UsageError(problems.join("\n")).into());
            }
        }
    }

    // Two docker-compose runs, or Prometheus' answers, can take seconds.
    let events = crate::output::progress::for_format(cli.output);
    let host = resources::detect(&file.data_path)?;
    let score = resources::score(&host);
    let allocation =
        resources::allocate(&host, score, profile, &file).map_err(|e| UsageError(e.to_string()))?;
    let postgres = resources::postgres_plan(&allocation, &file, &host);

    let mut plan = None;
    let mut recreated = Vec::new();
    // Reasons a real run refuses to write without --force; a dry run shows them.
    let mut blocked: Vec<String> = Vec::new();
    if let (Some(of), Some(compose)) = (&override_file, &config.compose) {
        let p = resources::write::plan(of, &allocation)?;
        if !p.conflicts.is_empty() && !args.force {
            let lines: Vec<String> = p
                .conflicts
                .iter()
                .map(|c| {
                    format!(
                        "  services.{}.{}: {} there, {} planned",
                        c.service,
                        c.key,
                        c.before.as_deref().unwrap_or("-"),
                        c.after
                    )
                })
                .collect();
            blocked.push(format!(
                "{} already sets other sizes (written by tune, deploy or by hand):\n{}",
                p.path.display(),
                lines.join("\n")
            ));
        }
        if !p.is_noop() {
            let planned: Vec<&str> = allocation
                .services
                .iter()
                .map(|s| s.service.as_str())
                .collect();
            // docker-compose runs inside the folder: a relative one would be doubled.
            let dir = std::path::absolute(&compose.project_dir)
                .with_context(|| format!("resolving {}", compose.project_dir.display()))?;
            let main = main_file_names(&dir);
            recreated = p.changes.iter().map(|c| c.service.clone()).collect();
            recreated.dedup();
            events.waiting(
                "docker-compose: which services the new override would recreate",
                None,
            );
            let others = services_changed(
                &dir,
                &compose.project,
                &main,
                p.before.as_deref(),
                Some(&p.after),
                &planned,
            );
            events.finished();
            let others = others?;
            if !others.is_empty() && !args.force {
                blocked.push(format!(
                    "writing {} would also change the Compose config of {}, so the next `docker-compose up -d` would recreate them too",
                    p.path.display(),
                    others.join(", ")
                ));
            }
            recreated.extend(others);
        }
        if !blocked.is_empty() && !args.dry_run {
            return Err(UsageError(format!(
                "{}\nnothing was written; pass --force to write anyway",
                blocked.join("\n")
            ))
            .into());
        }
        plan = Some(p);
    } else {
        crate::output::note(&format!(
            "no `compose:` section in {}: the plan is shown, no override file is written",
            config.source.display()
        ));
    }

    let capacity = if args.capacity {
        let prometheus = context::prometheus(&config)?;
        Some(
            capacity::plan(&prometheus, &file, |s| allocation.get(s).map(|a| a.cpus))
                .await
                .context("reading the capacity plan from Prometheus")?,
        )
    } else {
        None
    };

    let mut written = false;
    if let (Some(p), Some(of), false) = (&plan, &override_file, args.dry_run) {
        if !p.is_noop() {
            let state = &config.paths.state_dir;
            let journal = Journal::new(state.join(journal::FILE));
            let locks = Locks::new(state, "tuner resources");
            let names: Vec<String> = allocation
                .services
                .iter()
                .map(|s| s.service.clone())
                .collect();
            apply::write(of, p, &names, &journal, &locks)
                .with_context(|| format!("writing {}", of.path.display()))?;
            written = true;
        }
    }

    let report = Report {
        host,
        allocation,
        postgres,
        override_plan: plan,
        recreated,
        blocked,
        dry_run: args.dry_run,
        written,
        capacity,
    };
    match cli.output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Table => crate::output::emit_raw(&crate::output::resources::render(&report))?,
    }
    Ok(OK)
}

/// `--profile` is the SLA profile for every other command, and may come
/// from TUNER_PROFILE meant for them: a value from there that is not a
/// sizing profile is ignored, one typed on the command line is an error.
fn sizing_profile(flag: Option<&str>) -> Result<Profile, UsageError> {
    let Some(name) = flag else {
        return Ok(Profile::Auto);
    };
    if let Some(p) = Profile::parse(name) {
        return Ok(p);
    }
    if std::env::var("TUNER_PROFILE").ok().as_deref() == Some(name) {
        return Ok(Profile::Auto);
    }
    Err(UsageError(format!(
        "--profile {name:?}: `tuner resources` plans with auto, minimal, balanced or performance"
    )))
}

/// services.yaml in the config file's folder.
fn services_beside(config: &Config) -> PathBuf {
    config
        .source
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("services.yaml")
}

/// The main Compose file's name in `dir`, as Compose would pick it.
fn main_file_names(dir: &Path) -> Vec<String> {
    crate::runtime::compose_files::discover(dir)
        .main
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .into_iter()
        .collect()
}
