//! `tuner deploy` when SERVICE is a Swarm service: the same command, the
//! same refusals, lock and journal, with Swarm's own rollout doing the
//! swap (`deploy::swarm`). Reached before the container path; a name Swarm
//! does not know (or an engine outside a swarm) goes on to containers.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::cli::{Cli, DeployAction, DeployArgs, DeployOptions, OutputFormat};
use crate::config::units::parse_duration;
use crate::deploy::record::{Kind, ServiceJournal};
use crate::deploy::swarm::{self, Ask, SwarmPlan, SwarmReport, SwarmRun};
use crate::deploy::{DeployError, Target};
use crate::exit::{UsageError, OK};
use crate::journal::{JournalError, Silent};
use crate::output::swarm::SwarmStatus;
use crate::runtime::swarm::{Service, Swarm, SwarmEngine};
use crate::runtime::DockerRuntime;

struct Cx {
    config: crate::config::Config,
    output: OutputFormat,
    swarm: SwarmEngine,
}

/// Runs the command on the Swarm service it names, or returns `None` when
/// it names none (a `--project` always means a Compose service).
pub async fn run_if_swarm(cli: &Cli, args: &DeployArgs) -> anyhow::Result<Option<u8>> {
    let (name, project) = match &args.action {
        Some(DeployAction::Status { service, project }) => (service, project.as_ref()),
        Some(DeployAction::Rollback { service, options }) => (service, options.project.as_ref()),
        None => match &args.service {
            Some(s) => (s, args.options.project.as_ref()),
            None => return Ok(None),
        },
    };
    if project.is_some() {
        return Ok(None);
    }
    // Limits are checked before anything is asked of the engine.
    // Either form of the limits: positional, or Docker's --cpus/--memory.
    let cpus = args.cpus_arg.as_ref().or(args.cpus.as_ref());
    let memory = args.memory_arg.as_ref().or(args.memory.as_ref());
    let target = match (&args.action, cpus, memory) {
        (None, Some(c), Some(m)) => Some(Target::parse(c, m).map_err(usage)?),
        _ => None,
    };
    let config = crate::config::load(cli.config.as_deref())?;
    // An engine that cannot be reached is the container path's to report,
    // with its own checks (router config, ...) first.
    let Ok(runtime) = DockerRuntime::connect(config.docker.host.as_deref()).await else {
        return Ok(None);
    };
    let swarm = runtime.swarm();
    let Some(service) = swarm.service(name).await? else {
        return Ok(None);
    };
    let cx = Cx {
        config,
        output: cli.output,
        swarm,
    };
    let code = match &args.action {
        Some(DeployAction::Status { .. }) => status(&cx, service).await?,
        Some(DeployAction::Rollback { options, .. }) => {
            let journal = journal(&cx, &service);
            let previous = journal
                .history()?
                .iter()
                .rev()
                .find(|h| {
                    h.record.kind == Kind::Swarm && h.outcome.is_some_and(|o| o.kept_new_limits())
                })
                .map(|h| h.record.old);
            deploy(&cx, service, Ask::Rollback { previous }, options).await?
        }
        None => {
            let target = target.ok_or_else(|| {
                UsageError(
                    "usage: tuner deploy SERVICE CPU MEMORY (e.g. tuner deploy web 1.5 768M)"
                        .into(),
                )
            })?;
            deploy(&cx, service, Ask::Resize(target), &args.options).await?
        }
    };
    Ok(Some(code))
}

fn usage(e: DeployError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

fn journal(cx: &Cx, service: &Service) -> ServiceJournal {
    ServiceJournal::new(&cx.config.paths.state_dir, &service.name)
}

/// The whole rollout may take the health timeout per replica.
fn timeout(options: &DeployOptions, plan: &SwarmPlan) -> anyhow::Result<Duration> {
    let per_task = parse_duration(&options.health_timeout)
        .map_err(|e| anyhow::Error::new(UsageError(format!("--health-timeout: {e}"))))?;
    let tasks = plan.replicas.unwrap_or(1).max(1) as u32;
    Ok(per_task * tasks)
}

#[derive(Serialize)]
struct Output<'a> {
    dry_run: bool,
    recovered: Option<String>,
    plan: &'a SwarmPlan,
    result: Option<SwarmReport>,
}

