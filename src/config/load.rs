//! Reading `tuner.yaml`: one YAML parse, then checks that gather every
//! problem, each reported as `file:line:col: key: problem`.
//! (Over 500 lines with its tests; the code itself is under 400.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::units::Limit;
use super::Config;

pub const DEFAULT_PATH: &str = "config/tuner.yaml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {} not found; pass --config PATH or set TUNER_CONFIG (the default is {DEFAULT_PATH})", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .problems.join("\n"))]
    Invalid { problems: Vec<String> },
}

/// Kept under its old name for the modules that read their YAML files
/// through it (levers, baseline).
pub use super::yaml::parse as parse_yaml;

/// Loads the config from `path` (or the default), applies environment
/// overrides (`TUNER_PG_DSN`, `DOCKER_HOST`), resolves relative paths against
/// the file's folder and validates everything.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    load_as(path, Purpose::All)
}

/// What the loaded config is for: `tuner deploy` needs only the engine,
/// the Compose project, paths and `deploy:`, so a user who only wants
/// zero-downtime re-sizing need not invent a database or SLA metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    All,
    Deploy,
}

/// `load` for `tuner deploy`: `prometheus`, `postgres`, `profile`,
/// `metrics` and `profiles` may be left out, and are not checked.
pub fn load_for_deploy(path: Option<&Path>) -> Result<Config, ConfigError> {
    load_as(path, Purpose::Deploy)
}

fn load_as(path: Option<&Path>, purpose: Purpose) -> Result<Config, ConfigError> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::Missing { path })
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    let env_file = env_file_of(&path, &text);
    let text = super::interpolate::interpolate(&path, &text, env_file.as_deref())
        .map_err(|problems| ConfigError::Invalid { problems })?;
    let mut config = from_str_as(&path, &text, purpose)?;
    if let Ok(dsn) = std::env::var("TUNER_PG_DSN") {
        if !dsn.trim().is_empty() {
            config.postgres.dsn = dsn;
        }
    }
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if !host.trim().is_empty() {
            config.docker.host = Some(host);
        }
    }
    Ok(config)
}

/// The Compose env file named under `compose.env_file`, resolved against the
/// config's folder: `${VAR}` in the config reads it, as docker-compose does.
fn env_file_of(path: &Path, text: &str) -> Option<PathBuf> {
    #[derive(serde::Deserialize)]
    struct Probe {
        compose: Option<ComposeProbe>,
    }
    #[derive(serde::Deserialize)]
    struct ComposeProbe {
        env_file: Option<PathBuf>,
    }
    let probe: Probe = super::yaml::from_str(text).ok()?;
    let file = probe.compose?.env_file?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(if file.is_relative() {
        base.join(file)
    } else {
        file
    })
}

/// Parses and validates config text as if read from `path`; no environment.
pub fn from_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
    from_str_as(path, text, Purpose::All)
}

pub fn from_str_as(path: &Path, text: &str, purpose: Purpose) -> Result<Config, ConfigError> {
    let mut config: Config =
        parse_yaml(path, text).map_err(|p| ConfigError::Invalid { problems: vec![p] })?;
    config.source = path.to_path_buf();
    if purpose == Purpose::All {
        if let Some(key) = missing_sla_section(text) {
            return Err(ConfigError::Invalid {
                problems: vec![format!(
                    "{}:1:1: missing field `{key}` (only `tuner deploy` runs without it)",
                    path.display()
                )],
            });
        }
    }
    let problems = validate(&mut config, path, text, purpose);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid { problems });
    }
    resolve_paths(&mut config);
    Ok(config)
}

/// The first SLA section the text leaves out; serde would have refused it
/// before they got defaults for `tuner deploy`.
fn missing_sla_section(text: &str) -> Option<&'static str> {
    let doc: super::yaml::Value = super::yaml::from_str(text).ok()?;
    ["prometheus", "postgres", "profile", "metrics", "profiles"]
        .into_iter()
        .find(|key| doc.get(*key).is_none())
}

