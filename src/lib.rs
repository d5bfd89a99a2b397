//! tuner: keeps a service stack inside its performance SLA.
//!
//! See ARCHITECTURE.md for the module map; data flows config -> metrics ->
//! SLA report -> tune cycle -> appliers -> journal.

pub mod cli;
pub mod commands;
pub mod config;
pub mod deploy;
pub mod docker;
pub mod exit;
pub mod journal;
pub mod metrics;
pub mod output;
pub mod postgres;
pub mod tune;
