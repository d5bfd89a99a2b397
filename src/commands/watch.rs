//! `tuner watch`: wires the config, the Docker runtime, a usage source,
//! the journal and the signals, recovers what a killed run left open, then
//! checks every interval (or once), printing a table (or JSON) per check
//! and serving `/health` and `/metrics` between checks.

use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::cli::{Cli, OutputFormat, WatchArgs};
use crate::config::units::{format_duration, parse_duration, Limit};
use crate::config::watch::{SourceKind, WatchConfig};
use crate::exit::{UsageError, FAILURE, OK};
use crate::journal::{Journal, Locks};
use crate::runtime::cgroup::Cgroups;
use crate::runtime::DockerRuntime;
use crate::watch::apply::{Applied, Applier};
use crate::watch::cycle::{CheckReport, Row, Watch};
use crate::watch::prometheus::PrometheusSource;
use crate::watch::server::{self, Shared};
use crate::watch::source::{CgroupSource, DockerSource, UsageSource, WithFallback};
use crate::watch::state;
use crate::watch::swap::BlueGreen;

pub async fn run(cli: &Cli, args: &WatchArgs) -> anyhow::Result<u8> {
    let config = super::context::load_config(cli)?;
    let cfg = settings(config.watch.clone().unwrap_or_default(), args)?;
    let runtime = DockerRuntime::connect(config.docker.host.as_deref()).await?;
    let prometheus;
    let source: Box<dyn UsageSource + '_> = match cfg.source {
        SourceKind::Cgroup => {
            if !cfg.cgroup_root.is_dir() {
                return Err(UsageError(format!(
                    "watch.cgroup_root {} is not a folder; point it at the host's cgroup mount or set watch.source: docker",
                    cfg.cgroup_root.display()
                ))
                .into());
            }
            Box::new(WithFallback {
                first: Box::new(CgroupSource {
                    cgroups: Cgroups::new(&cfg.cgroup_root),
                }),
                last: Box::new(DockerSource { runtime: &runtime }),
            })
        }
        SourceKind::Docker => Box::new(DockerSource { runtime: &runtime }),
        SourceKind::Prometheus => {
            prometheus = super::context::prometheus(&config)?;
            Box::new(PrometheusSource {
                client: &prometheus,
                queries: cfg.prometheus.clone(),
            })
        }
    };
    let state_dir = &config.paths.state_dir;
    let journal = Journal::new(state_dir.join(crate::journal::FILE));
    let locks = Locks::new(state_dir, "tuner watch");
    let deploy = config.deploy.clone().unwrap_or_default();
    // Only a run that may swap needs a router: a broken `deploy.router`
    // must not stop a watch that resizes everything in place.
    let router = if cfg.blue_green.is_empty() {
        None
    } else {
        Some(super::deploy::router(&config, &deploy)?)
    };
    let events = crate::output::progress::for_format(cli.output);
    let output = cli.output;
    let decided = move |row: &Row| {
        if output == OutputFormat::Json {
            // The check that follows reports a closed stdout.
            let _ = crate::output::watch::json_line("decision", row)
                .map(|line| crate::output::emit(&line));
        }
    };
    let watch = Watch {
        cfg: &cfg,
        runtime: &runtime,
        source: source.as_ref(),
        applier: Applier {
            runtime: &runtime,
            journal: &journal,
            locks: &locks,
            compose_dir: config.compose.as_ref().map(|c| c.project_dir.clone()),
            changelog: config.paths.changelog.clone(),
        },
        state_path: state::path_in(state_dir),
        project: config.compose.as_ref().map(|c| c.project.clone()),
        dry_run: args.dry_run,
        blue_green: router.as_deref().map(|router| BlueGreen {
            router,
            deploy: &deploy,
            state_dir: state_dir.clone(),
            project: config.compose.as_ref().map(|c| c.project.clone()),
            events: events.as_ref(),
        }),
        events: events.as_ref(),
        decided: &decided,
        memo: Default::default(),
    };
    if !args.dry_run {
        // A swap of a blue-green service a killed run (of watch or deploy)
        // left open is finished or undone as `tuner deploy status` would.
        super::deploy::recover_services(cli, &cfg.blue_green)
            .await
            .context("cannot recover an interrupted blue-green swap")?;
        for note in watch
            .applier
            .recover()
            .await
            .context("cannot recover an interrupted watch adjustment")?
        {
            crate::output::note(&format!("recovered {note}"));
        }
    }
    let mut saved = state::load(&watch.state_path)?;
    let stats: Shared = Arc::new(Mutex::new(Default::default()));
    let server = if args.once {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&cfg.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot serve /health and /metrics on {} (watch.listen or --listen): is the port taken?",
                    cfg.listen
                )
            })?;
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        crate::output::note(&format!(
            "watching every {}; /health and /metrics on http://{addr}",
            format_duration(cfg.interval)
        ));
        Some(server::serve(listener, stats.clone()))
    };
    let mut shutdown = super::interrupts::from_signals(super::interrupts::WATCH);
    // The check reads its own copy: the first signal lets it finish.
    let seen_by_check = shutdown.clone();
    // Adjustments are announced when their check returns, while the
    // daemon sleeps until the next.
    let queue = if args.dry_run {
        crate::notify::Queue::none()
    } else {
        crate::notify::Queue::start(&config)
    };
    let mut code = OK;
    loop {
        let result = tokio::select! {
            r = watch.check(&mut saved, &seen_by_check) => r,
            _ = shutdown.reached(2) => {
                anyhow::bail!("aborted mid-check; the next `tuner watch` finishes or undoes any open adjustment");
            }
        };
        match result {
            Ok(report) => {
                if let Ok(mut s) = stats.lock() {
                    s.record(&report);
                }
                for notice in super::announce::watch_notices(&report) {
                    queue.send(notice);
                }
                render(cli.output, &report)?;
                if report.rows.iter().any(failed) {
                    code = FAILURE;
                }
            }
            Err(e) if args.once => return Err(e.into()),
            // A daemon outlives a blip of the engine or the disk: the next
            // check reads everything afresh.
            Err(e) => eprintln!("error: {e}; trying again at the next check"),
        }
        if args.once || shutdown.count() > 0 || !watch.pause(cfg.interval, &mut shutdown).await {
            break;
        }
    }
    if let Some(task) = server {
        task.abort();
    }
    queue.finish().await;
    // A daemon's failures are in each table and /metrics; only `--once`
    // (cron) turns them into its exit code.
    Ok(if args.once { code } else { OK })
}

