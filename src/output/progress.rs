//! Renders the core's event stream (`journal::Event`) on stderr: for
//! humans, a bar for counted waits and a spinner for open-ended ones, which
//! indicatif hides when stderr is not a terminal so piped output stays
//! clean; for machines (`--output json`), one JSON object per line, stamped
//! with the time. stdout carries only the command's result.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::OutputFormat;
use crate::journal::{Event, Events};

/// The renderer for `format`; nothing at all under `--quiet`.
pub fn for_format(format: OutputFormat) -> Box<dyn Events> {
    if super::term::quiet() {
        return Box::new(crate::journal::Silent);
    }
    match format {
        OutputFormat::Table => Box::new(Human::default()),
        OutputFormat::Json => Box::new(JsonLines),
    }
}

/// Bars and spinners on stderr; each step is also logged through tracing.
#[derive(Default)]
pub struct Human {
    bar: Mutex<Option<ProgressBar>>,
}

impl Human {
    fn with<R>(&self, f: impl FnOnce(&mut Option<ProgressBar>) -> R) -> R {
        // A poisoned lock only means a panic elsewhere; the bar is cosmetic.
        let mut guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// The template of a counted wait: samples, or seconds for a timed one.
fn counted_template(unit: Option<&str>) -> String {
    let unit = match unit {
        Some("s") => "s",
        Some(_) => "",
        None => " samples",
    };
    format!(
        "{{prefix}} [{{bar:30}}] {{pos}}/{{len}}{unit} {{elapsed_precise}} (eta {{eta}}) {{msg}}"
    )
}

fn bar(what: &str, total: Option<u64>, unit: Option<&str>) -> ProgressBar {
    let caps = super::term::caps();
    // A dumb terminal cannot move the cursor back: a bar would print a new
    // line at every tick. The steps still reach the log.
    let draw = if caps.animate {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    match total {
        Some(total) => {
            let style = ProgressStyle::with_template(&counted_template(unit))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            // `what` goes in as the prefix, never into the template, where
            // a brace would be read as a key.
            let b = ProgressBar::with_draw_target(Some(total), draw).with_style(style);
            b.set_prefix(what.to_string());
            // Position moves once per poll (up to a sample interval apart);
            // the tick keeps the elapsed time moving in between.
            b.enable_steady_tick(Duration::from_millis(500));
            b
        }
        None => {
            let b = ProgressBar::with_draw_target(None, draw);
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                b.set_style(if caps.unicode {
                    style
                } else {
                    style.tick_chars("|/-\\ ")
                });
            }
            b.set_message(what.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        }
    }
}

impl Events for Human {
    fn emit(&self, event: Event) {
        match event {
            Event::Step { message } => {
                tracing::info!("{message}");
                self.with(|bar| {
                    if let Some(b) = bar {
                        b.set_message(message);
                    }
                });
            }
            Event::Waiting { what, total, unit } => {
                let b = bar(&what, total, unit.as_deref());
                self.with(|slot| {
                    if let Some(old) = slot.replace(b) {
                        old.finish_and_clear();
                    }
                });
            }
            Event::Advanced { done } => self.with(|bar| {
                if let Some(b) = bar {
                    b.set_position(done);
                }
            }),
            Event::Finished => self.with(|bar| {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }),
        }
    }
}

/// One JSON object per event on stderr.
pub struct JsonLines;

impl Events for JsonLines {
    fn emit(&self, event: Event) {
        let mut line = serde_json::json!({ "at": chrono::Utc::now().to_rfc3339() });
        if let (Some(map), Ok(serde_json::Value::Object(fields))) =
            (line.as_object_mut(), serde_json::to_value(&event))
        {
            map.extend(fields);
        }
        // Progress is best effort: a closed stderr must not stop the action.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_templates_parse_for_samples_and_seconds() {
        for unit in [None, Some("s")] {
            let t = counted_template(unit);
            assert!(ProgressStyle::with_template(&t).is_ok(), "{t}");
        }
        assert!(counted_template(Some("s")).contains("{pos}/{len}s "));
        assert!(counted_template(None).contains("{pos}/{len} samples "));
    }

    #[test]
    fn a_wait_named_with_braces_keeps_its_name() {
        let b = bar("waiting for {x}", Some(3), Some("s"));
        assert_eq!(b.prefix(), "waiting for {x}");
        b.finish_and_clear();
    }
}
