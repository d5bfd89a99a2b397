//! `tuner deploy SERVICE CPU MEM`, `tuner deploy status SERVICE`,
//! `tuner deploy rollback SERVICE`: wires config, the Docker runtime, router and journal,
//! then calls the deploy core and prints its results.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::cli::{
    Cli, DeployAction, DeployArgs, DeployOptions, OutputFormat, Strategy as CliStrategy,
};
use crate::config::deploy::DeployConfig;
use crate::config::units::{format_duration, parse_duration};
use crate::deploy::analysis::Gate;
use crate::deploy::plan::{Plan, Timings};
use crate::deploy::prepare::{self, Request, Strategy};
use crate::deploy::record::{Kind, ServiceJournal};
use crate::deploy::recover::{recover_open, Recovered};
use crate::deploy::replicas::{Rollout, RolloutReport};
use crate::deploy::router::Router;
use crate::deploy::status::StatusReport;
use crate::deploy::swap::{Report, Swap};
use crate::deploy::{inplace, metrics, routing, DeployError, Target};
use crate::exit::{UsageError, OK};
use crate::journal::JournalError;
use crate::journal::Shutdown;
use crate::runtime::{DockerRuntime, Runtime, ServiceQuery};

/// Everything a deploy subcommand needs, built once.
struct Context_ {
    config: crate::config::Config,
    output: OutputFormat,
    deploy: DeployConfig,
    state_dir: PathBuf,
    metrics_dir: Option<PathBuf>,
    runtime: Box<dyn Runtime>,
    router: Box<dyn Router>,
    /// Prometheus for the promotion gate, when `deploy.analysis` is set.
    metrics: Option<crate::metrics::PrometheusClient>,
}

pub async fn run(cli: &Cli, args: &DeployArgs) -> anyhow::Result<u8> {
    if let Some(code) = super::deploy_swarm::run_if_swarm(cli, args).await? {
        return Ok(code);
    }
    match &args.action {
        Some(DeployAction::Status { service, project }) => {
            status(cli, service, project.clone()).await
        }
        Some(DeployAction::Rollback { service, options }) => rollback(cli, service, options).await,
        None => {
            // clap keeps the two forms apart; either fills both values.
            let cpus = args.cpus_arg.as_ref().or(args.cpus.as_ref());
            let memory = args.memory_arg.as_ref().or(args.memory.as_ref());
            let (Some(service), Some(cpus), Some(memory)) = (&args.service, cpus, memory) else {
                return Err(UsageError(
                    "usage: tuner deploy SERVICE CPUS MEMORY or tuner deploy SERVICE --cpus CPUS --memory MEMORY (e.g. tuner deploy grafana 1.5 768M)"
                        .into(),
                )
                .into());
            };
            let target = Target::parse(cpus, memory).map_err(usage)?;
            let timings = timings(&args.options)?;
            let cx = context(cli).await?;
            let req = request(
                Kind::Deploy,
                service,
                target,
                None,
                &args.options,
                timings,
                &cx,
            );
            deploy(&cx, service, req, args.options.dry_run).await
        }
    }
}

fn usage(e: DeployError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

fn timings(o: &DeployOptions) -> anyhow::Result<Timings> {
    let parse = |flag: &str, v: &str| {
        parse_duration(v).map_err(|e| anyhow::Error::new(UsageError(format!("--{flag}: {e}"))))
    };
    Ok(Timings {
        health_timeout: parse("health-timeout", &o.health_timeout)?,
        health_interval: parse("health-interval", &o.health_interval)?,
        drain: parse("drain", &o.drain)?,
    })
}

impl Context_ {
    /// The promotion gate of `deploy.analysis`, if set.
    fn gate(&self) -> Option<Gate<'_>> {
        self.deploy
            .analysis
            .as_ref()
            .zip(self.metrics.as_ref())
            .map(|(config, metrics)| Gate {
                metrics: metrics as &dyn crate::metrics::Metrics,
                config,
            })
    }

    /// Plans of every replica, with the gate's step when there is one.
    async fn plans(&self, req: &Request) -> anyhow::Result<Vec<Plan>> {
        let mut plans = prepare::build_replicas(
            self.runtime.as_ref(),
            req,
            &self.deploy,
            self.router.as_ref(),
        )
        .await
        .map_err(usage)?;
        if let (Some(a), Strategy::BlueGreen) = (&self.deploy.analysis, req.strategy) {
            for p in &mut plans {
                crate::deploy::steps::add_gate(&mut p.steps, a);
            }
        }
        Ok(plans)
    }

    /// `compose.project` of the config: the project `--project` defaults
    /// to, as it does for tune's levers, so one config serves both.
    fn default_project(&self) -> Option<String> {
        self.config.compose.as_ref().map(|c| c.project.clone())
    }
}

