//! `check URL`: one probe cycle of the default script, a readable verdict, an exit code by class.

use std::time::Duration;

use serde::Serialize;

use crate::config::{RawConfig, RawNotification, RawProbe, RawProbeSettings, RawTarget, TargetConfig};
use crate::mcp::ErrorType;
use crate::mcp::protocol::INVALID_PARAMS;
use crate::runner::{CanaryProbe, NotificationOutcome, Operation, ProbeOutcome, StepResult};
use crate::telemetry::labels::bounded;

/// Flags of `mcp-canary check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// "auto", "2026-07-28", "2025-11-25", "2025-06-18" or "2025-03-26".
    #[arg(long, default_value = "auto")]
    pub protocol: String,
    /// Extra request header "Name: value" (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Read a bearer token from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub bearer_token_env: Option<String>,
    #[command(flatten)]
    pub oauth: crate::config::OAuthFlags,
    /// Tool to call, with --tool-args as a JSON object (default: the first listed tool annotated
    /// readOnlyHint without required arguments; none: no call).
    #[arg(long)]
    pub tool: Option<String>,
    #[arg(long, value_name = "JSON")]
    pub tool_args: Option<String>,
    /// Resource to read (default: the first one listed).
    #[arg(long)]
    pub resource: Option<String>,
    /// Prompt to get, with --prompt-args as a JSON object (default: the first without required arguments).
    #[arg(long)]
    pub prompt: Option<String>,
    #[arg(long, value_name = "JSON")]
    pub prompt_args: Option<String>,
    /// Notification round trip: tool to call, its arguments ({nonce} is replaced) and the method to expect.
    #[arg(long, requires = "notify_method")]
    pub notify_tool: Option<String>,
    #[arg(long, value_name = "JSON")]
    pub notify_args: Option<String>,
    #[arg(long)]
    pub notify_method: Option<String>,
    /// The MCP endpoint, e.g. http://127.0.0.1:8080/mcp.
    pub url: String,
}

/// Exit status of `check`, by failure class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    /// The connection could not be made (refused, TLS, reset, or the connect step timed out),
    /// or it broke (refused, reset) mid-cycle.
    Unreachable,
    AuthRequired,
    ProtocolError,
    /// A step other than tools/call timed out after the connection was made.
    Timeout,
    ToolError,
    /// The tools/call timed out after the connection was made.
    ToolTimeout,
    /// Every step passed but the notification round trip asked for did not arrive in time.
    NotificationMissed,
}

impl Verdict {
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Healthy => 0,
            Verdict::Unreachable => 3,
            Verdict::AuthRequired => 4,
            Verdict::ProtocolError | Verdict::Timeout => 5,
            Verdict::ToolError | Verdict::ToolTimeout => 6,
            Verdict::NotificationMissed => 7,
        }
    }

    /// The verdict for a cycle: its first failure decides; a cycle without failures whose
    /// notification round trip was missed is `notification_missed`.
    pub fn of(outcome: &ProbeOutcome) -> Self {
        let Some(failed) = outcome.first_failure() else {
            return match outcome.notification {
                Some(NotificationOutcome::Missed) => Verdict::NotificationMissed,
                _ => Verdict::Healthy,
            };
        };
        let StepResult::Failed { error_type, rpc_code, .. } = &failed.result else { return Verdict::Healthy };
        match (error_type, failed.operation) {
            // An unknown tool or bad arguments: the spec's -32602, where other servers answer an
            // isError result; the same verdict whichever way the server says it.
            (ErrorType::JsonrpcError, Operation::ToolsCall) if *rpc_code == Some(INVALID_PARAMS) => Verdict::ToolError,
            // A timeout after a successful connect is that step's timeout: the server answered.
            (ErrorType::Timeout, Operation::Connect) => Verdict::Unreachable,
            (ErrorType::Timeout, Operation::ToolsCall) => Verdict::ToolTimeout,
            (ErrorType::Timeout, _) => Verdict::Timeout,
            (ErrorType::Connect | ErrorType::Tls | ErrorType::Reset, _) => Verdict::Unreachable,
            (ErrorType::Auth, _) => Verdict::AuthRequired,
            (ErrorType::ToolError, _) => Verdict::ToolError,
            // A redirect not followed (another origin, a loop, a long chain): the endpoint is
            // not where it is configured, and following it could leak its credentials.
            (ErrorType::Redirect, _) => Verdict::ProtocolError,
            _ => Verdict::ProtocolError,
        }
    }
}