fn validate(config: &mut Config, path: &Path, text: &str, purpose: Purpose) -> Vec<String> {
    let mut problems = Vec::new();
    let at = |keys: &[&str]| locate(path, text, keys);
    if purpose == Purpose::Deploy {
        for (key, d, limit) in durations(config) {
            if let Err(e) = limit.check(&key, d) {
                problems.push(format!("{}: {e}", at(&key.split('.').collect::<Vec<_>>())));
            }
        }
        return problems;
    }

    for (keys, problem) in config.prometheus.problems() {
        problems.push(format!("{}: {problem}", at(&keys)));
    }
    if config.metrics.is_empty() {
        problems.push(format!(
            "{}: metrics: at least one metric is required",
            at(&["metrics"])
        ));
    }
    for (name, metric) in &config.metrics {
        if metric.query.trim().is_empty() {
            problems.push(format!(
                "{}: metrics.{name}.query: empty PromQL",
                at(&["metrics", name, "query"])
            ));
        }
        // Only a rate divided by transactions per second is a quantity per
        // transaction; a latency or a percentage per transaction is noise.
        if metric.per.is_some() && !metric.unit.is_rate() {
            problems.push(format!(
                "{}: metrics.{name}.per: `per: transaction` needs a per-second rate (unit bytes_per_second or ratio), not {}",
                at(&["metrics", name, "per"]),
                metric.unit.name()
            ));
        }
    }
    if !config.profiles.contains_key(&config.profile) {
        let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        problems.push(format!(
            "{}: profile: {:?} is not defined under profiles (defined: {})",
            at(&["profile"]),
            config.profile,
            known.join(", ")
        ));
    }
    for (key, d, limit) in durations(config) {
        if let Err(e) = limit.check(&key, d) {
            problems.push(format!("{}: {e}", at(&key.split('.').collect::<Vec<_>>())));
        }
    }
    if let Some(watch) = &config.watch {
        for (key, problem) in watch.problems() {
            problems.push(format!("{}: watch.{key}: {problem}", at(&["watch", key])));
        }
    }
    let metric_names: Vec<String> = config.metrics.keys().cloned().collect();
    for (profile, objectives) in config.profiles.iter_mut() {
        for (metric, objective) in objectives.iter_mut() {
            let Some(def) = config.metrics.get(metric) else {
                problems.push(format!(
                    "{}: profiles.{profile}.{metric}: no metric named {metric:?} (metrics: {})",
                    at(&["profiles", profile, metric]),
                    metric_names.join(", ")
                ));
                continue;
            };
            if let Err(e) = objective.resolve_unit(def.unit) {
                problems.push(format!(
                    "{}: profiles.{profile}.{metric}: {e}",
                    at(&["profiles", profile, metric])
                ));
            }
        }
    }
    problems
}

/// Every duration of the config with its dotted key and its limit.
fn durations(config: &Config) -> Vec<(String, Duration, Limit)> {
    let mut out = vec![
        (
            "prometheus.timeout".to_string(),
            config.prometheus.timeout,
            Limit::Timeout,
        ),
        (
            "postgres.connect_timeout".to_string(),
            config.postgres.connect_timeout,
            Limit::Timeout,
        ),
    ];
    for (name, metric) in &config.metrics {
        out.push((
            format!("metrics.{name}.window"),
            metric.window,
            Limit::Window,
        ));
    }
    if let Some(tune) = &config.tune {
        for (key, d, limit) in tune.durations() {
            out.push((format!("tune.{key}"), d, limit));
        }
    }
    if let Some(watch) = &config.watch {
        for (key, d, limit) in watch.durations() {
            out.push((format!("watch.{key}"), d, limit));
        }
    }
    let haproxy = config
        .deploy
        .as_ref()
        .and_then(|d| d.router.haproxy.as_ref());
    if let Some(haproxy) = haproxy {
        for (key, d, limit) in haproxy.durations() {
            out.push((format!("deploy.router.haproxy.{key}"), d, limit));
        }
    }
    out
}

fn resolve_paths(config: &mut Config) {
    let base = config.base_dir();
    let resolve = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = normalize(&base.join(&*p));
        }
    };
    let paths = &mut config.paths;
    for p in [
        &mut paths.baseline,
        &mut paths.changelog,
        &mut paths.tuning_log,
        &mut paths.state_dir,
        &mut paths.backups_dir,
        &mut paths.levers,
    ] {
        resolve(p);
    }
    for file in config.prometheus.files_mut() {
        resolve(file);
    }
    if let Some(am) = config.notify.as_mut().and_then(|n| n.alertmanager.as_mut()) {
        for file in am.files_mut() {
            resolve(file);
        }
    }
    if let Some(dir) = &mut config.metrics_textfile_dir {
        resolve(dir);
        // One key serves both: deploy metrics go to the shared folder
        // unless `deploy.metrics_textfile_dir` names its own.
        let deploy = config.deploy.get_or_insert_with(Default::default);
        if deploy.metrics_textfile_dir.is_none() {
            deploy.metrics_textfile_dir = Some(dir.clone());
        }
    }
    if let Some(compose) = &mut config.compose {
        resolve(&mut compose.project_dir);
        if let Some(env) = &mut compose.env_file {
            resolve(env);
        }
    }
}

