//! Waiting on HAProxy: polling `show stat` until a server reaches a state,
//! with a deadline and a tolerance for the odd slow exchange, and retrying
//! `del server` while HAProxy still holds connections.

use std::time::{Duration, Instant};

use super::{HaproxyError, HaproxyRouter, ServerStat};
use crate::deploy::router::RouterError;

/// `timeout` from now. Config and flags cap timeouts; a larger one (built
/// in code) saturates instead of panicking on `Instant` overflow.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + crate::config::units::MAX_DURATION)
}

/// Failed exchanges in a row that a poll tolerates before giving up.
const MAX_TRANSIENT: u32 = 3;

impl HaproxyRouter {
    /// Polls `show stat` until `done` holds for `name` or `timeout` passes.
    /// `done` sees `None` when the server is not in the backend.
    pub(super) async fn poll(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(Option<&ServerStat>) -> Result<bool, String>,
    ) -> Result<Option<ServerStat>, RouterError> {
        let deadline = deadline_after(timeout);
        let mut transient = 0;
        loop {
            let seen = match self.find(name).await {
                Ok(seen) => {
                    transient = 0;
                    seen
                }
                // One slow or refused exchange on a busy machine (or during an
                // HAProxy reload) must not abort a swap; a lasting one must.
                Err(e)
                    if e.is_transient()
                        && transient < MAX_TRANSIENT
                        && Instant::now() < deadline =>
                {
                    transient += 1;
                    tracing::debug!(error = %e, transient, "HAProxy did not answer; polling again");
                    tokio::time::sleep(self.config.poll_interval).await;
                    continue;
                }
                Err(e) => return Err(self.error(e)),
            };
            match done(seen.as_ref()) {
                Ok(true) => return Ok(seen),
                Ok(false) => {}
                Err(reason) => {
                    return Err(RouterError::Failed {
                        router: self.label(),
                        action: what.to_string(),
                        reason,
                    })
                }
            }
            if Instant::now() >= deadline {
                let last = match &seen {
                    Some(s) => format!(" (last seen: {})", s.describe()),
                    None => " (server not in the backend)".to_string(),
                };
                return Err(self.error(HaproxyError::Timeout {
                    what: what.to_string(),
                    timeout,
                    last,
                }));
            }
            tokio::time::sleep(
                self.config
                    .poll_interval
                    .min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
    }

    /// Waits for no session on `name`, then the grace, then checks again
    /// (a request may have been on its way).
    pub(super) async fn wait_idle(&self, name: &str, timeout: Duration) -> Result<(), RouterError> {
        let start = Instant::now();
        let what = format!(
            "the in-flight requests of {}/{name} to finish",
            self.config.backend
        );
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            self.poll(name, &what, left, |s| {
                Ok(s.is_none_or(|s| s.in_flight() == 0))
            })
            .await?;
            tokio::time::sleep(self.config.drain_grace).await;
            match self.find(name).await.map_err(|e| self.error(e))? {
                Some(s) if s.in_flight() > 0 && start.elapsed() < timeout => continue,
                Some(s) if s.in_flight() > 0 => {
                    return Err(self.error(HaproxyError::Timeout {
                        what,
                        timeout,
                        last: format!(" (last seen: {})", s.describe()),
                    }))
                }
                _ => return Ok(()),
            }
        }
    }

    /// `del server`, retried while HAProxy still holds connections to it.
    /// `Ok(false)` when the server was already gone.
    pub(super) async fn delete(&self, slot: &str) -> Result<bool, RouterError> {
        let command = format!("del server {slot}");
        let deadline = deadline_after(self.config.retire_timeout);
        loop {
            match self.api.run(&command).await {
                Ok(_) => return Ok(true),
                Err(e)
                    if e.rejection()
                        .is_some_and(|m| m.starts_with("No such server")) =>
                {
                    return Ok(false)
                }
                Err(e)
                    if e.rejection()
                        .is_some_and(|m| m.contains("still has connections"))
                        && Instant::now() < deadline =>
                {
                    tracing::debug!(slot, "server still has connections; retrying del server");
                    tokio::time::sleep(self.config.poll_interval).await;
                }
                Err(e) => return Err(self.error(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_timeout_saturates_instead_of_panicking() {
        let before = Instant::now();
        let far = deadline_after(Duration::MAX);
        assert!(far >= before + crate::config::units::MAX_DURATION);
        assert!(deadline_after(Duration::from_secs(1)) <= Instant::now() + Duration::from_secs(1));
    }
}
