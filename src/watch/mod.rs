//! `tuner watch`: keeps every managed container's limits matched to its
//! real use. Each check reads usage (cgroup files, Prometheus, or Docker
//! stats as a last resort), runs the pure policy (`policy`), and makes the
//! adjustments it decides as journaled steps under the service's lock, the
//! same lock and journal deploy uses (`apply`), or, for services configured
//! for blue-green, through the deploy code's swap (`swap`). What must survive a restart
//! lives in `state`; `/health` and `/metrics` are served by `server`.

pub mod apply;
pub mod cycle;
pub mod policy;
pub mod prometheus;
pub mod server;
pub mod source;
pub mod state;
pub mod swap;

pub use policy::{decide, Adjustment, Decision, Direction, Reading};
pub use state::{ServiceState, WatchState};