async fn context(cli: &Cli) -> anyhow::Result<Context_> {
    let config = crate::config::load_for_deploy(cli.config.as_deref())?;
    super::context::use_compose_command(&config);
    let deploy = config.deploy.clone().unwrap_or_default();
    let metrics_dir = deploy.metrics_textfile_dir.as_ref().map(|d| {
        // The shared `metrics_textfile_dir` was resolved by `load` (and
        // copied here); joining it again wrote to config/.tuner/textfile.
        if d.is_relative() && config.metrics_textfile_dir.as_ref() != Some(d) {
            config.base_dir().join(d)
        } else {
            d.clone()
        }
    });
    let runtime = Box::new(DockerRuntime::connect(config.docker.host.as_deref()).await?);
    let router = router(&config, &deploy)?;
    let metrics = match &deploy.analysis {
        Some(a) => {
            crate::deploy::analysis::validate(a).map_err(usage)?;
            Some(super::context::prometheus(&config)?)
        }
        None => None,
    };
    Ok(Context_ {
        metrics,
        output: cli.output,
        state_dir: config.paths.state_dir.clone(),
        config,
        metrics_dir,
        deploy,
        runtime,
        router,
    })
}

/// The router of `deploy.router`; shared with `tuner watch`, which swaps
/// the services it is told to resize blue-green.
pub fn router(
    config: &crate::config::Config,
    deploy: &DeployConfig,
) -> anyhow::Result<Box<dyn Router>> {
    Ok(
        routing::router_for(&deploy.router, &config.base_dir()).map_err(|problems| {
            // Located like every other config problem: `file:line:col: key: ...`.
            let text = std::fs::read_to_string(&config.source).unwrap_or_default();
            crate::config::ConfigError::Invalid {
                problems: problems
                    .into_iter()
                    .map(|p| {
                        let mut keys = vec!["deploy", "router"];
                        keys.extend(p.keys.iter().map(String::as_str));
                        format!(
                            "{}: deploy.router.{}",
                            crate::config::load::locate(&config.source, &text, &keys),
                            p.problem
                        )
                    })
                    .collect(),
            }
        })?,
    )
}

fn request(
    kind: Kind,
    service: &str,
    target: Target,
    override_text: Option<Option<String>>,
    o: &DeployOptions,
    timings: Timings,
    cx: &Context_,
) -> Request {
    Request {
        kind,
        query: ServiceQuery {
            service: service.to_string(),
            project: o.project.clone().or_else(|| cx.default_project()),
        },
        target,
        override_text,
        strategy: match o.strategy {
            CliStrategy::BlueGreen => Strategy::BlueGreen,
            CliStrategy::InPlace => Strategy::InPlace,
        },
        timings,
        health_path: o.health_path.clone(),
        health_port: o.health_port,
        router_kind: routing::kind_name(&cx.deploy.router),
        router_server: cx.deploy.router.server.clone(),
    }
}

#[derive(Serialize)]
struct DeployOutput<'a> {
    dry_run: bool,
    recovered: Option<Recovered>,
    /// The plan of the first (or only) container.
    plan: &'a Plan,
    /// Every replica's plan, in swap order, when there are several.
    #[serde(skip_serializing_if = "<[Plan]>::is_empty")]
    replicas: &'a [Plan],
    result: Option<Report>,
    /// Every replica's swap, when there are several.
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout: Option<RolloutReport>,
}

