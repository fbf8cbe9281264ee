//! Typed outcomes of a probe cycle. Runners produce them; telemetry and `check` consume them.

use std::time::{Duration, SystemTime};

use crate::mcp::transport::HttpVersion;
use crate::mcp::{ErrorType, McpError, ServerInfo, StreamStats};

/// A probe step, named by the MCP method it performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Connect,
    ToolsList,
    ToolsCall,
    ResourcesList,
    ResourcesRead,
    PromptsList,
    PromptsGet,
    Ping,
    SessionDelete,
}

impl Operation {
    /// The `mcp_method_name` label. `Connect` is `initialize` or `server/discover` by era, so it
    /// takes the negotiated version; HTTP DELETE has no MCP method and is named `session/delete`.
    pub fn method_name(self, stateless: bool) -> &'static str {
        match self {
            Operation::Connect if stateless => "server/discover",
            Operation::Connect => "initialize",
            Operation::ToolsList => "tools/list",
            Operation::ToolsCall => "tools/call",
            Operation::ResourcesList => "resources/list",
            Operation::ResourcesRead => "resources/read",
            Operation::PromptsList => "prompts/list",
            Operation::PromptsGet => "prompts/get",
            Operation::Ping => "ping",
            Operation::SessionDelete => "session/delete",
        }
    }
}

/// Why a step did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The server does not advertise the capability.
    NotOffered,
    /// Nothing configured to call, and nothing safe to pick.
    NotConfigured,
    /// The negotiated protocol has no such operation (ping and DELETE in 2026-07-28).
    Unsupported,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotOffered => "not_offered",
            SkipReason::NotConfigured => "not_configured",
            SkipReason::Unsupported => "unsupported",
        }
    }
}

/// Result of one step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepResult {
    Success,
    Failed { error_type: ErrorType, rpc_code: Option<i64>, http_status: Option<u16> },
    Skipped(SkipReason),
}

impl StepResult {
    pub fn from_error(e: &McpError) -> Self {
        StepResult::Failed { error_type: e.error_type(), rpc_code: e.rpc_code(), http_status: e.http_status() }
    }
}

/// One executed or skipped step.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub operation: Operation,
    /// Tool name for tools/call: configured, or (with `tool_picked`) taken from the server's
    /// list, so unbounded; telemetry bounds it before it becomes a label.
    pub tool: Option<String>,
    /// The tool was picked from the server's list (no tool configured): its name is not a label.
    pub tool_picked: bool,
    pub result: StepResult,
    pub latency: Duration,
    /// Wall-clock start, for spans built after the fact (latency stays monotonic).
    pub started_at: SystemTime,
    /// The MCP session the step ran in (span attribute only; never a label).
    pub session_id: Option<String>,
    /// The HTTP version of the step's latest response (`network.protocol.version` over OTLP);
    /// `None` when none came or the step did not run.
    pub http_version: Option<HttpVersion>,
    /// The span id the step's requests named as their parent in `params._meta` (a traced
    /// cycle's only): its client span is exported under this id, so a server's spans nest under it.
    pub span_id: Option<[u8; 8]>,
    /// Human-readable detail for `check`; never a label.
    pub detail: String,
}

/// Counts of what the server lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inventory {
    pub tools: Option<usize>,
    pub resources: Option<usize>,
    pub prompts: Option<usize>,
}

/// Outcome of the notification round trip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NotificationOutcome {
    Delivered(Duration),
    Missed,
}

/// Everything one probe cycle observed.
#[derive(Debug, Clone, Default)]
pub struct ProbeOutcome {
    pub steps: Vec<StepOutcome>,
    pub duration: Duration,
    /// Wall-clock start of the cycle (spans); `None` for the shutdown pseudo-cycle.
    pub started_at: Option<SystemTime>,
    /// Set when connect succeeded in this cycle (or the warm session is known).
    pub server: Option<ServerInfo>,
    pub inventory: Inventory,
    /// True when the tools/list schema hash differs from the previous cycle's.
    pub tools_schema_changed: bool,
    pub notification: Option<NotificationOutcome>,
    /// Number of session re-initialisations after expiry in this cycle.
    pub sessions_reinitialized: u32,
    /// Lifetimes of sessions that ended in this cycle.
    pub sessions_ended: Vec<Duration>,
    /// Stream recovery counters accumulated during this cycle.
    pub stream: StreamStats,
    /// Replica checks of a balanced target (affinity, cross-instance delivery).
    pub instances: Option<super::instances::InstancesOutcome>,
    /// The target pins the stateless 2026-07-28 revision: a connect that failed before any
    /// version was negotiated was a `server/discover`, not an `initialize`.
    pub pinned_stateless: bool,
    /// The target's OAuth token source after this cycle (target's own probe only).
    pub auth: Option<crate::mcp::auth::TokenStatus>,
}

impl ProbeOutcome {
    /// Required steps passed: the connection was made, nothing failed, and the notification
    /// round trip, when one was asked for, was not missed.
    pub fn success(&self) -> bool {
        self.server.is_some()
            && !self.steps.iter().any(|s| matches!(s.result, StepResult::Failed { .. }))
            && self.notification != Some(NotificationOutcome::Missed)
    }

    /// The first failure, for exit codes and summaries.
    pub fn first_failure(&self) -> Option<&StepOutcome> {
        self.steps.iter().find(|s| matches!(s.result, StepResult::Failed { .. }))
    }

    /// The era that names the connect step: the negotiated one, else the pinned one.
    pub fn stateless(&self) -> bool {
        self.server.as_ref().map_or(self.pinned_stateless, |s| s.stateless)
    }

    /// The negotiated protocol version, empty before a successful connect.
    pub fn protocol_version(&self) -> &str {
        self.server.as_ref().map(|s| s.protocol_version.as_str()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_step_is_named_by_the_negotiated_era_else_the_pinned_one() {
        let failed = |pinned_stateless| ProbeOutcome { pinned_stateless, ..Default::default() };
        assert_eq!(Operation::Connect.method_name(failed(true).stateless()), "server/discover");
        assert_eq!(Operation::Connect.method_name(failed(false).stateless()), "initialize");
        let negotiated =
            ProbeOutcome { server: Some(Default::default()), pinned_stateless: true, ..Default::default() };
        assert_eq!(Operation::Connect.method_name(negotiated.stateless()), "initialize");
    }
}
