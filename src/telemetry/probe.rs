//! The `/probe` endpoint's telemetry: the answer (one cycle's metrics in the Prometheus text
//! format, blackbox_exporter's names, never the global registry) and the requests counter.

use std::collections::BTreeSet;
use std::fmt::Write;

use metrics::counter;
use metrics_exporter_prometheus::formatting::{sanitize_label_value, write_help_line, write_type_line};

use super::catalogue::{self as m, MetricDef};
use crate::runner::once::OnceOutcome;
use crate::runner::{NotificationOutcome, StepResult};

/// The `step` of a notification that did not arrive.
pub const NOTIFICATION_STEP: &str = "notification";
/// The `step` of a probe that ran out of time.
pub const DEADLINE_STEP: &str = "deadline";

/// How a `/probe` request ended (the closed `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    Ok,
    Refused,
    Busy,
    BadRequest,
}

impl RequestOutcome {
    pub const ALL: [RequestOutcome; 4] =
        [RequestOutcome::Ok, RequestOutcome::Refused, RequestOutcome::Busy, RequestOutcome::BadRequest];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Refused => "refused",
            RequestOutcome::Busy => "busy",
            RequestOutcome::BadRequest => "bad_request",
        }
    }
}

/// Every outcome's series from the start (zeros, not gaps).
pub fn requests_registered() {
    for outcome in RequestOutcome::ALL {
        counter!(m::PROBE_REQUESTS.name, "outcome" => outcome.as_str()).increment(0);
    }
}

pub fn request_answered(outcome: RequestOutcome) {
    counter!(m::PROBE_REQUESTS.name, "outcome" => outcome.as_str()).increment(1);
}

/// The answer to a `/probe` request: the cycle's metrics in the Prometheus text format. Every
/// label value is from a closed set (method names, `ErrorType`, known protocol revisions).
pub fn render(probe: &OnceOutcome) -> String {
    let outcome = &probe.outcome;
    let stateless = outcome.stateless();
    // Steps in the order they first ran; a step that ran twice (initialize after a lost
    // session, the notification's tools/call) sums its time.
    let mut durations: Vec<(&'static str, f64)> = Vec::new();
    let mut errors: BTreeSet<(&'static str, &'static str)> = BTreeSet::new();
    for step in &outcome.steps {
        let name = step.operation.method_name(stateless);
        match &step.result {
            StepResult::Skipped(_) => continue,
            StepResult::Failed { error_type, .. } => {
                errors.insert((name, error_type.as_str()));
            }
            StepResult::Success => {}
        }
        match durations.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += step.latency.as_secs_f64(),
            None => durations.push((name, step.latency.as_secs_f64())),
        }
    }
    if outcome.notification == Some(NotificationOutcome::Missed) {
        errors.insert((NOTIFICATION_STEP, crate::mcp::ErrorType::Timeout.as_str()));
    }
    if probe.deadline_exceeded {
        errors.insert((DEADLINE_STEP, crate::mcp::ErrorType::Timeout.as_str()));
    }

    let mut out = String::new();
    family(&mut out, &m::PROBE_ENDPOINT_SUCCESS, &[(&[], if probe.success() { 1.0 } else { 0.0 })]);
    family(&mut out, &m::PROBE_ENDPOINT_DURATION, &[(&[], outcome.duration.as_secs_f64())]);
    let steps: Vec<([&str; 1], f64)> = durations.iter().map(|(n, d)| ([*n], *d)).collect();
    family(&mut out, &m::PROBE_ENDPOINT_STEP_DURATION, &steps.iter().map(|(l, d)| (&l[..], *d)).collect::<Vec<_>>());
    let errors: Vec<[&str; 2]> = errors.iter().map(|(step, class)| [*step, *class]).collect();
    family(&mut out, &m::PROBE_ENDPOINT_ERROR, &errors.iter().map(|l| (&l[..], 1.0)).collect::<Vec<_>>());
    if let Some(NotificationOutcome::Delivered(latency)) = outcome.notification {
        family(&mut out, &m::PROBE_ENDPOINT_NOTIFICATION_LATENCY, &[(&[], latency.as_secs_f64())]);
    }
    if outcome.server.is_some() {
        let version = super::labels::protocol_version(outcome.protocol_version());
        family(&mut out, &m::PROBE_ENDPOINT_MCP_INFO, &[(&[version], 1.0)]);
    }
    out
}

