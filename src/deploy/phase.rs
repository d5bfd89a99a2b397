//! The phases of a blue-green swap, in order.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Inspect blue, record its limits.
    Prepare,
    /// Create and start green with the new limits.
    CreateGreen,
    /// Wait for green to be healthy.
    Health,
    /// Give green traffic through the router.
    Switch,
    /// The promotion gate: SLO checks read from Prometheus while green
    /// serves beside blue (only when `deploy.analysis` is set).
    Analysis,
    /// Stop new traffic to blue, let in-flight requests finish.
    Drain,
    /// Stop blue gracefully.
    StopBlue,
    /// Remove blue. From here on the swap can only go forward.
    RemoveBlue,
    /// Give green blue's name.
    Rename,
    /// Write the new limits into docker-compose.override.yml.
    Persist,
    /// Read the limits back.
    Verify,
    /// In-place strategy: live update of the running container.
    LiveUpdate,
    /// Swarm: the service update is written and followed.
    ServiceUpdate,
    /// Swarm: its rollback to the previous spec is asked for and followed.
    ServiceRollback,
}

impl Phase {
    pub const SWAP: [Phase; 10] = [
        Phase::Prepare,
        Phase::CreateGreen,
        Phase::Health,
        Phase::Switch,
        Phase::Drain,
        Phase::StopBlue,
        Phase::RemoveBlue,
        Phase::Rename,
        Phase::Persist,
        Phase::Verify,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::CreateGreen => "create-green",
            Phase::Health => "health",
            Phase::Switch => "switch",
            Phase::Analysis => "analysis",
            Phase::Drain => "drain",
            Phase::StopBlue => "stop-blue",
            Phase::RemoveBlue => "remove-blue",
            Phase::Rename => "rename",
            Phase::Persist => "persist",
            Phase::Verify => "verify",
            Phase::LiveUpdate => "live-update",
            Phase::ServiceUpdate => "service-update",
            Phase::ServiceRollback => "service-rollback",
        }
    }

    pub fn parse(name: &str) -> Option<Phase> {
        Phase::SWAP
            .into_iter()
            .chain([
                Phase::Analysis,
                Phase::LiveUpdate,
                Phase::ServiceUpdate,
                Phase::ServiceRollback,
            ])
            .find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