fn failed(row: &crate::watch::cycle::Row) -> bool {
    row.error.is_some() || matches!(row.applied, Some(Applied::Failed { .. }))
}

/// The section with the command line's overrides, checked like the file.
fn settings(mut cfg: WatchConfig, args: &WatchArgs) -> anyhow::Result<WatchConfig> {
    if let Some(i) = &args.interval {
        let d = parse_duration(i).map_err(|e| UsageError(format!("--interval: {e}")))?;
        Limit::Interval.check("--interval", d).map_err(UsageError)?;
        if d.is_zero() {
            return Err(UsageError("--interval: must be longer than 0s".into()).into());
        }
        cfg.interval = d;
    }
    if let Some(l) = &args.listen {
        cfg.listen = l.clone();
        if let Some((_, problem)) = cfg.problems().into_iter().find(|(k, _)| *k == "listen") {
            return Err(UsageError(format!("--listen: {problem}")).into());
        }
    }
    Ok(cfg)
}

fn render(format: OutputFormat, report: &CheckReport) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => crate::output::emit(&crate::output::watch::check(report))?,
        // One JSON document per line, so a consumer can read a stream of
        // decisions and checks.
        OutputFormat::Json => {
            crate::output::emit(&crate::output::watch::json_line("check", report)?)?
        }
    }
    Ok(())
}