async fn deploy(cx: &Context_, service: &str, req: Request, dry_run: bool) -> anyhow::Result<u8> {
    let journal = ServiceJournal::new(&cx.state_dir, service);
    if dry_run {
        // `plans` is never empty (`build_replicas`), so `plans[0]` is there.
        let mut plans = cx.plans(&req).await?;
        if let Some(open) = journal.open()? {
            plans[0].notes.insert(
                0,
                format!(
                    "the interrupted deploy {} (last phase {:?}) will be recovered first",
                    open.record.id, open.last_phase
                ),
            );
        }
        if let Some(open) = journal.open_rollout()? {
            plans[0].notes.insert(
                0,
                format!(
                    "the interrupted rollout {} over {} replicas will be undone first",
                    open.record.id,
                    open.record.replicas.len()
                ),
            );
        }
        print(
            cx,
            &DeployOutput {
                dry_run: true,
                recovered: None,
                plan: &plans[0],
                replicas: if plans.len() > 1 { &plans } else { &[] },
                result: None,
                rollout: None,
            },
            || {
                let text = if plans.len() > 1 {
                    crate::output::deploy::replicas(&plans)
                } else {
                    crate::output::deploy::plan(&plans[0])
                };
                format!("{text}\nDry run: nothing was changed.")
            },
        )?;
        return Ok(OK);
    }
    let _lock = journal
        .lock()
        .with_context(|| format!("cannot deploy {service} now"))?;
    super::recover::tune_changes_on(
        &cx.config,
        journal.locks(),
        &crate::journal::Target::Service(service.to_string()),
        cx.output,
    )
    .await
    .with_context(|| {
        format!("cannot deploy {service}: a tune change left open on it could not be restored")
    })?;
    let recovered = recover_open(
        cx.runtime.as_ref(),
        cx.router.as_ref(),
        &journal,
        req.timings.health_timeout,
        crate::output::progress::for_format(cx.output).as_ref(),
    )
    .await?;
    if let Some(r) = &recovered {
        eprintln!("{r}");
    }
    let events = crate::output::progress::for_format(cx.output);
    let rollout = Rollout {
        runtime: cx.runtime.as_ref(),
        router: cx.router.as_ref(),
        journal: &journal,
        config: &cx.deploy,
        request: &req,
        events: events.as_ref(),
        gate: cx.gate(),
    };
    if let Some(said) = rollout.recover().await? {
        eprintln!("{said}");
    }
    // Never empty (`build_replicas`): `all[0]` and, once filtered and
    // checked, `plans[0]` are there.
    let all = cx.plans(&req).await?;
    // Replicas already at the target (a rollout someone finished by hand)
    // are left alone; the rest go one at a time.
    let plans: Vec<Plan> = all
        .iter()
        .filter(|p| !p.old.same_size(&p.new))
        .cloned()
        .collect();
    if plans.is_empty() {
        let first = &all[0];
        print(
            cx,
            &DeployOutput {
                dry_run: false,
                recovered,
                plan: first,
                replicas: &[],
                result: None,
                rollout: None,
            },
            || {
                format!(
                    "{} already has {}: nothing to do.",
                    if all.len() > 1 {
                        format!("every replica of {}", first.service)
                    } else {
                        first.blue_name.clone()
                    },
                    first.new.describe()
                )
            },
        )?;
        return Ok(OK);
    }
    if cx.output == OutputFormat::Table {
        emit(&if plans.len() > 1 {
            crate::output::deploy::replicas(&plans)
        } else {
            crate::output::deploy::plan(&plans[0])
        })?;
    }
    let mut shutdown = super::interrupts::from_ctrl_c(super::interrupts::DEPLOY);
    let several = plans.len() > 1;
    let work = async {
        match (req.strategy, several) {
            (Strategy::BlueGreen, false) => Swap {
                runtime: cx.runtime.as_ref(),
                router: cx.router.as_ref(),
                journal: &journal,
                timings: req.timings,
                events: events.as_ref(),
                gate: cx.gate(),
            }
            .run(&plans[0])
            .await
            .map(|r| (r, None)),
            (Strategy::BlueGreen, true) => {
                let all = rollout.run(&plans).await?;
                let last =
                    all.replicas.last().cloned().ok_or_else(|| {
                        DeployError::InvalidLimit("no replica was deployed".into())
                    })?;
                Ok((last, Some(all)))
            }
            (Strategy::InPlace, _) => {
                let mut last = None;
                for plan in &plans {
                    last = Some(inplace::run(cx.runtime.as_ref(), &journal, plan).await?);
                }
                last.map(|r| (r, None))
                    .ok_or_else(|| DeployError::InvalidLimit("no container to update".into()))
            }
        }
    };
    let result = tokio::select! {
        r = work => r,
        _ = shutdown.reached(1) => {
            write_metrics(cx);
            return interrupted(cx, &journal, &rollout, req.timings.health_timeout, &mut shutdown).await;
        }
    };
    write_metrics(cx);
    let plan = &plans[0];
    let notice = super::announce::deploy_notice(
        service,
        req.kind == Kind::Rollback,
        result.as_ref().map(|(r, _)| r).map_err(|e| e.to_string()),
        &plan.new.describe(),
    );
    crate::notify::announce(&cx.config, std::slice::from_ref(&notice)).await;
    let (report, rolled) = result.map_err(usage)?;
    let out = DeployOutput {
        dry_run: false,
        recovered,
        plan,
        replicas: if several { &plans } else { &[] },
        result: Some(report.clone()),
        rollout: rolled.clone(),
    };
    print(cx, &out, || match &rolled {
        Some(r) => r
            .replicas
            .iter()
            .map(|one| human_report(&req, one))
            .collect::<Vec<_>>()
            .join("\n"),
        None => human_report(&req, &report),
    })?;
    Ok(OK)
}