fn json_table(flag: &str, json: &Option<String>) -> anyhow::Result<Option<toml::Table>> {
    json.as_deref()
        .map(|s| {
            let value: serde_json::Value =
                serde_json::from_str(s).map_err(|e| anyhow::anyhow!("--{flag} is not valid JSON: {e}"))?;
            serde_json::from_value::<toml::Table>(value)
                .map_err(|e| anyhow::anyhow!("--{flag} must be a JSON object without nulls: {e}"))
        })
        .transpose()
}

/// Build a validated one-target config from the flags, through the same validation as files.
pub fn target_from_args(args: &CheckArgs) -> anyhow::Result<TargetConfig> {
    let mut headers = std::collections::BTreeMap::new();
    for h in &args.headers {
        let (name, value) =
            h.split_once(':').ok_or_else(|| anyhow::anyhow!("--header must look like \"Name: value\""))?;
        headers.insert(name.trim().to_string(), value.trim().to_string());
    }
    let raw_target = RawTarget {
        interval: args.timeout.max(Duration::from_secs(1)),
        jitter: 0.0,
        settings: RawProbeSettings {
            timeout: Some(args.timeout),
            protocol: args.protocol.clone(),
            session: "fresh".into(),
            headers,
            bearer_token_env: args.bearer_token_env.clone(),
            oauth: args.oauth.raw(),
            probe: RawProbe {
                tool: args.tool.clone(),
                tool_arguments: json_table("tool-args", &args.tool_args)?,
                resource: args.resource.clone(),
                prompt: args.prompt.clone(),
                prompt_arguments: json_table("prompt-args", &args.prompt_args)?,
            },
            notification: match (&args.notify_tool, &args.notify_method) {
                (Some(tool), Some(method)) => Some(RawNotification {
                    tool: tool.clone(),
                    arguments: json_table("notify-args", &args.notify_args)?,
                    method: method.clone(),
                    timeout: Duration::from_secs(5),
                }),
                _ => None,
            },
            ..Default::default()
        },
        ..RawTarget::new("check", args.url.clone())
    };
    let raw = RawConfig { server: Default::default(), targets: vec![raw_target], ..Default::default() };
    let mut config = crate::config::validate(&raw).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config.targets.remove(0))
}

#[derive(Serialize)]
struct StepReport<'a> {
    method: &'a str,
    /// The real name, also of a tool picked from the server's list (bounded; JSON escapes it).
    tool: Option<String>,
    outcome: &'a str,
    error_type: Option<&'a str>,
    rpc_code: Option<i64>,
    http_status: Option<u16>,
    skip_reason: Option<&'a str>,
    latency_ms: f64,
    detail: &'a str,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The machine-readable report.
pub fn json_report(url: &str, outcome: &ProbeOutcome) -> serde_json::Value {
    let stateless = outcome.stateless();
    let steps: Vec<StepReport> = outcome
        .steps
        .iter()
        .map(|s| {
            let (outcome, error_type, rpc_code, http_status, skip_reason) = match &s.result {
                StepResult::Success => ("success", None, None, None, None),
                StepResult::Failed { error_type, rpc_code, http_status } => {
                    ("failure", Some(error_type.as_str()), *rpc_code, *http_status, None)
                }
                StepResult::Skipped(r) => ("skipped", None, None, None, Some(r.as_str())),
            };
            StepReport {
                method: s.operation.method_name(stateless),
                tool: s.tool.as_deref().map(bounded),
                outcome,
                error_type,
                rpc_code,
                http_status,
                skip_reason,
                latency_ms: ms(s.latency),
                detail: &s.detail,
            }
        })
        .collect();
    let verdict = Verdict::of(outcome);
    serde_json::json!({
        "url": url,
        "status": verdict,
        "healthy": verdict == Verdict::Healthy,
        "exit_code": verdict.exit_code(),
        "duration_ms": ms(outcome.duration),
        "server": outcome.server.as_ref().map(|s| serde_json::json!({
            "name": s.name, "version": s.version, "protocol_version": s.protocol_version,
            "stateless": s.stateless, "capabilities": s.capabilities,
        })),
        "inventory": {
            "tools": outcome.inventory.tools,
            "resources": outcome.inventory.resources,
            "prompts": outcome.inventory.prompts,
        },
        "notification": outcome.notification.map(|n| match n {
            NotificationOutcome::Delivered(d) => serde_json::json!({"delivered": true, "latency_ms": ms(d)}),
            NotificationOutcome::Missed => serde_json::json!({"delivered": false}),
        }),
        "steps": steps,
    })
}

