//! `tuner alerts`: renders Prometheus rules (and promtool unit tests) from
//! tuner.yaml's SLA profile and the budget file, then writes them
//! atomically, prints them, or with `--dry-run` only lists them.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::context;
use crate::cli::{AlertsArgs, Cli, OutputFormat};
use crate::exit::{self, UsageError};
use crate::gate::alerts::{self, model::Rule, Rendered};
use crate::gate::budget;
use crate::metrics::Baseline;
use crate::output;

pub fn run(cli: &Cli, args: &AlertsArgs) -> anyhow::Result<u8> {
    let config = context::load_config(cli)?;
    let budget_path = match &args.budget {
        Some(p) => Some(p.clone()),
        None => {
            let default = PathBuf::from(budget::DEFAULT_PATH);
            if default.exists() {
                Some(default)
            } else {
                output::note(&format!(
                    "no budget file at {}: alerts for the SLA only (pass --budget PATH for levels and SLOs)",
                    budget::DEFAULT_PATH
                ));
                None
            }
        }
    };
    let inputs = alerts::read_budget(budget_path.as_deref())?;
    let baseline = if args.no_baseline {
        None
    } else {
        Baseline::load(&config.paths.baseline).map_err(UsageError)?
    };
    let rendered = alerts::render(&config, &inputs, baseline.as_ref())?;
    for note in &rendered.notes {
        output::note(note);
    }
    let rules = rendered.rules_yaml()?;
    if args.stdout {
        output::emit_raw(&rules)?;
        return Ok(exit::OK);
    }
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| config.base_dir().join("alerts.yml"));
    let tests = match &args.tests {
        Some(path) => Some((path, rendered.tests_yaml(&rule_file_from(path, &file))?)),
        None => None,
    };
    if !args.dry_run {
        crate::journal::atomic::write_atomic(&file, rules.as_bytes())
            .with_context(|| format!("cannot write the rules {}", file.display()))?;
        if let Some((path, text)) = &tests {
            crate::journal::atomic::write_atomic(path, text.as_bytes())
                .with_context(|| format!("cannot write the unit tests {}", path.display()))?;
        }
    }
    print_summary(cli.output, &rendered, &file, args.dry_run)?;
    Ok(exit::OK)
}

/// How the test file names the rule file: relative to the test file's
/// folder when they share one, absolute otherwise.
fn rule_file_from(tests: &Path, rules: &Path) -> String {
    let folder = |p: &Path| {
        p.parent()
            .map(Path::to_path_buf)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    };
    if folder(tests) == folder(rules) {
        if let Some(name) = rules.file_name() {
            return name.to_string_lossy().into_owned();
        }
    }
    std::path::absolute(rules)
        .unwrap_or_else(|_| rules.to_path_buf())
        .display()
        .to_string()
}

#[derive(serde::Serialize)]
struct Row {
    group: String,
    alert: String,
    tier: String,
    severity: String,
    #[serde(rename = "for")]
    for_: String,
    expr: String,
}

fn print_summary(
    format: OutputFormat,
    rendered: &Rendered,
    file: &Path,
    dry_run: bool,
) -> anyhow::Result<()> {
    let rows: Vec<Row> = rendered
        .rules
        .groups
        .iter()
        .flat_map(|g| {
            g.rules.iter().filter_map(move |r| match r {
                Rule::Alert(a) => Some(Row {
                    group: g.name.clone(),
                    alert: a.alert.clone(),
                    tier: a.labels.get("tier").cloned().unwrap_or_default(),
                    severity: a.labels.get("severity").cloned().unwrap_or_default(),
                    for_: a.for_.clone(),
                    expr: a.expr.clone(),
                }),
                Rule::Record(_) => None,
            })
        })
        .collect();
    if format == OutputFormat::Json {
        output::print_json(&serde_json::json!({
            "file": file,
            "written": !dry_run,
            "alerts": rows,
            "unit_tests": rendered.tests.tests.len(),
        }))?;
        return Ok(());
    }
    let mut table = output::table(&["alert", "tier", "severity", "for", "fires when"]);
    for r in &rows {
        let first = r.expr.lines().next().unwrap_or_default();
        let more = if r.expr.lines().count() > 1 {
            " …"
        } else {
            ""
        };
        table.add_row(vec![
            r.alert.clone(),
            r.tier.clone(),
            r.severity.clone(),
            r.for_.clone(),
            format!("{first}{more}"),
        ]);
    }
    output::emit(&table.to_string())?;
    let verb = if dry_run { "would write" } else { "wrote" };
    output::emit(&format!(
        "{verb} {} alerts to {}",
        rows.len(),
        file.display()
    ))?;
    Ok(())
}
