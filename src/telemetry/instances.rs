//! Metrics of balanced targets: per-replica probes, session affinity, cross-instance delivery.

use metrics::{counter, gauge, histogram};

use super::catalogue as m;
use crate::runner::instances::{InstancesOutcome, Route, tally};
use crate::runner::{ProbeOutcome, StepResult};

/// Series every replica has from the start (zeros, not gaps).
pub fn replica_registered(target: &str, replica: &str) {
    for outcome in ["success", "failure"] {
        counter!(m::REPLICA_PROBES.name, "target" => target.to_string(), "replica" => replica.to_string(),
            "outcome" => outcome)
        .increment(0);
    }
}

/// Series of a balanced target's checks that exist from the start.
pub fn checks_registered(target: &str) {
    for route in Route::ALL {
        counter!(m::INSTANCE_DELIVERY_EXPECTED.name, "target" => target.to_string(), "route" => route.as_str())
            .increment(0);
        counter!(m::INSTANCE_DELIVERY_RECEIVED.name, "target" => target.to_string(), "route" => route.as_str())
            .increment(0);
    }
}

/// Record one probe cycle against a replica's own URL.
pub fn replica_probe_completed(target: &str, replica: &str, outcome: &ProbeOutcome) {
    let (t, r) = (|| target.to_string(), || replica.to_string());
    let stateless = outcome.stateless();
    for step in &outcome.steps {
        let method = step.operation.method_name(stateless);
        let (result, error_type) = match &step.result {
            StepResult::Success => ("success", ""),
            StepResult::Failed { error_type, .. } => ("failure", error_type.as_str()),
            StepResult::Skipped(_) => ("skipped", ""),
        };
        if !matches!(step.result, StepResult::Skipped(_)) {
            histogram!(m::REPLICA_OPERATION_DURATION.name, "target" => t(), "replica" => r(),
                "mcp_method_name" => method, "error_type" => error_type)
            .record(step.latency.as_secs_f64());
        }
        counter!(m::REPLICA_OPERATIONS.name, "target" => t(), "replica" => r(), "mcp_method_name" => method,
            "outcome" => result, "error_type" => error_type)
        .increment(1);
        if let StepResult::Failed { error_type, .. } = &step.result {
            tracing::warn!(target_name = %target, replica, method, error_type = %error_type, error = %step.detail,
                "Replica probe step failed");
        }
    }
    let success = outcome.success();
    gauge!(m::REPLICA_PROBE_SUCCESS.name, "target" => t(), "replica" => r()).set(if success { 1.0 } else { 0.0 });
    counter!(m::REPLICA_PROBES.name, "target" => t(), "replica" => r(),
        "outcome" => if success { "success" } else { "failure" })
    .increment(1);
}

/// Record the replica checks of one balancer cycle.
pub fn instances_checked(target: &str, outcome: &InstancesOutcome) {
    let t = || target.to_string();
    if let Some(affinity) = &outcome.affinity {
        for req in &affinity.requests {
            let (result, error_type) = match req.error_type {
                None => ("success", ""),
                Some(e) => ("failure", e),
            };
            counter!(m::AFFINITY_REQUESTS.name, "target" => t(), "replica" => req.replica.clone(),
                "outcome" => result, "error_type" => error_type)
            .increment(1);
            if let Some(e) = req.error_type {
                tracing::warn!(target_name = %target, replica = %req.replica, error_type = e, error = %req.detail,
                    "Affinity check request failed");
            }
        }
        gauge!(m::AFFINITY_SUCCESS.name, "target" => t()).set(if affinity.passed() { 1.0 } else { 0.0 });
    }
    if let Some(delivery) = &outcome.delivery {
        for trigger in &delivery.triggers {
            let (result, error_type) = match trigger.error_type {
                None => ("success", ""),
                Some(e) => ("failure", e),
            };
            counter!(m::INSTANCE_DELIVERY_TRIGGERS.name, "target" => t(), "replica" => trigger.replica.clone(),
                "outcome" => result, "error_type" => error_type)
            .increment(1);
        }
        for replica in &delivery.receivers_failed {
            counter!(m::INSTANCE_DELIVERY_RECEIVERS_FAILED.name, "target" => t(), "replica" => replica.clone())
                .increment(1);
            tracing::warn!(target_name = %target, replica = %replica, "Delivery check stream not opened");
        }
        for (route, (expected, received)) in tally(&delivery.deliveries) {
            counter!(m::INSTANCE_DELIVERY_EXPECTED.name, "target" => t(), "route" => route.as_str())
                .increment(expected);
            counter!(m::INSTANCE_DELIVERY_RECEIVED.name, "target" => t(), "route" => route.as_str())
                .increment(received);
            if received < expected {
                tracing::warn!(target_name = %target, route = route.as_str(), expected, received,
                    "Notifications missing in the delivery check");
            }
        }
        for d in &delivery.deliveries {
            if let Some(latency) = d.latency {
                histogram!(m::INSTANCE_DELIVERY_LATENCY.name, "target" => t(), "route" => d.route().as_str())
                    .record(latency.as_secs_f64());
            }
        }
    }
}
