//! Ctrl-C, turned into the one injected `Shutdown` every action obeys: the
//! first finishes or undoes the open step (a tune change is rolled back, a
//! swap is handed to recovery), the second aborts even that (the journal
//! keeps it for the next run), a third exits at once.

use crate::journal::{Shutdown, Trigger};

/// What each interrupt tells the user, per action.
pub struct Messages {
    pub first: &'static str,
    pub third: &'static str,
}

pub const TUNE: Messages = Messages {
    first: "interrupt: rolling back the open change (press Ctrl-C again to abort)",
    third: "interrupted three times: exiting now; the next `tuner tune` or `tuner rollback` restores any open change",
};

pub const DEPLOY: Messages = Messages {
    first: "interrupted: finishing or undoing the swap so one healthy container serves (Ctrl-C again to abort)",
    third: "interrupted three times: exiting now; the next `tuner deploy` or `tuner deploy status` finishes or undoes the swap",
};

/// A `Shutdown` fed by Ctrl-C, saying `messages` as interrupts arrive.
pub fn from_ctrl_c(messages: Messages) -> Shutdown {
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        let mut seen = 0u32;
        while tokio::signal::ctrl_c().await.is_ok() {
            escalate(&mut seen, &messages, &trigger);
        }
    });
    shutdown
}

pub const WATCH: Messages = Messages {
    first: "stopping: finishing the adjustment in flight, starting no new one (again to abort)",
    third: "interrupted three times: exiting now; the next `tuner watch` finishes or undoes any open adjustment",
};

/// Like [`from_ctrl_c`], for a daemon: SIGTERM (a service manager's stop)
/// counts as Ctrl-C does.
pub fn from_signals(messages: Messages) -> Shutdown {
    use tokio::signal::unix::{signal, SignalKind};
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!(
                "cannot listen for SIGINT/SIGTERM; stop with SIGKILL (the journal recovers)"
            );
            return;
        };
        let mut seen = 0u32;
        loop {
            tokio::select! {
                Some(()) = int.recv() => {}
                Some(()) = term.recv() => {}
                else => return,
            }
            escalate(&mut seen, &messages, &trigger);
        }
    });
    shutdown
}

/// One more interrupt: the first says what will happen, every one but the
/// third asks the action to stop (it escalates on the second), the third
/// exits at once.
fn escalate(seen: &mut u32, messages: &Messages, trigger: &Trigger) {
    *seen += 1;
    if *seen >= 3 {
        eprintln!("{}", messages.third);
        std::process::exit(130);
    }
    if *seen == 1 {
        eprintln!("{}", messages.first);
    }
    trigger.interrupt();
}
