//! Command-line types. No logic lives here: `commands/` turns these into plans.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tuner",
    version,
    about = "Keeps a service stack inside its performance SLA",
    after_help = "Examples:
  tuner status --health           is everything tuner needs reachable?
  tuner baseline && tuner status  capture a baseline, then judge against it
  tuner tune --dry-run            what the first tuning cycle would change
  tuner rollback --all --dry-run  what undoing every kept change would do

Environment:
  TUNER_CONFIG, TUNER_PROFILE, TUNER_OUTPUT, TUNER_VERBOSE, TUNER_QUIET  the global flags
  TUNER_LOG      a tracing filter for stderr logs (e.g. tuner=debug)
  TUNER_PG_DSN   overrides postgres.dsn;  DOCKER_HOST overrides docker.host
  NO_COLOR       no colour;  TERM=dumb: no colour, no bars, ASCII marks

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 SLA violated"
)]
pub struct Cli {
    /// Config file [default: config/tuner.yaml]
    #[arg(long, global = true, env = "TUNER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// SLA profile to judge against, instead of the config's `profile`;
    /// for `resources`, the sizing profile: auto, minimal, balanced or performance
    #[arg(long, global = true, env = "TUNER_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,

    /// Output format for results on stdout
    #[arg(
        short,
        long,
        global = true,
        env = "TUNER_OUTPUT",
        value_enum,
        default_value_t = OutputFormat::Table
    )]
    pub output: OutputFormat,

    /// More log detail on stderr (-v debug, -vv trace)
    #[arg(short, long, global = true, env = "TUNER_VERBOSE", action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No progress, notes or info logs on stderr; results still on stdout
    #[arg(
        short,
        long,
        global = true,
        env = "TUNER_QUIET",
        conflicts_with = "verbose"
    )]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
