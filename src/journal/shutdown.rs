//! The one injected shutdown every action obeys.

use tokio::sync::watch;

/// Interrupt count, injected so tests pass their own (the CLI feeds it from
/// Ctrl-C). Every action reads it the same way: the first interrupt finishes
/// or undoes the open step (a tune change is rolled back, a swap is handed
/// to recovery) and starts nothing new; the second aborts even that,
/// leaving the journal for the next run to recover.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<u32>,
}

#[derive(Debug, Clone)]
pub struct Trigger {
    tx: watch::Sender<u32>,
}

impl Trigger {
    pub fn interrupt(&self) {
        self.tx.send_modify(|n| *n += 1);
    }
}

impl Shutdown {
    pub fn new() -> (Trigger, Shutdown) {
        let (tx, rx) = watch::channel(0);
        (Trigger { tx }, Shutdown { rx })
    }

    pub fn count(&self) -> u32 {
        *self.rx.borrow()
    }

    /// Resolves once `n` interrupts have arrived; never if the trigger is gone.
    pub async fn reached(&mut self, n: u32) {
        loop {
            if *self.rx.borrow_and_update() >= n {
                return;
            }
            if self.rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