/// `value` as pretty JSON with no terminal control character in it, the values kept exact.
/// serde_json escapes C0 controls in strings (ESC, BEL, CR, NUL, ...) but writes DEL and the C1
/// controls (U+0080 to U+009F; U+009B is a one-character CSI) as they are; those are escaped
/// here as `\uXXXX`. Outside strings pretty JSON holds only ASCII punctuation, spaces and
/// newlines, so every other control character found is inside a string.
pub fn terminal_safe_json(value: &serde_json::Value) -> serde_json::Result<String> {
    let raw = serde_json::to_string_pretty(value)?;
    let unsafe_char = |c: char| c.is_control() && c != '\n';
    if !raw.chars().any(unsafe_char) {
        return Ok(raw);
    }
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// The human-readable report.
pub fn text_report(url: &str, outcome: &ProbeOutcome) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "mcp-canary check {url}");
    match &outcome.server {
        Some(s) => {
            let era = if s.stateless { "stateless" } else { "session" };
            let version = if s.version.is_empty() { "(no version)".to_string() } else { bounded(&s.version) };
            let (name, protocol) = (bounded(&s.name), bounded(&s.protocol_version));
            let _ = writeln!(out, "server: {name} {version}, protocol {protocol} ({era})");
        }
        None => {
            let _ = writeln!(out, "server: not connected");
        }
    }
    let stateless = outcome.stateless();
    for s in &outcome.steps {
        let name = match &s.tool {
            Some(t) => format!("{} {}", s.operation.method_name(stateless), bounded(t)),
            None => s.operation.method_name(stateless).to_string(),
        };
        let line = match &s.result {
            StepResult::Success => format!("  ok    {name:<28} {:>9.1} ms", s.latency.as_secs_f64() * 1e3),
            StepResult::Failed { error_type, .. } => {
                let detail = crate::mcp::protocol::printable(&s.detail, 300);
                format!("  FAIL  {name:<28} {:>9.1} ms  {error_type}: {detail}", s.latency.as_secs_f64() * 1e3)
            }
            StepResult::Skipped(r) => format!("  skip  {name:<28} {:>12}  {}", "", r.as_str()),
        };
        let _ = writeln!(out, "{line}");
    }
    let inv = &outcome.inventory;
    let count = |c: Option<usize>| c.map_or("-".to_string(), |c| c.to_string());
    let _ = writeln!(
        out,
        "offers: {} tools, {} resources, {} prompts",
        count(inv.tools),
        count(inv.resources),
        count(inv.prompts)
    );
    match outcome.notification {
        Some(NotificationOutcome::Delivered(d)) => {
            let _ = writeln!(out, "notification: delivered in {:.1} ms", d.as_secs_f64() * 1e3);
        }
        Some(NotificationOutcome::Missed) => {
            let _ = writeln!(out, "notification: NOT received");
        }
        None => {}
    }
    let verdict = Verdict::of(outcome);
    let _ = writeln!(
        out,
        "result: {} (exit {}) in {:.1} ms",
        serde_json::to_value(verdict).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        verdict.exit_code(),
        outcome.duration.as_secs_f64() * 1e3
    );
    out
}