// Parsed once per run; boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Capture every metric over its window into baseline.yaml
    #[command(after_help = "Examples:
  tuner baseline --dry-run        print the baseline, write nothing
  tuner baseline                  write baseline.yaml (the old one is kept as a backup)
  tuner baseline --file /tmp/b.yaml")]
    Baseline(BaselineArgs),
    /// Show each metric against its baseline and objective (exit 3 if violated)
    #[command(after_help = "Examples:
  tuner status                    the SLA table; exit 0 met, 3 violated, 1 unmeasured
  tuner status -o json | jq .verdict
  tuner status --profile production
  tuner status --health           Prometheus, every scrape target, PostgreSQL, Docker")]
    Status(StatusArgs),
    /// Closed-loop tuning: apply the cheapest lever, observe, keep or roll back
    #[command(after_help = "Examples:
  tuner tune --dry-run            the first cycle's plan; nothing changes
  tuner tune --max-cycles 3 --observe 10m
  tuner tune --yes                restart levers allowed without asking (cron, CI)")]
    Tune(TuneArgs),
    /// Undo kept tuning changes
    #[command(after_help = "Examples:
  tuner rollback                  undo the last kept change
  tuner rollback --to 20260101T000000Z-1
  tuner rollback --all --dry-run  what --all would undo
  tuner rollback --all --yes      undo everything without asking")]
    Rollback(RollbackArgs),
    /// Re-size a service with a zero-downtime blue-green swap
    #[command(after_help = "Examples:
  tuner deploy grafana 1.5 768M --dry-run
  tuner deploy grafana 1.5 768M
  tuner deploy grafana --cpus 1.5 --memory 768M
  tuner deploy status grafana
  tuner deploy rollback grafana")]
    Deploy(DeployArgs),
    /// Check a performance budget against results or live metrics (exit 3 if one fails)
    #[command(after_help = "Examples:
  tuner check --live
  tuner check results.json --junit check.xml
  tuner check run_stats.csv --budget ci/budget.yaml
  tuner check pgbench_log.4242 --baseline main.yaml")]
    Check(CheckArgs),
    /// Render Prometheus alert rules from the SLA profile, the budget and its SLOs
    #[command(after_help = "Examples:
  tuner alerts                    write config/alerts.yml (beside tuner.yaml)
  tuner alerts --dry-run          list the alerts it would write, write nothing
  tuner alerts --stdout | promtool check rules /dev/stdin
  tuner alerts --tests alerts_test.yml && promtool test rules alerts_test.yml")]
    Alerts(AlertsArgs),
    /// Write an HTML report of a tuning run: plots, changelog, deploys
    #[command(after_help = "Examples:
  tuner report                    write tuning-report.html beside tuning.log
  tuner report --file /tmp/run.html
  tuner report --since 2026-12-07T14:00:00Z   only the run that started then
  tuner report --tuning-log old/tuning.log --journal old/.tuner/journal.jsonl")]
    Report(ReportArgs),
    /// Size the stack from this host: limits and reservations per service in the Compose override
    #[command(after_help = "Examples:
  tuner resources --dry-run       score, tier, plan and the PostgreSQL settings; nothing written
  tuner resources --profile balanced
  tuner resources --force         also replace limits already set in docker-compose.override.yml
  tuner resources --capacity      replicas, CPUs and days until the volume is full, from Prometheus")]
    Resources(ResourcesArgs),
    /// Keep every container's limits matched to its real use (a daemon, or --once)
    #[command(after_help = "Examples:
  tuner watch --once --dry-run    what one check would change; nothing changes
  tuner watch --once              one check, for cron
  tuner watch --interval 1m       every minute; /health and /metrics on watch.listen
  curl -s 127.0.0.1:9479/metrics  adjustments, usage, limits, last decision")]
    Watch(WatchArgs),
    /// Print a shell completion script on stdout
    #[command(after_help = "Examples:
  tuner completions bash > /etc/bash_completion.d/tuner
  tuner completions zsh > \"${fpath[1]}/_tuner\"
  tuner completions fish > ~/.config/fish/completions/tuner.fish")]
    Completions {
        /// bash, zsh, fish, elvish or powershell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout
    #[command(after_help = "Examples:
  tuner man | man -l -
  tuner man > /usr/local/share/man/man1/tuner.1")]
    Man,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Print what would be written; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Where to write the baseline [default: baseline.yaml beside the project root]
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ResourcesArgs {
    /// The services file [default: services.yaml beside the config file]
    #[arg(long, value_name = "PATH")]
    pub services: Option<PathBuf>,
    /// Print the plan; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace sizes already set to other values in the override, and write
    /// even when other services' Compose config would change
    #[arg(long)]
    pub force: bool,
    /// Also read Prometheus for the capacity plan (replicas, days until full)
    #[arg(long)]
    pub capacity: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// One check, then exit (for cron)
    #[arg(long)]
    pub once: bool,
    /// Decide and print; change nothing (no update, no state, no journal)
    #[arg(long)]
    pub dry_run: bool,
    /// Time between checks [default: watch.interval, else 5m]
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Where to serve /health and /metrics [default: watch.listen]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Check Prometheus, every scrape target, Postgres and Docker instead
    #[arg(long)]
    pub health: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Result files: a k6 --summary-export JSON, a k6 --out json stream
    /// (optionally gzipped), a Locust _stats.csv, pgbench's output, or
    /// pgbench --log files (several: one per thread)
    #[arg(
        value_name = "FILE",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    pub files: Vec<PathBuf>,
    /// Check live Prometheus through the same measurement as `status`
    #[arg(long)]
    pub live: bool,
    /// The budget file [default: config/budget.yaml]
    #[arg(long, env = "TUNER_BUDGET", value_name = "PATH")]
    pub budget: Option<PathBuf>,
    /// The files' format, when telling it from their content is not wanted
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub format: InputFormat,
    /// With --live: the window WAL metrics are averaged over [default: tune.observe]
    #[arg(long, value_name = "DURATION", requires = "live")]
    pub window: Option<String>,
    /// Also compare every objective with this baseline file (`tuner baseline`
    /// or `--save-baseline` of an earlier run)
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    /// Allowed regression against --baseline, instead of the budget's (default 10%)
    #[arg(long, value_name = "PERCENT", requires = "baseline")]
    pub max_regression: Option<String>,
    /// Write the result as JUnit XML to FILE, for CI test reports
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write this run's values as a baseline file, for a later --baseline
    #[arg(long, value_name = "PATH")]
    pub save_baseline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where to write the report [default: tuning-report.html beside tuning.log]
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The tuning log to read [default: paths.tuning_log]
    #[arg(long, value_name = "PATH")]
    pub tuning_log: Option<PathBuf>,
    /// The journal to read [default: journal.jsonl in paths.state_dir]
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Only what happened from this time on (RFC 3339, e.g. 2026-12-07T14:00:00Z)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// The budget file: warning/critical levels, `slos:` and `alerting:`
    /// [default: config/budget.yaml when it exists]
    #[arg(long, env = "TUNER_BUDGET", value_name = "PATH")]
    pub budget: Option<PathBuf>,
    /// Where to write the rules [default: alerts.yml beside tuner.yaml]
    #[arg(long, value_name = "PATH", conflicts_with = "stdout")]
    pub file: Option<PathBuf>,
    /// Print the rules on stdout instead of writing a file
    #[arg(long)]
    pub stdout: bool,
    /// Also write promtool unit tests for the rules (`promtool test rules FILE`)
    #[arg(long, value_name = "FILE", conflicts_with = "stdout")]
    pub tests: Option<PathBuf>,
    /// Ignore baseline.yaml: relative objectives alert on spikes above the
    /// metric's recent level instead of a number from the baseline
    #[arg(long)]
    pub no_baseline: bool,
    /// List the alerts that would be written; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    Auto,
    K6Summary,
    K6Json,
    Locust,
    Pgbench,
    PgbenchLog,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Stop after this many cycles even if the SLA is still violated
    #[arg(long, default_value_t = 5)]
    pub max_cycles: u32,
    /// How long to observe after each change (e.g. 15m, 90s)
    #[arg(long, value_name = "DURATION")]
    pub observe: Option<String>,
    /// How long to wait after a change before observing (e.g. 1m)
    #[arg(long, value_name = "DURATION")]
    pub settle: Option<String>,
    /// Print the plan for the first cycle; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Allow levers that restart PostgreSQL without asking
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Roll back to just before this change id
    #[arg(long, value_name = "CHANGE_ID", conflicts_with = "all")]
    pub to: Option<String>,
    /// Undo every kept change, back to the pre-tuning state
    #[arg(long)]
    pub all: bool,
    /// Print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Undo everything (--all) without asking
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DeployArgs {
    #[command(subcommand)]
    pub action: Option<DeployAction>,
    /// Compose service name or container name
    #[arg(required = true)]
    pub service: Option<String>,
    /// New CPU limit in cores (0.1-16.0), e.g. 1.5 (or --cpus)
    #[arg(
        value_name = "CPUS",
        required_unless_present_any = ["cpus", "memory"],
        conflicts_with_all = ["cpus", "memory"]
    )]
    pub cpus_arg: Option<String>,
    /// New memory limit (64M-32G), e.g. 768M, 1.5G, 512m (or --memory)
    #[arg(
        value_name = "MEMORY",
        required_unless_present_any = ["cpus", "memory"],
        conflicts_with_all = ["cpus", "memory"]
    )]
    pub memory_arg: Option<String>,
    /// New CPU limit, Docker's flag name: same as the CPUS argument
    #[arg(long, value_name = "CPUS", requires = "memory")]
    pub cpus: Option<String>,
    /// New memory limit, Docker's flag name: same as the MEMORY argument
    #[arg(long, value_name = "MEMORY", requires = "cpus")]
    pub memory: Option<String>,
    #[command(flatten)]
    pub options: DeployOptions,
}

