//! Notices posted as things land, from a task of their own: the action
//! queues a notice and goes on at once, so neither a slow nor a down
//! Alertmanager holds up a tuning cycle or a watch check. Notices go out
//! one by one, in the order they were queued.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Notice, Notifier};
use crate::config::Config;

/// Failures are warnings on stderr: the run's result stands.
fn warn(e: &super::NotifyError) {
    eprintln!("warning: {e}; the run's result stands");
}

pub struct Queue {
    tx: Option<mpsc::UnboundedSender<Notice>>,
    task: Option<JoinHandle<()>>,
}

impl Queue {
    /// A queue posting to `notify.alertmanager`; one that drops every
    /// notice when it is not configured (or cannot be set up, said once).
    pub fn start(config: &Config) -> Queue {
        let notifier = match Notifier::from_config(config) {
            Ok(Some(n)) => n,
            Ok(None) => return Queue::none(),
            Err(e) => {
                warn(&e);
                return Queue::none();
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Notice>();
        let task = tokio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                if let Err(e) = notifier.post(std::slice::from_ref(&notice)).await {
                    warn(&e);
                }
            }
        });
        Queue {
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// Drops every notice: nothing to announce to, or a dry run.
    pub fn none() -> Queue {
        Queue {
            tx: None,
            task: None,
        }
    }

    pub fn send(&self, notice: Notice) {
        if let Some(tx) = &self.tx {
            // The task only ends after `finish`, so the channel is open.
            let _ = tx.send(notice);
        }
    }

    /// Waits until every queued notice was posted or warned about; each
    /// post is bounded by the client's timeout.
    pub async fn finish(mut self) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