/// Folds `dir/..` pairs so messages say `baseline.yaml`, not
/// `config/../baseline.yaml`. Purely lexical: config paths are the user's
/// own words, not symlink-resolved.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Finds `file:line:col` of a nested key by walking the YAML text by
/// indentation. Good enough for block-style config; falls back to the file.
pub fn locate(path: &Path, text: &str, keys: &[&str]) -> String {
    let mut min_indent = 0usize;
    let mut found: Option<(usize, usize)> = None;
    let mut lines = text.lines().enumerate();
    'keys: for key in keys {
        for (n, line) in lines.by_ref() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if found.is_some() && indent < min_indent {
                break 'keys;
            }
            let unquoted = trimmed.trim_start_matches(['"', '\'']);
            if indent >= min_indent && unquoted.starts_with(key) {
                let after = unquoted[key.len()..].trim_start_matches(['"', '\'']);
                if after.starts_with(':') {
                    found = Some((n + 1, indent + 1));
                    min_indent = indent + 1;
                    continue 'keys;
                }
            }
        }
        break;
    }
    match found {
        Some((line, col)) => format!("{}:{line}:{col}", path.display()),
        None => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const GOOD: &str = r#"
prometheus:
  url: http://127.0.0.1:9090
  timeout: 5s
postgres:
  dsn: postgresql://postgres:secret@127.0.0.1:5432/app
profile: development
paths:
  baseline: ../baseline.yaml
metrics:
  p95_write_latency:
    query: histogram_quantile(0.95, sum(rate(x_bucket[1m])) by (le))
    unit: milliseconds
    window: 5m
    symptom: high_write_latency
  io_wait:
    query: avg(rate(node_cpu_seconds_total{mode="iowait"}[1m])) * 100
    unit: percent
    window: 2m
profiles:
  development:
    p95_write_latency: "<= 200ms"
    io_wait: "< 25%"
  production:
    p95_write_latency: "<= 1.2x baseline"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        from_str(Path::new("config/tuner.yaml"), text)
    }

    #[test]
    fn good_config_loads_with_units_and_resolved_paths() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.prometheus.timeout, std::time::Duration::from_secs(5));
        assert_eq!(
            c.metrics["io_wait"].window,
            std::time::Duration::from_secs(120)
        );
        assert_eq!(c.objectives()["p95_write_latency"].limit(None), Some(200.0));
        assert_eq!(c.paths.baseline, PathBuf::from("baseline.yaml"));
        assert_eq!(
            c.paths.changelog,
            PathBuf::from("config/CHANGELOG_TUNING.md")
        );
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn malformed_yaml_names_file_line_and_column() {
        let err = parse("prometheus:\n  url: [unclosed\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("config/tuner.yaml:"), "{err}");
        let mut parts = err.split(':');
        parts.next();
        assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{err}");
        assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{err}");
    }

    #[test]
    fn unknown_key_is_named_with_position() {
        let text = GOOD.replace("  timeout: 5s", "  timeout: 5s\n  timout: 5s");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("timout"), "{err}");
        assert!(err.starts_with("config/tuner.yaml:5:"), "{err}");
    }

    #[test]
    fn bad_units_and_references_are_all_reported() {
        let text = GOOD
            .replace("\"< 25%\"", "\"< lots\"")
            .replace("profile: development", "profile: prod")
            .replace(
                "  production:\n    p95_write_latency",
                "  production:\n    p99",
            );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("profiles.development.io_wait"), "{err}");
        assert!(err.contains("config/tuner.yaml:25:"), "{err}");
        assert!(err.contains("profile: \"prod\" is not defined"), "{err}");
        assert!(err.contains("no metric named \"p99\""), "{err}");
    }

    #[test]
    fn bad_duration_is_located() {
        let text = GOOD.replace("window: 2m", "window: 2");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("config/tuner.yaml:17:"), "{err}");
        assert!(err.contains("metrics.io_wait"), "{err}");
        assert!(err.contains("a unit is required"), "{err}");
    }

    #[test]
    fn overlong_durations_name_the_key_and_the_maximum() {
        let text = format!(
            "{GOOD}tune:\n  observe: 100y\n  sample_interval: 2h\ndeploy:\n  router:\n    kind: haproxy\n    haproxy:\n      socket: /s\n      backend: web\n      retire_timeout: 1000000000y\n"
        )
        .replace("window: 2m", "window: 31d");
        let err = parse(&text).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
        let err = err.to_string();
        for expected in [
            "config/tuner.yaml:19:5: metrics.io_wait.window: 31d is longer than the maximum of 30d for a window",
            "config/tuner.yaml:27:3: tune.observe: 36525d is longer than the maximum of 30d for a window",
            "config/tuner.yaml:28:3: tune.sample_interval: 2h is longer than the maximum of 1h for an interval",
            "config/tuner.yaml:35:7: deploy.router.haproxy.retire_timeout: ",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in\n{err}");
        }
        assert!(err.contains("maximum of 1d for a timeout"), "{err}");
    }

    #[test]
    fn deploy_reads_a_config_without_the_sla_sections_the_others_refuse_it() {
        let text = "paths:\n  state_dir: state\ndeploy:\n  router:\n    kind: none\n";
        let path = Path::new("config/tuner.yaml");
        let c = from_str_as(path, text, Purpose::Deploy).unwrap();
        assert_eq!(c.paths.state_dir, PathBuf::from("config/state"));
        let err = from_str(path, text).unwrap_err().to_string();
        assert!(
            err.contains("config/tuner.yaml:1:1: missing field `prometheus`"),
            "{err}"
        );
        // A typo is still an error for a deploy.
        let err = from_str_as(path, "deploy:\n  routr: {}\n", Purpose::Deploy)
            .unwrap_err()
            .to_string();
        assert!(err.contains("routr"), "{err}");
    }

    #[test]
    fn one_textfile_dir_serves_tuner_and_deploy_metrics() {
        let c = parse(&format!("{GOOD}metrics_textfile_dir: ../textfile\n")).unwrap();
        assert_eq!(c.textfile_dir(), Some(PathBuf::from("textfile")));
        let deploy = c.deploy.as_ref().unwrap();
        assert_eq!(deploy.metrics_textfile_dir, Some(PathBuf::from("textfile")));
        assert_eq!(deploy.stateful.len(), 6, "deploy keeps its defaults");
        let own = parse(&format!(
            "{GOOD}metrics_textfile_dir: /a\ndeploy:\n  metrics_textfile_dir: /b\n"
        ))
        .unwrap();
        assert_eq!(own.textfile_dir(), Some(PathBuf::from("/a")));
        assert_eq!(
            own.deploy.unwrap().metrics_textfile_dir,
            Some(PathBuf::from("/b"))
        );
        let only_deploy = parse(&format!("{GOOD}deploy:\n  metrics_textfile_dir: tf\n")).unwrap();
        assert_eq!(only_deploy.textfile_dir(), Some(PathBuf::from("config/tf")));
        assert_eq!(parse(GOOD).unwrap().textfile_dir(), None);
    }

    #[test]
    fn per_transaction_is_for_rates_only() {
        let text = GOOD.replace(
            "    unit: percent\n",
            "    unit: percent\n    per: transaction\n",
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("config/tuner.yaml:19:5: metrics.io_wait.per: `per: transaction` needs a per-second rate"),
            "{err}"
        );
        let text = GOOD.replace(
            "    unit: percent\n",
            "    unit: ratio\n    per: transaction\n",
        );
        let c = parse(&text.replace("\"< 25%\"", "\"< 25\"")).unwrap();
        assert_eq!(
            c.metrics["io_wait"].per,
            Some(super::super::Per::Transaction)
        );
        let err =
            parse(&GOOD.replace("    unit: percent\n", "    unit: ratio\n    per: request\n"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown variant `request`"), "{err}");
    }

    #[test]
    fn guard_margin_is_a_percentage_within_range() {
        let with = |margin: &str| parse(&format!("{GOOD}tune:\n  guard_margin: \"{margin}\"\n"));
        let c = with("25%").unwrap();
        assert_eq!(c.tune.unwrap().guard_margin, 0.25);
        let err = with("150%").unwrap_err().to_string();
        assert!(err.contains("config/tuner.yaml:27:"), "{err}");
        assert!(err.contains("between 0% and 100%, got 150%"), "{err}");
    }

    #[test]
    fn compose_command_is_an_argv_and_an_empty_one_is_located() {
        let with = |command: &str| {
            parse(&format!(
                "{GOOD}compose:\n  project_dir: .\n  project: demo\n{command}"
            ))
        };
        let c = with("  command: [docker, compose]\n").unwrap();
        assert_eq!(
            c.compose.unwrap().command,
            Some(vec!["docker".to_string(), "compose".to_string()])
        );
        assert_eq!(with("").unwrap().compose.unwrap().command, None);
        let err = with("  command: []\n").unwrap_err().to_string();
        assert!(err.starts_with("config/tuner.yaml:"), "{err}");
        assert!(err.contains("must name a program"), "{err}");
    }
}
