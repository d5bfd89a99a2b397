//! tuner: keeps a service stack inside its performance SLA.
//!
//! See ARCHITECTURE.md for the module map; data flows config -> metrics ->
//! SLA report -> tune cycle -> appliers -> journal.

pub mod cli;
pub mod commands;
pub mod config;
pub mod crash;
pub mod deploy;
pub mod exit;
pub mod gate;
pub mod journal;
pub mod judge;
pub mod levers;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod postgres;
pub mod resources;
pub mod runtime;
pub mod tune;
pub mod watch;