/// One container's result, for humans.
fn human_report(req: &Request, report: &Report) -> String {
    let mut text = format!(
        "{} {}: {} (was {}), read back from {} ({}) in {:.1}s",
        if req.kind == Kind::Rollback {
            "Rolled back"
        } else {
            "Deployed"
        },
        report.service,
        report.read_back.describe(),
        report.old.describe(),
        report.container,
        crate::runtime::find::short_id(&report.container_id),
        report.seconds
    );
    if let Some(a) = &report.analysis {
        let values: Vec<String> = a
            .measurements
            .iter()
            .map(|m| {
                format!(
                    "{} {}",
                    m.check,
                    m.value
                        .map_or_else(|| "no value".to_string(), |v| v.to_string())
                )
            })
            .collect();
        text.push_str(&format!("\nGate passed: {}", values.join(", ")));
    }
    if !report.phases.is_empty() {
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|p| format!("{} {:.2}s", p.phase, p.seconds))
            .collect();
        text.push_str(&format!(
            "\nPhases: {}; traffic on green after {:.2}s; drain of blue's in-flight requests {:.2}s",
            phases.join(", "),
            report.seconds_to_green,
            report.drain_seconds
        ));
    }
    if let Some(router) = &report.router {
        text.push_str(&format!("\nRouter: server {}", router.server));
        if let Some(path) = &router.state_file {
            text.push_str(&format!(
                "; state saved to {path} for the router's next reload"
            ));
        }
        if let Some(w) = &router.warning {
            text.push_str(&format!("\nWarning: {w}"));
        }
    }
    text
}

/// First Ctrl-C: stop the swap where it is and let recovery finish or undo
/// it, exactly as after a crash; a second Ctrl-C aborts at once.
async fn interrupted(
    cx: &Context_,
    journal: &ServiceJournal,
    rollout: &Rollout<'_>,
    health_timeout: Duration,
    shutdown: &mut Shutdown,
) -> anyhow::Result<u8> {
    let events = crate::output::progress::for_format(cx.output);
    let recover = async {
        let one = recover_open(
            cx.runtime.as_ref(),
            cx.router.as_ref(),
            journal,
            health_timeout,
            events.as_ref(),
        )
        .await?;
        // A rollout over replicas is undone as a whole, as after a crash.
        let all = rollout.recover().await?;
        Ok::<_, DeployError>((one, all))
    };
    let (recovered, rolled_back) = tokio::select! {
        r = recover => r?,
        _ = shutdown.reached(2) => anyhow::bail!("aborted by a second Ctrl-C; run `tuner deploy` again or `tuner deploy status` to recover"),
    };
    write_metrics(cx);
    match (recovered, rolled_back) {
        (_, Some(all)) => anyhow::bail!("interrupted by Ctrl-C; {all}"),
        (Some(r), None) => anyhow::bail!("interrupted by Ctrl-C; {r}"),
        (None, None) => anyhow::bail!("interrupted by Ctrl-C; nothing was left to finish or undo"),
    }
}

fn print<T: Serialize>(
    cx: &Context_,
    value: &T,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    match cx.output {
        OutputFormat::Json => emit(&serde_json::to_string_pretty(value)?),
        OutputFormat::Table => emit(&human()),
    }
}

/// Writes a result through the one stdout writer: a closed pipe (`| head`)
/// ends the run quietly with exit 0, the deploy itself already done.
fn emit(text: &str) -> anyhow::Result<()> {
    Ok(crate::output::emit(text)?)
}

/// Metrics are a side output: a failure to write them is logged, not fatal.
fn write_metrics(cx: &Context_) {
    if let Some(dir) = &cx.metrics_dir {
        if let Err(e) = metrics::write(dir, &cx.state_dir) {
            tracing::warn!("cannot write deploy metrics to {}: {e}", dir.display());
        }
    }
}

