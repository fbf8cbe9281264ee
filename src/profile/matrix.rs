//! Capability matrix: one short session per (client capability profile, response mode, protocol
//! version the target supports). Each cell initializes, exercises tools, resources and prompts,
//! answers the server-to-client requests its profile declares (canned answers), and records the
//! ones the server sends although the profile does not declare them. Capabilities are claims,
//! not facts: what a server advertises and what it does are recorded separately.
//!
//! Cell results: `works`; `not_exercised` (a declared client capability whose trigger answered,
//! or that no listed trigger tool provokes, and whose request the server never sent); `degraded`
//! (graceful: an explicit refusal such as 406 for JSON-only Accept, a core feature not offered, a
//! tool answering `isError`, a declared advanced feature that fails cleanly); `broken` (a core feature failing when offered, a transport or protocol
//! error, a server request for a capability the client did not declare).

use crate::clock::unix_seconds;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::mcp::{
    AcceptMode, ClientConfig, ErrorType, LATEST_PROTOCOL, McpClient, McpError, ProtocolPreference, SESSION_PROTOCOLS,
    ServerAnswer, ServerRequestHandler,
};

/// Version of the matrix report layout.
pub const MATRIX_REPORT_FORMAT: u32 = 1;

/// A client capability a server may ask the client to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientCapability {
    Roots,
    Sampling,
    Elicitation,
}

impl ClientCapability {
    pub const ALL: [Self; 3] = [Self::Roots, Self::Sampling, Self::Elicitation];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Roots => "roots",
            Self::Sampling => "sampling",
            Self::Elicitation => "elicitation",
        }
    }

    /// The server-to-client request that uses this capability.
    pub fn request_method(self) -> &'static str {
        match self {
            Self::Roots => "roots/list",
            Self::Sampling => "sampling/createMessage",
            Self::Elicitation => "elicitation/create",
        }
    }

    pub fn of_method(method: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.request_method() == method)
    }

    /// The canned answer the matrix gives when the capability is declared.
    fn canned_answer(self) -> Value {
        match self {
            Self::Roots => json!({"roots": [{"uri": "file:///tmp/mcp-canary", "name": "mcp-canary"}]}),
            Self::Sampling => json!({
                "role": "assistant",
                "content": {"type": "text", "text": "mcp-canary canned sample"},
                "model": "mcp-canary-canned",
                "stopReason": "endTurn",
            }),
            // Declining is a valid answer to any form and needs no schema knowledge.
            Self::Elicitation => json!({"action": "decline"}),
        }
    }
}

/// Which client capabilities a cell declares (the `capabilities` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapabilityProfile {
    None,
    Roots,
    Sampling,
    Elicitation,
    All,
}

impl CapabilityProfile {
    pub const ALL: [Self; 5] = [Self::None, Self::Roots, Self::Sampling, Self::Elicitation, Self::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Roots => "roots",
            Self::Sampling => "sampling",
            Self::Elicitation => "elicitation",
            Self::All => "all",
        }
    }

    pub fn declares(self, c: ClientCapability) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Roots => c == ClientCapability::Roots,
            Self::Sampling => c == ClientCapability::Sampling,
            Self::Elicitation => c == ClientCapability::Elicitation,
        }
    }

    /// The `capabilities` object sent in `initialize` / `_meta`.
    pub fn declared(self) -> Value {
        let mut caps = serde_json::Map::new();
        for c in ClientCapability::ALL.into_iter().filter(|c| self.declares(*c)) {
            caps.insert(c.as_str().into(), json!({}));
        }
        Value::Object(caps)
    }
}

/// Accept header of the cell's POSTs (the `response_mode` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Sse,
    JsonOnly,
}

impl ResponseMode {
    pub const ALL: [Self; 2] = [Self::Sse, Self::JsonOnly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sse => "sse",
            Self::JsonOnly => "json_only",
        }
    }

    fn accept(self) -> AcceptMode {
        match self {
            Self::Sse => AcceptMode::JsonAndSse,
            Self::JsonOnly => AcceptMode::JsonOnly,
        }
    }
}