async fn deploy(
    cx: &Cx,
    service: Service,
    ask: Ask,
    options: &DeployOptions,
) -> anyhow::Result<u8> {
    let deploy_config = cx.config.deploy.clone().unwrap_or_default();
    if let Some(a) = &deploy_config.analysis {
        crate::deploy::analysis::validate(a).map_err(usage)?;
    }
    let journal = journal(cx, &service);
    if options.dry_run {
        let plan = swarm::build(&cx.swarm, &service, &ask, &deploy_config)
            .await
            .map_err(usage)?;
        let out = Output {
            dry_run: true,
            recovered: None,
            plan: &plan,
            result: None,
        };
        print(cx, &out, || {
            let nothing = if plan.nothing_to_do() {
                format!(
                    "\n{} already has {}: nothing to do.",
                    plan.record.service,
                    plan.record.new.describe()
                )
            } else {
                String::new()
            };
            format!(
                "{}{nothing}\nDry run: nothing was changed.",
                crate::output::swarm::plan(&plan)
            )
        })?;
        return Ok(OK);
    }
    let _lock = journal
        .lock()
        .with_context(|| format!("cannot deploy {} now", service.name))?;
    let events = crate::output::progress::for_format(cx.output);
    let recovered = swarm::recover(
        &cx.swarm,
        &journal,
        events.as_ref(),
        Duration::from_secs(300),
    )
    .await?;
    if let Some(r) = &recovered {
        eprintln!("{r}");
    }
    // Read again: recovery may have waited for Swarm.
    let service = cx.swarm.service(&service.id).await?.unwrap_or(service);
    let plan = swarm::build(&cx.swarm, &service, &ask, &deploy_config)
        .await
        .map_err(usage)?;
    if plan.nothing_to_do() {
        let out = Output {
            dry_run: false,
            recovered,
            plan: &plan,
            result: None,
        };
        print(cx, &out, || {
            format!(
                "{} already has {}: nothing to do.",
                plan.record.service,
                plan.record.new.describe()
            )
        })?;
        return Ok(OK);
    }
    if cx.output == OutputFormat::Table {
        crate::output::emit(&crate::output::swarm::plan(&plan))?;
    }
    let timeout = timeout(options, &plan)?;
    let mut shutdown = super::interrupts::from_ctrl_c(super::interrupts::DEPLOY);
    let metrics = match &deploy_config.analysis {
        Some(_) => Some(super::context::prometheus(&cx.config)?),
        None => None,
    };
    let gate = deploy_config
        .analysis
        .as_ref()
        .zip(metrics.as_ref())
        .map(|(config, metrics)| swarm::Gate {
            metrics: metrics as &dyn crate::metrics::Metrics,
            config,
        });
    let run = SwarmRun {
        gate,
        swarm: &cx.swarm,
        journal: &journal,
        events: events.as_ref(),
        timeout,
    };
    let result = tokio::select! {
        r = run.run(&plan) => r,
        _ = shutdown.reached(1) => {
            // Swarm carries on by itself; the journal entry stays open and
            // the next deploy or status records where Swarm ended.
            let said = swarm::recover(&cx.swarm, &journal, &Silent, Duration::ZERO).await.ok().flatten();
            anyhow::bail!("interrupted by Ctrl-C; Swarm goes on with its rollout by itself{}", said.map(|s| format!("; {s}")).unwrap_or_default());
        }
    };
    let report = result.map_err(usage)?;
    let out = Output {
        dry_run: false,
        recovered,
        plan: &plan,
        result: Some(report.clone()),
    };
    print(cx, &out, || {
        crate::output::swarm::report(&report, plan.rollback)
    })?;
    Ok(OK)
}

async fn status(cx: &Cx, service: Service) -> anyhow::Result<u8> {
    let journal = journal(cx, &service);
    let mut in_progress = None;
    let recovered = match journal.lock() {
        Ok(_lock) => swarm::recover(&cx.swarm, &journal, &Silent, Duration::from_secs(120)).await?,
        Err(JournalError::Locked { pid, .. }) => {
            in_progress = Some(pid);
            None
        }
        Err(e) => return Err(e.into()),
    };
    let service = cx.swarm.service(&service.id).await?.unwrap_or(service);
    let tasks = cx
        .swarm
        .tasks(&service.id)
        .await?
        .into_iter()
        .filter(|t| t.desired == "running" || t.state == "running")
        .collect();
    let mut deploys = journal.history()?;
    let keep = deploys.len().saturating_sub(10);
    deploys.drain(..keep);
    deploys.reverse();
    let report = SwarmStatus {
        engine: "swarm",
        service,
        recovered,
        in_progress,
        tasks,
        deploys,
    };
    print(cx, &report, || crate::output::swarm::status(&report))?;
    Ok(OK)
}

fn print<T: Serialize>(cx: &Cx, value: &T, human: impl FnOnce() -> String) -> anyhow::Result<()> {
    match cx.output {
        OutputFormat::Json => Ok(crate::output::emit(&serde_json::to_string_pretty(value)?)?),
        OutputFormat::Table => Ok(crate::output::emit(&human())?),
    }
}