/// Run the check and return the process exit code.
pub async fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let target = target_from_args(&args)?;
    let http = crate::mcp::transport::http_client()?;
    let mut probe = CanaryProbe::new(std::sync::Arc::new(target), http);
    let outcome = probe.run_cycle().await;
    let mut shown = url::Url::parse(&args.url)?;
    let _ = shown.set_password(None);
    if args.json {
        println!("{}", terminal_safe_json(&json_report(shown.as_str(), &outcome))?);
    } else {
        print!("{}", text_report(shown.as_str(), &outcome));
    }
    Ok(Verdict::of(&outcome).exit_code())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::runner::StepOutcome;

    fn step(operation: Operation, result: StepResult) -> StepOutcome {
        StepOutcome {
            operation,
            tool: None,
            tool_picked: false,
            result,
            latency: Duration::ZERO,
            started_at: SystemTime::now(),
            session_id: None,
            http_version: None,
            span_id: None,
            detail: String::new(),
        }
    }

    fn failed(error_type: ErrorType) -> StepResult {
        StepResult::Failed { error_type, rpc_code: None, http_status: None }
    }

    fn connected(steps: Vec<StepOutcome>, notification: Option<NotificationOutcome>) -> ProbeOutcome {
        ProbeOutcome { server: Some(Default::default()), steps, notification, ..Default::default() }
    }

    #[test]
    fn a_missed_notification_is_a_failure_with_its_own_code() {
        let ok = step(Operation::ToolsCall, StepResult::Success);
        let missed = connected(vec![ok.clone()], Some(NotificationOutcome::Missed));
        assert_eq!(Verdict::of(&missed), Verdict::NotificationMissed);
        assert_eq!(Verdict::NotificationMissed.exit_code(), 7);
        assert!(!missed.success());
        let delivered = connected(vec![ok], Some(NotificationOutcome::Delivered(Duration::ZERO)));
        assert_eq!(Verdict::of(&delivered), Verdict::Healthy);
        assert!(delivered.success());
    }

    #[test]
    fn a_timeout_after_connecting_is_that_steps_timeout() {
        let ok = || step(Operation::Connect, StepResult::Success);
        let of = |steps| Verdict::of(&connected(steps, None));
        let tool = of(vec![ok(), step(Operation::ToolsCall, failed(ErrorType::Timeout))]);
        assert_eq!((tool, tool.exit_code()), (Verdict::ToolTimeout, 6));
        let list = of(vec![ok(), step(Operation::ResourcesList, failed(ErrorType::Timeout))]);
        assert_eq!((list, list.exit_code()), (Verdict::Timeout, 5));
        let connect = Verdict::of(&ProbeOutcome {
            steps: vec![step(Operation::Connect, failed(ErrorType::Timeout))],
            ..Default::default()
        });
        assert_eq!((connect, connect.exit_code()), (Verdict::Unreachable, 3));
        // A refused or reset connection stays unreachable wherever it happens.
        assert_eq!(of(vec![ok(), step(Operation::ToolsCall, failed(ErrorType::Reset))]), Verdict::Unreachable);
    }

    #[test]
    fn json_output_escapes_every_control_character_and_keeps_the_value() {
        let hostile = "\u{1b}]0;pwned\u{7}\r\u{0}\u{7f}\u{9b}31m\u{85}\u{9f}é✓\"\\";
        let value = serde_json::json!({"name": hostile, "nested": [{"k": hostile}]});
        let text = terminal_safe_json(&value).unwrap();
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(text.contains("\\u007f\\u009b31m\\u0085\\u009fé✓"), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), value);
        let plain = serde_json::json!({"a": "b"});
        assert_eq!(terminal_safe_json(&plain).unwrap(), serde_json::to_string_pretty(&plain).unwrap());
    }

    #[test]
    fn a_redirect_not_followed_is_a_protocol_error() {
        let redirected = Verdict::of(&ProbeOutcome {
            steps: vec![step(Operation::Connect, failed(ErrorType::Redirect))],
            ..Default::default()
        });
        assert_eq!((redirected, redirected.exit_code()), (Verdict::ProtocolError, 5));
    }
}