#[derive(Debug, Args, Clone)]
pub struct DeployOptions {
    /// Print the whole plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Give up on green becoming healthy after this long
    #[arg(long, default_value = "120s", value_name = "DURATION")]
    pub health_timeout: String,
    /// Time between health probes
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub health_interval: String,
    /// Longest wait for blue's in-flight requests to finish
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub drain: String,
    /// blue-green (new container, zero downtime) or in-place (live update, no restart)
    #[arg(long, value_enum, default_value_t = Strategy::BlueGreen)]
    pub strategy: Strategy,
    /// Compose project the service belongs to, when several are running
    #[arg(long)]
    pub project: Option<String>,
    /// HTTP health path for a green without a Docker healthcheck (else the `tuner.health.path` label)
    #[arg(long, value_name = "PATH", requires = "health_port")]
    pub health_path: Option<String>,
    /// Container port for --health-path (else the `tuner.health.port` label)
    #[arg(long, value_name = "PORT", requires = "health_path")]
    pub health_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    BlueGreen,
    InPlace,
}

#[derive(Debug, Subcommand)]
pub enum DeployAction {
    /// Live containers, limits, health and the last deploys of a service
    Status {
        service: String,
        #[arg(long)]
        project: Option<String>,
    },
    /// Return a service to its previous limits through the same blue-green path
    Rollback {
        service: String,
        #[command(flatten)]
        options: DeployOptions,
    },
}