/// Result of a cell or of one check; ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CellResult {
    Works,
    /// A declared client capability the server never used: its trigger answered, but no
    /// request of that capability came, so nothing shows that it works.
    NotExercised,
    Degraded,
    Broken,
}

impl CellResult {
    pub const ALL: [Self; 4] = [Self::Works, Self::NotExercised, Self::Degraded, Self::Broken];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Works => "works",
            Self::NotExercised => "not_exercised",
            Self::Degraded => "degraded",
            Self::Broken => "broken",
        }
    }

    /// Gauge value: 1 works, 0.75 not exercised, 0.5 degraded, 0 broken.
    pub fn score(self) -> f64 {
        match self {
            Self::Works => 1.0,
            Self::NotExercised => 0.75,
            Self::Degraded => 0.5,
            Self::Broken => 0.0,
        }
    }
}

/// A tool that makes the server send a request using a client capability (the official
/// "everything" server's names by default; called only when the server lists it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TriggerTool {
    pub capability: ClientCapability,
    pub tool: String,
    pub arguments: Value,
}

pub fn default_triggers() -> Vec<TriggerTool> {
    vec![
        TriggerTool { capability: ClientCapability::Roots, tool: "get-roots-list".into(), arguments: json!({}) },
        TriggerTool {
            capability: ClientCapability::Sampling,
            tool: "trigger-sampling-request".into(),
            arguments: json!({"prompt": "mcp-canary", "maxTokens": 16}),
        },
        TriggerTool {
            capability: ClientCapability::Elicitation,
            tool: "trigger-elicitation-request".into(),
            arguments: json!({}),
        },
    ]
}

/// A validated matrix run.
#[derive(Clone, Debug)]
pub struct MatrixRun {
    /// `profile` label: `matrix` one-shot, the entry's name in the daemon.
    pub profile: String,
    /// `target` label.
    pub target: String,
    /// Base client settings (URL, headers, timeout, names); capabilities, accept mode, protocol
    /// and the server-request policy are set per cell.
    pub client: ClientConfig,
    /// Tool to call in every cell, with its arguments; `None`: the first listed tool annotated
    /// `readOnlyHint: true` without required arguments (`mcp::protocol::read_only_tool`).
    pub tool: Option<(String, Value)>,
    pub triggers: Vec<TriggerTool>,
    /// Wait at the end of an SSE cell for requests the server sends on its own stream.
    pub settle: Duration,
    /// Cells run at once.
    pub concurrency: usize,
}

/// One check of a cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Check {
    /// connect, stream, tools, resources, prompts, roots, sampling, elicitation, server_requests.
    pub feature: String,
    pub result: CellResult,
    pub detail: String,
}

/// A server-to-client request a cell received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeenRequest {
    pub method: String,
    /// The cell's profile declared the capability the request uses (ping: always true).
    pub declared: bool,
}

/// One cell of the matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CellReport {
    pub capabilities: CapabilityProfile,
    pub response_mode: ResponseMode,
    pub protocol_version: String,
    pub result: CellResult,
    pub checks: Vec<Check>,
    pub server_requests: Vec<SeenRequest>,
    /// Capabilities the server advertised in this cell.
    pub server_capabilities: Value,
    pub elapsed_ms: f64,
}

/// Whether a protocol version was found supported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VersionProbe {
    pub version: String,
    pub supported: bool,
    pub detail: String,
}

