//! `tuner deploy status SERVICE`: live containers, limits, health and the
//! last deploys.

use serde::Serialize;

use super::record::History;
use super::recover::Recovered;
use crate::runtime::Container;

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub service: String,
    /// PID of a deploy of this service running right now.
    pub in_progress: Option<String>,
    pub recovered: Option<Recovered>,
    pub containers: Vec<Container>,
    pub deploys: Vec<History>,
}
