//! What applying a change will do, built before anything changes: printed
//! by `--dry-run`, executed step by step by the real run.

use serde::Serialize;

use super::catalog::{Context, SettingInfo};
use super::value::Validated;

/// How a written setting becomes effective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `pg_reload_conf()`; sessions stay connected.
    Reload,
    /// A server restart through the configured restarter.
    Restart,
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Activation::Reload => "reload",
            Activation::Restart => "restart",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PlanAction {
    Set(Validated),
    Reset,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub name: String,
    pub action: PlanAction,
    /// The exact statement that will run.
    pub sql: String,
    pub activation: Activation,
    pub context: Context,
    /// The setting as it is now.
    pub current: SettingInfo,
    /// Who restarts the server, when `activation` is `Restart`.
    pub restarter: Option<String>,
    /// Things the user should know (an allowed unsafe value, a value that
    /// only new sessions will see).
    pub warnings: Vec<String>,
}

impl Plan {
    /// The steps in order, one line each, as `--dry-run` prints them.
    pub fn steps(&self) -> Vec<String> {
        let mut steps = vec![self.sql.clone()];
        match self.activation {
            Activation::Reload => {
                steps.push(
                    "SELECT pg_reload_conf(), then wait until pg_conf_load_time() moves".into(),
                );
            }
            Activation::Restart => {
                steps.push("save postgresql.auto.conf (pg_read_binary_file) to restore it if the restart fails".into());
                steps.push(format!(
                    "restart PostgreSQL via {} and wait until it accepts queries",
                    self.restarter.as_deref().unwrap_or("?")
                ));
            }
        }
        let target = match &self.action {
            PlanAction::Set(v) => {
                let unit = self.current.unit.as_deref().map(|u| format!(" ({u})"));
                let unit = unit.unwrap_or_default();
                format!(
                    "confirm {} = {}{unit} in pg_settings",
                    self.name, v.normalized
                )
            }
            PlanAction::Reset => format!(
                "confirm {} no longer comes from postgresql.auto.conf",
                self.name
            ),
        };
        steps.push(target);
        steps
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} (context {}, now {}): {}",
            self.name,
            self.context,
            self.current.human_value(),
            self.activation
        )?;
        for (i, step) in self.steps().iter().enumerate() {
            writeln!(f, "  {}. {step}", i + 1)?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        Ok(())
    }
}

/// A change that was applied and confirmed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    pub name: String,
    pub sql: String,
    pub activation: Activation,
    pub previous: SettingInfo,
    pub current: SettingInfo,
}

impl Applied {
    /// The plan, carried out: `current` is the setting read back after it.
    pub fn confirmed(plan: Plan, current: SettingInfo) -> Applied {
        Applied {
            name: plan.name,
            sql: plan.sql,
            activation: plan.activation,
            previous: plan.current,
            current,
        }
    }
}