/// The JSON report of one matrix run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MatrixReport {
    /// Version of this layout: 1.
    #[schemars(range(min = 1, max = MATRIX_REPORT_FORMAT))]
    pub format: u32,
    /// `matrix` one-shot; the profile entry's name in the daemon.
    pub profile: String,
    /// The target's name.
    pub target: String,
    /// Unix seconds.
    pub started_at: f64,
    /// Unix seconds.
    pub ended_at: f64,
    /// `serverInfo` of the target's `initialize` answer.
    pub server_name: String,
    pub server_version: String,
    /// Every protocol version tried, supported or not.
    pub versions: Vec<VersionProbe>,
    /// One per (capabilities, response mode, supported version).
    pub cells: Vec<CellReport>,
    /// Cells by result (`works`, `not_exercised`, `degraded`, `broken`; all present).
    pub summary: BTreeMap<String, u64>,
    /// `pass` when no cell is broken, else `fail`.
    #[schemars(extend("enum" = ["pass", "fail"]))]
    pub verdict: String,
}

impl MatrixReport {
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    pub fn cell(&self, caps: CapabilityProfile, mode: ResponseMode, version: &str) -> Option<&CellReport> {
        self.cells.iter().find(|c| c.capabilities == caps && c.response_mode == mode && c.protocol_version == version)
    }

    pub fn supported_versions(&self) -> Vec<&str> {
        self.versions.iter().filter(|v| v.supported).map(|v| v.version.as_str()).collect()
    }
}

/// Run the whole matrix: discover versions, then every cell (bounded concurrency).
pub async fn run_matrix(run: &MatrixRun, http: reqwest::Client) -> MatrixReport {
    let started_at = unix_seconds();
    let mut versions = Vec::new();
    let (mut server_name, mut server_version) = (String::new(), String::new());
    for v in std::iter::once(LATEST_PROTOCOL).chain(SESSION_PROTOCOLS) {
        let client =
            McpClient::new(cell_config(run, CapabilityProfile::None, ResponseMode::Sse, v, None), http.clone());
        let probe = match client.connect().await {
            Ok(info) if info.protocol_version == v => {
                if server_name.is_empty() {
                    (server_name, server_version) = (server_text(&info.name), server_text(&info.version));
                }
                VersionProbe { version: v.into(), supported: true, detail: String::new() }
            }
            Ok(info) => VersionProbe {
                version: v.into(),
                supported: false,
                detail: server_text(&format!("answered {}", info.protocol_version)),
            },
            Err(e) => VersionProbe { version: v.into(), supported: false, detail: server_text(&e.to_string()) },
        };
        let _ = client.close().await;
        versions.push(probe);
    }
    let mut plan = Vec::new();
    for v in versions.iter().filter(|v| v.supported) {
        for mode in ResponseMode::ALL {
            for caps in CapabilityProfile::ALL {
                plan.push((caps, mode, v.version.clone()));
            }
        }
    }
    let mut cells: Vec<CellReport> = futures::stream::iter(plan)
        .map(|(caps, mode, v)| run_cell(run, http.clone(), caps, mode, v))
        .buffer_unordered(run.concurrency.max(1))
        .collect()
        .await;
    let order = |v: &str| std::iter::once(LATEST_PROTOCOL).chain(SESSION_PROTOCOLS).position(|x| x == v);
    cells.sort_by(|a, b| {
        (order(&a.protocol_version), a.response_mode, a.capabilities).cmp(&(
            order(&b.protocol_version),
            b.response_mode,
            b.capabilities,
        ))
    });
    let mut summary: BTreeMap<String, u64> = CellResult::ALL.iter().map(|r| (r.as_str().to_string(), 0)).collect();
    for c in &cells {
        *summary.entry(c.result.as_str().into()).or_default() += 1;
    }
    let broken = cells.iter().any(|c| c.result == CellResult::Broken) || cells.is_empty();
    MatrixReport {
        format: MATRIX_REPORT_FORMAT,
        profile: run.profile.clone(),
        target: run.target.clone(),
        started_at,
        ended_at: unix_seconds(),
        server_name,
        server_version,
        versions,
        cells,
        summary,
        verdict: if broken { "fail" } else { "pass" }.into(),
    }
}