/// Finishes or undoes the interrupted deploys of `services`, as `tuner
/// deploy status` would, before another action (a tune run's container or
/// env levers) acts on them. Connects to the engine only when one is open.
pub async fn recover_services(cli: &Cli, services: &[String]) -> anyhow::Result<()> {
    let config = crate::config::load_for_deploy(cli.config.as_deref())?;
    let mut open = Vec::new();
    for service in services {
        let journal = ServiceJournal::new(&config.paths.state_dir, service);
        if journal.open()?.is_some() {
            open.push(journal);
        }
    }
    if open.is_empty() {
        return Ok(());
    }
    let cx = context(cli).await?;
    for journal in &open {
        let _lock = journal
            .lock()
            .context("cannot recover an interrupted deploy before tuning")?;
        let recovered = recover_open(
            cx.runtime.as_ref(),
            cx.router.as_ref(),
            journal,
            Duration::from_secs(120),
            crate::output::progress::for_format(cx.output).as_ref(),
        )
        .await?;
        if let Some(r) = recovered {
            eprintln!("{r}");
            write_metrics(&cx);
        }
    }
    Ok(())
}

async fn status(cli: &Cli, service: &str, project: Option<String>) -> anyhow::Result<u8> {
    let cx = context(cli).await?;
    let journal = ServiceJournal::new(&cx.state_dir, service);
    let mut in_progress = None;
    let recovered = match journal.lock() {
        Ok(_lock) => {
            let r = recover_open(
                cx.runtime.as_ref(),
                cx.router.as_ref(),
                &journal,
                Duration::from_secs(120),
                crate::output::progress::for_format(cx.output).as_ref(),
            )
            .await?;
            if r.is_some() {
                write_metrics(&cx);
            }
            r
        }
        // A deploy is running: show the live state, recover nothing.
        Err(JournalError::Locked { pid, .. }) => {
            in_progress = Some(pid);
            None
        }
        Err(e) => return Err(e.into()),
    };
    let query = ServiceQuery {
        service: service.to_string(),
        project: project.or_else(|| cx.default_project()),
    };
    let found = cx
        .runtime
        .find_service(&query)
        .await
        .map_err(|e| usage(e.into()))?;
    let mut containers = Vec::new();
    for f in &found {
        containers.push(cx.runtime.inspect(&f.id).await?);
    }
    if let Some(open) = journal.open_rollout()? {
        // Undoing it swaps replicas, which status never does on its own.
        eprintln!(
            "the rollout {} over {} replicas of {service} was interrupted; the next `tuner deploy` or `tuner deploy rollback {service}` undoes it",
            open.record.id,
            open.record.replicas.len()
        );
    }
    let mut deploys = journal.history()?;
    let keep = deploys.len().saturating_sub(10);
    deploys.drain(..keep);
    deploys.reverse();
    let report = StatusReport {
        service: service.to_string(),
        in_progress,
        recovered,
        containers,
        deploys,
    };
    print(&cx, &report, || crate::output::deploy::status(&report))?;
    Ok(OK)
}

async fn rollback(cli: &Cli, service: &str, options: &DeployOptions) -> anyhow::Result<u8> {
    let timings = timings(options)?;
    let cx = context(cli).await?;
    let journal = ServiceJournal::new(&cx.state_dir, service);
    if let Some(open) = journal.open_rollout()? {
        // A rollout over replicas that a crash interrupted is what there
        // is to roll back: the deploy path undoes it before anything else,
        // then finds every replica on the limits it started from.
        let r = &open.record;
        let req = request(
            Kind::Rollback,
            service,
            Target {
                cpus: r.old.cpus,
                memory: r.old.memory,
            },
            Some(r.override_before.clone()),
            options,
            timings,
            &cx,
        );
        return deploy(&cx, service, req, options.dry_run).await;
    }
    let Some(last) = journal.last_kept()? else {
        return Err(usage(DeployError::NothingToRollBack {
            service: service.to_string(),
            journal: journal.path().display().to_string(),
        }));
    };
    let target = Target {
        cpus: last.record.old.cpus,
        memory: last.record.old.memory,
    };
    tracing::info!(
        "rolling {service} back to {} (before deploy {}, {})",
        last.record.old.describe(),
        last.record.id,
        format_duration(Duration::ZERO)
    );
    let req = request(
        Kind::Rollback,
        service,
        target,
        Some(last.record.override_before.clone()),
        options,
        timings,
        &cx,
    );
    deploy(&cx, service, req, options.dry_run).await
}
