//! The progress bar on stderr during settle/observe windows. indicatif hides
//! it when stderr is not a terminal, so piped output stays clean.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::ports::Progress;

use crate::metrics::Sample;

#[derive(Default)]
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bar {
    fn with<R>(&self, f: impl FnOnce(&mut Option<ProgressBar>) -> R) -> R {
        // A poisoned lock only means a panic elsewhere; the bar is cosmetic.
        let mut guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

impl Progress for Bar {
    fn phase(&self, message: &str) {
        tracing::info!("{message}");
        self.with(|bar| {
            if let Some(b) = bar {
                b.set_message(message.to_string());
            }
        });
    }

    fn observing(&self, total: u64) {
        let style = ProgressStyle::with_template(
            "observing [{bar:30}] {pos}/{len} samples {elapsed_precise} (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(style);
        self.with(|bar| *bar = Some(b));
    }

    fn sampled(&self, done: u64, _: &Sample) {
        self.with(|bar| {
            if let Some(b) = bar {
                b.set_position(done);
            }
        });
    }

    fn done(&self) {
        self.with(|bar| {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        });
    }
}
