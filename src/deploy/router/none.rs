//! No router in front: the swap only guarantees a healthy container at all times.
//!
//! Without a router, clients reach the service through Docker's DNS: green
//! answers under the same network aliases as soon as it is started, and
//! blue stops answering when it is stopped. So every step is a no-op: the
//! order of the swap (green healthy before blue stops) is what keeps a
//! healthy container serving.

use std::time::Duration;

use async_trait::async_trait;

use super::{Backend, Router, RouterError};

#[derive(Debug, Clone, Copy, Default)]
pub struct NoRouter;

#[async_trait]
impl Router for NoRouter {
    fn kind(&self) -> &'static str {
        "none"
    }

    async fn add_standby(&self, _green: &Backend) -> Result<(), RouterError> {
        Ok(())
    }

    async fn wait_healthy(&self, _green: &Backend, _timeout: Duration) -> Result<(), RouterError> {
        Ok(())
    }

    async fn promote(&self, _green: &Backend) -> Result<(), RouterError> {
        Ok(())
    }

    async fn drain(&self, _blue: &Backend, _timeout: Duration) -> Result<(), RouterError> {
        Ok(())
    }

    async fn retire(&self, _blue: &Backend) -> Result<(), RouterError> {
        Ok(())
    }

    async fn remove(&self, _green: &Backend) -> Result<(), RouterError> {
        Ok(())
    }
}
