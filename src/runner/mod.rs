//! Runners: execute a script against a target and return typed outcomes. They never touch exporters.

pub mod canary;
pub mod instances;
pub mod once;
pub mod outcome;

pub use canary::CanaryProbe;
pub use outcome::{NotificationOutcome, Operation, ProbeOutcome, SkipReason, StepOutcome, StepResult};