type Seen = Arc<Mutex<Vec<SeenRequest>>>;

fn cell_config(
    run: &MatrixRun,
    caps: CapabilityProfile,
    mode: ResponseMode,
    version: &str,
    seen: Option<Seen>,
) -> ClientConfig {
    let handler = ServerRequestHandler::new(move |method: &str, _params: &Value| -> ServerAnswer {
        let capability = ClientCapability::of_method(method);
        let declared = capability.is_none_or(|c| caps.declares(c));
        if let Some(seen) = &seen
            && let Ok(mut s) = seen.lock()
        {
            s.push(SeenRequest { method: method.into(), declared });
        }
        match capability {
            Some(c) if declared => Ok(c.canned_answer()),
            None if method == "ping" => Ok(json!({})),
            _ => Err((crate::mcp::protocol::METHOD_NOT_FOUND, "Method not found".into())),
        }
    });
    ClientConfig {
        protocol: ProtocolPreference::Pinned(version.into()),
        capabilities: caps.declared(),
        accept: mode.accept(),
        server_requests: handler,
        ..run.client.clone()
    }
}

/// An explicit refusal (HTTP 4xx or a JSON-RPC error), as opposed to a crash, a timeout or garbage.
fn is_clean_refusal(e: &McpError) -> bool {
    matches!(e, McpError::JsonRpc { .. }) || e.http_status().is_some_and(|s| (400..500).contains(&s))
}

fn check(feature: &str, result: CellResult, detail: impl Into<String>) -> Check {
    Check { feature: feature.into(), result, detail: server_text(&detail.into()) }
}

/// Longest text from the server a matrix report keeps (characters), in any one field.
const MAX_SERVER_TEXT: usize = 256;

/// Text a server chose (its name, an error it sent), as the report keeps it: control characters
/// replaced and cut, so the report and what is rendered from it (HTML, JUnit, Markdown) stay small.
fn server_text(s: &str) -> String {
    crate::mcp::protocol::printable(s, MAX_SERVER_TEXT)
}

fn name_of(item: &Value) -> &str {
    item.get("name").and_then(Value::as_str).unwrap_or_default()
}