/// One family: its help and type lines and a sample per label values (in `def.labels` order);
/// nothing when there is no sample.
fn family(out: &mut String, def: &MetricDef, samples: &[(&[&str], f64)]) {
    if samples.is_empty() {
        return;
    }
    write_help_line(out, def.name, None, None, def.help);
    write_type_line(out, def.name, None, None, "gauge");
    for (values, value) in samples {
        out.push_str(def.name);
        if !values.is_empty() {
            let labels: Vec<String> = def
                .labels
                .iter()
                .zip(values.iter())
                .map(|(k, v)| format!("{k}=\"{}\"", sanitize_label_value(v)))
                .collect();
            let _ = write!(out, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(out, " {value}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::mcp::{ErrorType, ServerInfo};
    use crate::runner::{Operation, ProbeOutcome, StepOutcome};

    fn step(operation: Operation, result: StepResult, ms: u64) -> StepOutcome {
        StepOutcome {
            operation,
            tool: None,
            tool_picked: false,
            result,
            latency: Duration::from_millis(ms),
            started_at: SystemTime::now(),
            session_id: None,
            http_version: None,
            span_id: None,
            detail: "server text: never a label".into(),
        }
    }

    #[test]
    fn a_passing_cycle_renders_success_steps_and_version() {
        let server = ServerInfo { protocol_version: "2025-11-25".into(), ..Default::default() };
        let outcome = ProbeOutcome {
            steps: vec![
                step(Operation::Connect, StepResult::Success, 20),
                step(Operation::ToolsList, StepResult::Success, 5),
                step(Operation::ToolsCall, StepResult::Success, 3),
                step(Operation::ToolsCall, StepResult::Success, 4),
                step(Operation::PromptsList, StepResult::Skipped(crate::runner::SkipReason::NotOffered), 0),
            ],
            duration: Duration::from_millis(40),
            server: Some(server),
            notification: Some(NotificationOutcome::Delivered(Duration::from_millis(2))),
            ..Default::default()
        };
        let text = render(&OnceOutcome { outcome, deadline_exceeded: false });
        assert!(text.contains("# TYPE probe_success gauge\nprobe_success 1\n"), "{text}");
        assert!(text.contains("probe_duration_seconds 0.04\n"), "{text}");
        assert!(text.contains("probe_step_duration_seconds{step=\"initialize\"} 0.02\n"), "{text}");
        assert!(text.contains("probe_step_duration_seconds{step=\"tools/call\"} 0.007\n"), "summed: {text}");
        assert!(!text.contains("step=\"prompts/list\""), "skipped steps have no duration: {text}");
        assert!(!text.contains("probe_error_info"), "{text}");
        assert!(text.contains("probe_notification_latency_seconds 0.002\n"), "{text}");
        assert!(text.contains("probe_mcp_info{mcp_protocol_version=\"2025-11-25\"} 1\n"), "{text}");
    }

    #[test]
    fn failures_render_bounded_error_classes() {
        let server = ServerInfo { protocol_version: "\"}\n2099-evil".into(), ..Default::default() };
        let failed = StepResult::Failed { error_type: ErrorType::Http5xx, rpc_code: None, http_status: Some(503) };
        let outcome = ProbeOutcome {
            steps: vec![step(Operation::Connect, StepResult::Success, 1), step(Operation::ToolsList, failed, 2)],
            server: Some(server),
            notification: Some(NotificationOutcome::Missed),
            ..Default::default()
        };
        let text = render(&OnceOutcome { outcome, deadline_exceeded: false });
        assert!(text.contains("probe_success 0\n"), "{text}");
        assert!(text.contains("probe_error_info{step=\"tools/list\",error_type=\"http_5xx\"} 1\n"), "{text}");
        assert!(text.contains("probe_error_info{step=\"notification\",error_type=\"timeout\"} 1\n"), "{text}");
        assert!(text.contains("probe_mcp_info{mcp_protocol_version=\"other\"} 1\n"), "{text}");
        assert!(!text.contains("evil") && !text.contains("server text"), "{text}");

        let text = render(&OnceOutcome {
            outcome: ProbeOutcome { duration: Duration::from_secs(3), ..Default::default() },
            deadline_exceeded: true,
        });
        assert!(text.contains("probe_success 0\n") && text.contains("probe_duration_seconds 3\n"), "{text}");
        assert!(text.contains("probe_error_info{step=\"deadline\",error_type=\"timeout\"} 1\n"), "{text}");
        assert!(!text.contains("probe_mcp_info") && !text.contains("probe_step_duration_seconds"), "{text}");
    }

    #[test]
    fn a_failed_connect_is_named_by_the_pinned_era() {
        let failed = StepResult::Failed { error_type: ErrorType::Connect, rpc_code: None, http_status: None };
        let outcome = ProbeOutcome {
            steps: vec![step(Operation::Connect, failed, 1)],
            pinned_stateless: true,
            ..Default::default()
        };
        let text = render(&OnceOutcome { outcome, deadline_exceeded: false });
        assert!(text.contains("probe_error_info{step=\"server/discover\",error_type=\"connect\"} 1\n"), "{text}");
        assert!(text.contains("probe_step_duration_seconds{step=\"server/discover\"} 0.001\n"), "{text}");
    }
}
