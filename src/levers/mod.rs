//! Levers: the catalog (`config/levers.yaml`), the choice of the cheapest
//! untried lever for a symptom, the `LeverBackend` port, and one backend per
//! lever kind (PostgreSQL, container, env file, command).

pub mod backends;
pub mod catalog;
pub mod choose;
pub mod port;

#[cfg(test)]
pub(crate) mod fakes;

pub use catalog::{Catalog, Cost, Lever, Symptom, Target};
pub use port::{BackendError, Disruption, LeverBackend, Move, Plan};