async fn run_cell(
    run: &MatrixRun,
    http: reqwest::Client,
    caps: CapabilityProfile,
    mode: ResponseMode,
    version: String,
) -> CellReport {
    let started = Instant::now();
    let seen: Seen = Arc::default();
    let client = McpClient::new(cell_config(run, caps, mode, &version, Some(Arc::clone(&seen))), http);
    let mut checks = Vec::new();
    let mut server_capabilities = Value::Null;
    let mut triggered = Vec::new();
    match client.connect().await {
        Err(e) => {
            // A clean refusal of JSON-only Accept (406 and the like) is graceful degradation.
            let result = if mode == ResponseMode::JsonOnly && is_clean_refusal(&e) {
                CellResult::Degraded
            } else {
                CellResult::Broken
            };
            checks.push(check("connect", result, e.to_string()));
        }
        Ok(info) => {
            server_capabilities = info.capabilities.clone();
            checks.push(check("connect", CellResult::Works, format!("{} {}", info.name, info.version)));
            if mode == ResponseMode::Sse {
                checks.push(match client.open_stream().await {
                    Ok(true) => check("stream", CellResult::Works, "server-to-client stream open"),
                    Ok(false) => check("stream", CellResult::Works, "server offers no stream"),
                    Err(e) => check("stream", CellResult::Degraded, e.to_string()),
                });
            }
            let tools = exercise_tools(run, &client, info.offers_tools, &mut checks).await;
            exercise_resources(&client, info.offers_resources, &mut checks).await;
            exercise_prompts(&client, info.offers_prompts, &mut checks).await;
            triggered = exercise_triggers(run, &client, caps, &tools, &mut checks).await;
            if mode == ResponseMode::Sse && !run.settle.is_zero() {
                tokio::time::sleep(run.settle).await;
            }
        }
    }
    let _ = client.close().await;
    drop(client);
    let server_requests = seen.lock().map(|s| s.clone()).unwrap_or_default();
    judge_requests(caps, &server_requests, &mut checks);
    judge_unexercised(&triggered, &server_requests, &mut checks);
    let result = checks.iter().map(|c| c.result).max().unwrap_or(CellResult::Broken);
    CellReport {
        capabilities: caps,
        response_mode: mode,
        protocol_version: version,
        result,
        checks,
        server_requests,
        server_capabilities,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// Declared capabilities the server used are findings that work; undeclared ones break the cell.
fn judge_requests(caps: CapabilityProfile, seen: &[SeenRequest], checks: &mut Vec<Check>) {
    for c in ClientCapability::ALL {
        let n = seen.iter().filter(|s| s.method == c.request_method()).count();
        if n == 0 {
            continue;
        }
        if caps.declares(c) {
            checks.push(check(
                c.as_str(),
                CellResult::Works,
                format!("server sent {} x{n}; answered", c.request_method()),
            ));
        } else {
            checks.push(check(
                "server_requests",
                CellResult::Broken,
                format!("server sent {} x{n} although the client did not declare {}", c.request_method(), c.as_str()),
            ));
        }
    }
}

/// A core feature's list failing: graceful when the server does not offer the feature and says so.
fn list_failed(feature: &str, offered: bool, e: &McpError) -> Check {
    if !offered && is_clean_refusal(e) {
        check(feature, CellResult::Degraded, format!("not offered: {e}"))
    } else {
        check(feature, CellResult::Broken, format!("list failed: {e}"))
    }
}

async fn exercise_tools(run: &MatrixRun, client: &McpClient, offered: bool, checks: &mut Vec<Check>) -> Vec<Value> {
    let tools = match client.list_tools().await {
        Ok(t) => t,
        Err(e) => {
            checks.push(list_failed("tools", offered, &e));
            return Vec::new();
        }
    };
    // The same rule as the canary script: the configured tool, else one marked read-only.
    let pick = match &run.tool {
        Some((name, args)) => Some((name.clone(), args.clone())),
        None => tools
            .values()
            .find_map(|t| crate::mcp::protocol::read_only_name(&t).map(|name| (name.to_string(), json!({})))),
    };
    let Some((name, args)) = pick else {
        let result = if tools.is_empty() && !offered { CellResult::Degraded } else { CellResult::Works };
        checks.push(check(
            "tools",
            result,
            format!("{} tools listed; none configured or marked read-only", tools.len()),
        ));
        return tools.values().collect();
    };
    checks.push(match client.call_tool(&name, args, None).await {
        Ok(r) if r.is_error => check("tools", CellResult::Degraded, format!("{name} answered isError")),
        Ok(_) => check("tools", CellResult::Works, format!("{} tools listed; {name} called", tools.len())),
        Err(e) => check("tools", CellResult::Broken, format!("{name}: {e}")),
    });
    tools.values().collect()
}

async fn exercise_resources(client: &McpClient, offered: bool, checks: &mut Vec<Check>) {
    let resources = match client.list_resources().await {
        Ok(r) => r,
        Err(e) => return checks.push(list_failed("resources", offered, &e)),
    };
    let Some(uri) = resources.values().find_map(|r| r.get("uri").and_then(Value::as_str).map(str::to_string)) else {
        let result = if offered { CellResult::Works } else { CellResult::Degraded };
        return checks.push(check("resources", result, "no resources listed"));
    };
    checks.push(match client.read_resource(&uri).await {
        Ok(_) => check("resources", CellResult::Works, format!("{} listed; one read", resources.len())),
        Err(e) => check("resources", CellResult::Broken, format!("read failed: {e}")),
    });
}

async fn exercise_prompts(client: &McpClient, offered: bool, checks: &mut Vec<Check>) {
    let prompts = match client.list_prompts().await {
        Ok(p) => p,
        Err(e) => return checks.push(list_failed("prompts", offered, &e)),
    };
    let no_required = |p: &Value| {
        p.get("arguments")
            .and_then(Value::as_array)
            .is_none_or(|a| !a.iter().any(|x| x.get("required").and_then(Value::as_bool) == Some(true)))
    };
    let Some(name) = prompts.values().find(no_required).map(|p| name_of(&p).to_string()) else {
        let result = if offered || !prompts.is_empty() { CellResult::Works } else { CellResult::Degraded };
        return checks.push(check(
            "prompts",
            result,
            format!("{} listed; none without required arguments", prompts.len()),
        ));
    };
    checks.push(match client.get_prompt(&name, Value::Null).await {
        Ok(_) => check("prompts", CellResult::Works, format!("{} listed; {name} got", prompts.len())),
        Err(e) => check("prompts", CellResult::Broken, format!("{name}: {e}")),
    });
}

/// A declared capability that has not shown it works yet: its trigger answered, or the server
/// lists no trigger for it. It works only if the server sent its request anyway
/// (`judge_requests` records that), else it was not exercised.
struct Unexercised {
    capability: ClientCapability,
    /// Why the request was expected or could not be provoked, e.g. "get-roots-list answered".
    reason: String,
}

fn judge_unexercised(pending: &[Unexercised], seen: &[SeenRequest], checks: &mut Vec<Check>) {
    for p in pending {
        let method = p.capability.request_method();
        if !seen.iter().any(|s| s.method == method) {
            checks.push(check(
                p.capability.as_str(),
                CellResult::NotExercised,
                format!("{}, but the server sent no {method}", p.reason),
            ));
        }
    }
}

/// Call the listed trigger tools. A declared capability whose trigger fails cleanly is degraded;
/// an undeclared one is called too, to see whether the server then sends the request anyway.
/// Returns the declared capabilities whose trigger answered or that no listed trigger provokes
/// (judged once the cell's server requests are all in).
async fn exercise_triggers(
    run: &MatrixRun,
    client: &McpClient,
    caps: CapabilityProfile,
    tools: &[Value],
    checks: &mut Vec<Check>,
) -> Vec<Unexercised> {
    let listed = |t: &TriggerTool| tools.iter().any(|x| name_of(x) == t.tool);
    let mut pending = Vec::new();
    for capability in ClientCapability::ALL.into_iter().filter(|c| caps.declares(*c)) {
        let mut triggers = run.triggers.iter().filter(|t| t.capability == capability).peekable();
        if triggers.peek().is_some() && !triggers.any(listed) {
            let names: Vec<&str> =
                run.triggers.iter().filter(|t| t.capability == capability).map(|t| t.tool.as_str()).collect();
            pending.push(Unexercised { capability, reason: format!("no trigger tool listed ({})", names.join(", ")) });
        }
    }
    for t in &run.triggers {
        if !listed(t) {
            continue;
        }
        let outcome = client.call_tool(&t.tool, t.arguments.clone(), None).await;
        if !caps.declares(t.capability) {
            continue;
        }
        checks.push(match outcome {
            Ok(r) if !r.is_error => {
                pending.push(Unexercised { capability: t.capability, reason: format!("{} answered", t.tool) });
                continue;
            }
            Ok(_) => check(t.capability.as_str(), CellResult::Degraded, format!("{} answered isError", t.tool)),
            Err(e) if e.error_type() == ErrorType::Timeout => {
                check(t.capability.as_str(), CellResult::Broken, format!("{}: {e}", t.tool))
            }
            Err(e) => check(t.capability.as_str(), CellResult::Degraded, format!("{}: {e}", t.tool)),
        });
    }
    pending
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_is_cut_and_printable() {
        let hostile = format!("evil\x1b[31m\n{}", "x".repeat(10_000));
        let kept = server_text(&hostile);
        assert_eq!(kept.chars().count(), MAX_SERVER_TEXT);
        assert!(kept.starts_with("evil?[31m?x") && kept.ends_with('…'), "{kept}");
        assert!(!kept.chars().any(char::is_control));
        assert_eq!(check("tools", CellResult::Works, hostile).detail, kept);
        assert_eq!(server_text("rmcp 0.9"), "rmcp 0.9");
    }

    #[test]
    fn profiles_declare_what_they_name() {
        assert_eq!(CapabilityProfile::None.declared(), json!({}));
        assert_eq!(CapabilityProfile::Sampling.declared(), json!({"sampling": {}}));
        assert_eq!(CapabilityProfile::All.declared(), json!({"roots": {}, "sampling": {}, "elicitation": {}}));
        assert!(CapabilityProfile::Roots.declares(ClientCapability::Roots));
        assert!(!CapabilityProfile::Roots.declares(ClientCapability::Sampling));
        assert_eq!(ClientCapability::of_method("elicitation/create"), Some(ClientCapability::Elicitation));
        assert_eq!(ClientCapability::of_method("ping"), None);
    }

    #[test]
    fn results_order_and_scores() {
        assert!(CellResult::Works < CellResult::Degraded && CellResult::Degraded < CellResult::Broken);
        assert_eq!(CellResult::ALL.map(CellResult::score), [1.0, 0.75, 0.5, 0.0]);
    }

    #[test]
    fn undeclared_server_requests_break_the_cell() {
        let seen = vec![
            SeenRequest { method: "roots/list".into(), declared: false },
            SeenRequest { method: "ping".into(), declared: true },
        ];
        let mut checks = Vec::new();
        judge_requests(CapabilityProfile::None, &seen, &mut checks);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].result, CellResult::Broken);
        let mut checks = Vec::new();
        judge_requests(CapabilityProfile::Roots, &seen, &mut checks);
        assert_eq!((checks[0].feature.as_str(), checks[0].result), ("roots", CellResult::Works));
    }

    #[test]
    fn a_trigger_without_its_request_is_not_exercised() {
        let pending = [
            Unexercised { capability: ClientCapability::Roots, reason: "get-roots-list answered".into() },
            Unexercised { capability: ClientCapability::Sampling, reason: "trigger-sampling-request answered".into() },
            Unexercised {
                capability: ClientCapability::Elicitation,
                reason: "no trigger tool listed (trigger-elicitation-request)".into(),
            },
        ];
        let seen = vec![SeenRequest { method: "roots/list".into(), declared: true }];
        let mut checks = Vec::new();
        judge_requests(CapabilityProfile::All, &seen, &mut checks);
        judge_unexercised(&pending, &seen, &mut checks);
        let results: Vec<(&str, CellResult)> = checks.iter().map(|c| (c.feature.as_str(), c.result)).collect();
        let not_exercised = CellResult::NotExercised;
        assert_eq!(
            results,
            [("roots", CellResult::Works), ("sampling", not_exercised), ("elicitation", not_exercised)]
        );
        assert!(checks[1].detail.contains("answered, but the server sent no sampling/createMessage"), "{checks:?}");
        assert!(checks[2].detail.contains("no trigger tool listed"), "{}", checks[2].detail);
        assert!(CellResult::Works < CellResult::NotExercised && CellResult::NotExercised < CellResult::Degraded);
    }

    #[test]
    fn refusals_are_clean_crashes_are_not() {
        assert!(is_clean_refusal(&McpError::Http { status: 406, snippet: String::new(), rpc_code: None }));
        assert!(is_clean_refusal(&McpError::JsonRpc { code: -32601, message: String::new() }));
        assert!(!is_clean_refusal(&McpError::Http { status: 500, snippet: String::new(), rpc_code: None }));
        assert!(!is_clean_refusal(&McpError::InvalidJson(String::new())));
    }
}
