//! Inspectors: periodic, bounded samplers of the components behind a target (its Redis, its
//! memory). An inspector never panics and never blocks past its own timeout: every failure
//! becomes part of the typed observation it returns. The scheduler owns the loop
//! (`schedule::run_inspector`); the telemetry layer turns observations into metrics.

pub mod memory;
pub mod redis;

use std::future::Future;
use std::time::Duration;

/// A periodic sampler of one component behind a target.
pub trait Inspector: Send {
    /// What one sample saw, failures included.
    type Observation: Send;

    /// The `target` label of everything this inspector observes.
    fn target(&self) -> &str;

    /// Time between samples.
    fn interval(&self) -> Duration;

    /// Take one sample. Must complete within a bounded time (its own timeouts) and never panic.
    fn sample(&mut self) -> impl Future<Output = Self::Observation> + Send;
}
