//! The MCP handler of the reference target: tools, resources, prompts, logging.

// MCP logging and resources/subscribe are deprecated by SEP-2577 / the 2026-07-28 revision, but
// the 2025 revisions the target serves still use them and probes listen for them.
#![allow(deprecated)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
        GetPromptResponse, GetPromptResult, Implementation, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
        ListResourcesResult, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
        ProgressNotificationParam, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
        ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role,
        ServerCapabilities, ServerConfig, SetLevelRequestMethod, SetLevelRequestParams, SubscribeRequestParams, Tool,
        ToolAnnotations, UnsubscribeRequestParams,
    },
    schemars::{self, JsonSchema},
    service::RequestContext,
};
use serde::Deserialize;

use super::{Route, Shared, metrics::Fault};

/// Where the `initialize` handler leaves its session's peer for the HTTP layer, which alone learns
/// the new session's id (from the response). Without it a session whose `notifications/initialized`
/// a balancer sends to another instance never has its peer registered where it was created, and a
/// GET stream opened there later misses every fan-out notification.
#[derive(Clone, Default)]
pub(crate) struct InitializedPeerSlot(Arc<std::sync::Mutex<Option<rmcp::Peer<RoleServer>>>>);

impl InitializedPeerSlot {
    fn put(&self, peer: rmcp::Peer<RoleServer>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(peer);
    }

    pub(crate) fn take(&self) -> Option<rmcp::Peer<RoleServer>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The `Mcp-Session-Id` of the HTTP request a message came with.
fn session_id(extensions: &rmcp::model::Extensions) -> Option<String> {
    let parts = extensions.get::<axum::http::request::Parts>()?;
    parts.headers.get("mcp-session-id")?.to_str().ok().map(str::to_owned)
}

/// Upper bound of the `slow` tool's CPU burn.
pub const MAX_SLOW_MS: u64 = 10_000;
/// Upper bound of the `progress` tool's steps.
pub const MAX_PROGRESS_STEPS: u64 = 1_000;

pub const HELLO_URI: &str = "canary://static/hello";
pub const HELLO_TEXT: &str = "hello from mcp-canary";
pub const INFO_URI: &str = "canary://static/info";
pub const ITEMS_TEMPLATE: &str = "canary://items/{id}";
const ITEMS_PREFIX: &str = "canary://items/";
const LOGGER: &str = "mcp-canary-target";

#[derive(Debug, Deserialize, JsonSchema)]
struct EchoArgs {
    /// Text returned verbatim (empty when left out).
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct SlowArgs {
    /// Milliseconds of CPU to burn (at most 10000).
    ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct FailArgs {
    /// Text of the error result.
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct NotifyArgs {
    /// Echoed in the `notifications/message` data so the client can match it.
    nonce: String,
    /// `request` (default): on this request's stream; `session`: on this session's GET stream,
    /// whichever instance holds it; `broadcast`: on every session's GET stream, on every instance.
    #[serde(default)]
    route: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct BroadcastArgs {
    /// Echoed in every session's `notifications/message` data so clients can match it.
    nonce: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct ProgressArgs {
    /// Number of `notifications/progress` to send (at most 1000).
    steps: u64,
}

/// One handler per MCP session (or per stateless request).
#[derive(Clone)]
pub struct CanaryServer {
    shared: Arc<Shared>,
    /// Identifies this handler's subscriptions.
    id: u64,
}

impl CanaryServer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let id = shared.next_handler_id();
        Self { shared, id }
    }
}

fn tools() -> Vec<Tool> {
    let empty = || Arc::new(JsonObject::new());
    vec![
        // Read-only and callable without arguments: what a probe with no configured tool may call.
        Tool::new("echo", "Returns the message as text.", empty())
            .with_input_schema::<EchoArgs>()
            .annotate(ToolAnnotations::new().read_only(true)),
        Tool::new("slow", "Burns CPU for `ms` milliseconds on a blocking thread, then returns.", empty())
            .with_input_schema::<SlowArgs>(),
        Tool::new("fail", "Always returns an isError result.", empty()).with_input_schema::<FailArgs>(),
        Tool::new(
            "notify",
            "Sends a notifications/message carrying the nonce and a send timestamp, then returns.",
            empty(),
        )
        .with_input_schema::<NotifyArgs>(),
        Tool::new(
            "broadcast",
            "Sends a notifications/message carrying the nonce and a send timestamp to every live session's stream.",
            empty(),
        )
        .with_input_schema::<BroadcastArgs>(),
        Tool::new("progress", "Sends notifications/progress for each step when a progressToken is given.", empty())
            .with_input_schema::<ProgressArgs>(),
    ]
    .into_iter()
    .chain(super::asks::tools())
    .collect()
}

fn parse<T: serde::de::DeserializeOwned>(tool: &str, arguments: Option<JsonObject>) -> Result<T, McpError> {
    let value = serde_json::Value::Object(arguments.unwrap_or_default());
    serde_json::from_value(value)
        .map_err(|e| McpError::invalid_params(format!("invalid arguments for tool {tool}: {e}"), None))
}

fn text_result(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text.into())]).into()
}

fn error_result(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(text.into())]).into()
}

/// Send one session its `notifications/message` of a broadcast (same shape as `notify`'s).
pub(crate) async fn send_broadcast(peer: rmcp::Peer<RoleServer>, data: serde_json::Value) -> bool {
    let param = LoggingMessageNotificationParam::new(LoggingLevel::Info, data).with_logger(LOGGER);
    peer.notify_logging_message(param).await.is_ok()
}

/// The `_meta` key a 2026-07-28 request opts into log notifications with.
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// Whether a request was made under the stateless 2026-07-28 revision (its `_meta` names a
/// revision without the `initialize` handshake); 2025 session requests carry no such key.
fn is_stateless(context: &RequestContext<RoleServer>) -> bool {
    context.meta.protocol_version().is_some_and(|v| !v.has_initialize())
}

/// Whether a log message at `level` may be sent for this request. The 2025 session revisions
/// keep the target's lenient behaviour (always). Under 2026-07-28 only a request whose `_meta`
/// carries `io.modelcontextprotocol/logLevel` at or below `level` may get one; a value that is not
/// a log level is invalid params.
fn may_log(context: &RequestContext<RoleServer>, level: LoggingLevel) -> Result<bool, McpError> {
    if !is_stateless(context) {
        return Ok(true);
    }
    match (context.meta.get(META_LOG_LEVEL), context.meta.log_level()) {
        (None, _) => Ok(false),
        (Some(_), Some(asked)) => Ok(severity(level) >= severity(asked)),
        (Some(raw), None) => Err(McpError::invalid_params(
            format!("_meta {META_LOG_LEVEL} must be a log level (debug ... emergency), got {raw}"),
            None,
        )),
    }
}

/// RFC 5424 order, least severe first.
fn severity(level: LoggingLevel) -> u8 {
    level as u8
}

/// Spin on the CPU for `ms` milliseconds.
fn burn_cpu(ms: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut x: u64 = 0;
    while Instant::now() < deadline {
        for i in 0..1_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    x
}

impl CanaryServer {
    async fn echo(&self, arguments: Option<JsonObject>) -> Result<CallToolResponse, McpError> {
        let EchoArgs { message } = parse("echo", arguments)?;
        let code = self.shared.knobs.get().echo_jsonrpc_error;
        if code != 0 {
            self.shared.metrics.count_fault(Fault::JsonrpcError);
            // Validated to fit (`Knobs::validate`).
            let code = i32::try_from(code).unwrap_or(i32::MIN);
            return Err(McpError::new(rmcp::model::ErrorCode(code), "echo_jsonrpc_error knob is set", None));
        }
        if self.shared.knobs.get().tool_error {
            self.shared.metrics.count_fault(Fault::ToolError);
            return Ok(error_result(format!("tool_error knob is set (message: {message})")));
        }
        Ok(text_result(message))
    }

    async fn slow(&self, arguments: Option<JsonObject>) -> Result<CallToolResponse, McpError> {
        let SlowArgs { ms } = parse("slow", arguments)?;
        if ms > MAX_SLOW_MS {
            return Ok(error_result(format!("ms must be at most {MAX_SLOW_MS}, got {ms}")));
        }
        let started = Instant::now();
        tokio::task::spawn_blocking(move || burn_cpu(ms))
            .await
            .map_err(|e| McpError::internal_error(format!("slow worker failed: {e}"), None))?;
        Ok(text_result(format!("burned {} ms of CPU", started.elapsed().as_millis())))
    }

    async fn notify(
        &self,
        arguments: Option<JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let NotifyArgs { nonce, route } = parse("notify", arguments)?;
        let route = match route.as_deref() {
            None | Some("request") => None,
            Some("broadcast") => Some(Route::Broadcast),
            Some("session") => match session_id(&context.extensions) {
                Some(id) => Some(Route::Session(id)),
                None => return Ok(error_result("route session needs an Mcp-Session-Id")),
            },
            Some(other) => {
                return Err(McpError::invalid_params(
                    format!("route must be request, session or broadcast, got {other}"),
                    None,
                ));
            }
        };
        if let Some(route) = route {
            return match self.shared.fan_out(route, &nonce).await {
                Ok(_) => Ok(text_result(format!("published notification {nonce}"))),
                Err(error) => Ok(error_result(format!("notification not published: {error}"))),
            };
        }
        if !may_log(context, LoggingLevel::Info)? {
            // 2026-07-28: no `notifications/message` for a request that did not opt in.
            return Ok(text_result(format!(
                "notification {nonce} not sent: the request's _meta asks for no info-level log messages \
                 ({META_LOG_LEVEL})"
            )));
        }
        let data = serde_json::json!({
            "nonce": nonce,
            "sent_at_ms": crate::clock::unix_millis(),
            "instance": self.shared.instance,
        });
        let param = LoggingMessageNotificationParam::new(LoggingLevel::Info, data).with_logger(LOGGER);
        if let Err(error) = context.peer.notify_logging_message(param).await {
            tracing::warn!(error = %error, "Notify notification not sent");
            return Ok(error_result(format!("notification not sent: {error}")));
        }
        Ok(text_result(format!("sent notification {nonce}")))
    }

    async fn broadcast(&self, arguments: Option<JsonObject>) -> Result<CallToolResponse, McpError> {
        let BroadcastArgs { nonce } = parse("broadcast", arguments)?;
        let data = serde_json::json!({
            "nonce": nonce,
            "sent_at_ms": crate::clock::unix_millis(),
            "instance": self.shared.instance,
        });
        let (sent, dropped, failed) = self.shared.broadcast(data).await;
        Ok(text_result(format!("broadcast {nonce}: sent {sent}, dropped {dropped}, failed {failed}")))
    }

    async fn progress(
        &self,
        arguments: Option<JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let ProgressArgs { steps } = parse("progress", arguments)?;
        if steps > MAX_PROGRESS_STEPS {
            return Ok(error_result(format!("steps must be at most {MAX_PROGRESS_STEPS}, got {steps}")));
        }
        let Some(token) = context.meta.get_progress_token() else {
            return Ok(text_result(format!("{steps} steps done (no progressToken, no notifications)")));
        };
        for step in 1..=steps {
            if context.ct.is_cancelled() {
                return Err(McpError::internal_error("cancelled", None));
            }
            let param = ProgressNotificationParam::new(token.clone(), step as f64)
                .with_total(steps as f64)
                .with_message(format!("step {step} of {steps}"));
            if let Err(error) = context.peer.notify_progress(param).await {
                return Ok(error_result(format!("progress notification not sent: {error}")));
            }
        }
        Ok(text_result(format!("{steps} steps done")))
    }
}

fn static_resources() -> Vec<Resource> {
    vec![
        Resource::new(HELLO_URI, "hello").with_description("A fixed greeting.").with_mime_type("text/plain"),
        Resource::new(INFO_URI, "info")
            .with_description("Name and version of the reference target.")
            .with_mime_type("application/json"),
    ]
}

impl ServerHandler for CanaryServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_prompts()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_tools()
                .build(),
        )
        .with_server_info(Implementation::new("mcp-canary-target", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Reference MCP server of mcp-canary: tools echo, slow, fail, notify, broadcast, progress, and \
             get-roots-list, trigger-sampling-request, trigger-elicitation-request (client capabilities).",
        )
    }

    async fn initialize(
        &self,
        request: rmcp::model::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::InitializeResult, McpError> {
        self.shared.note_trace_meta("initialize", &context.meta.0.0);
        context.peer.set_peer_info(request.clone());
        if let Some(slot) = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<InitializedPeerSlot>())
        {
            slot.put(context.peer.clone());
        }
        self.negotiate_initialize(&request)
    }

    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        // Also runs when another instance's session is restored here from Redis.
        if let Some(id) = session_id(&context.extensions) {
            self.shared.register_peer(id, context.peer.clone());
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.shared.note_trace_meta("tools/list", &context.meta.0.0);
        Ok(ListToolsResult::with_all_items(tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().into_iter().find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.shared.note_trace_meta("tools/call", &context.meta.0.0);
        if let Some(answer) = super::asks::call(&request, &context).await {
            return answer;
        }
        let arguments = request.arguments;
        match request.name.as_ref() {
            "echo" => self.echo(arguments).await,
            "slow" => self.slow(arguments).await,
            "fail" => {
                let FailArgs { message } = parse("fail", arguments)?;
                Ok(error_result(message.unwrap_or_else(|| "fail tool called".into())))
            }
            "notify" => self.notify(arguments, &context).await,
            "broadcast" => self.broadcast(arguments).await,
            "progress" => self.progress(arguments, &context).await,
            other => Err(McpError::invalid_params(format!("unknown tool: {other}"), None)),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.shared.note_trace_meta("resources/list", &context.meta.0.0);
        Ok(ListResourcesResult::with_all_items(static_resources()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(ITEMS_TEMPLATE, "item")
                .with_description("A generated item; any id exists.")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.shared.note_trace_meta("resources/read", &context.meta.0.0);
        let uri = request.uri;
        let contents = if uri == HELLO_URI {
            ResourceContents::text(HELLO_TEXT, uri).with_mime_type("text/plain")
        } else if uri == INFO_URI {
            let info = serde_json::json!({
                "name": "mcp-canary-target",
                "version": env!("CARGO_PKG_VERSION"),
                "instance": self.shared.instance,
            });
            ResourceContents::text(info.to_string(), uri).with_mime_type("application/json")
        } else if let Some(id) = uri.strip_prefix(ITEMS_PREFIX).filter(|id| !id.is_empty() && !id.contains('/')) {
            ResourceContents::text(format!("item {id}"), uri.clone()).with_mime_type("text/plain")
        } else {
            return Err(McpError::resource_not_found(
                format!("resource not found: {uri}"),
                Some(serde_json::json!({ "uri": uri })),
            ));
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        tracing::debug!(uri = %request.uri, handler = self.id, "Resource subscribed");
        self.shared.subscribe(self.id, request.uri, context.peer.clone());
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.shared.unsubscribe(self.id, &request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.shared.note_trace_meta("prompts/list", &context.meta.0.0);
        Ok(ListPromptsResult::with_all_items(vec![
            Prompt::new(
                "greeting",
                Some("Greets someone by name."),
                Some(vec![PromptArgument::new("name").with_description("Who to greet.").with_required(true)]),
            ),
            Prompt::new("summary", Some("Asks for a summary of the canary's last run."), None::<Vec<PromptArgument>>),
        ]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.shared.note_trace_meta("prompts/get", &context.meta.0.0);
        match request.name.as_str() {
            "greeting" => {
                let name = request
                    .arguments
                    .as_ref()
                    .and_then(|args| args.get("name"))
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .ok_or_else(|| McpError::invalid_params("prompt greeting requires argument name", None))?;
                Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                    Role::User,
                    format!("Say hello to {name} from mcp-canary."),
                )])
                .with_description("A greeting")
                .into())
            }
            "summary" => Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                "Summarise the last canary run in one sentence.",
            )])
            .with_description("A summary request")
            .into()),
            other => Err(McpError::invalid_params(format!("unknown prompt: {other}"), None)),
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if is_stateless(&context) {
            // Gone in 2026-07-28 (the level travels per request): unknown method, HTTP 404.
            return Err(McpError::method_not_found::<SetLevelRequestMethod>());
        }
        // Accepted; in the 2025 revisions the `notify` tool sends at info regardless so probes
        // always see it.
        tracing::debug!(level = ?request.level, "Log level set");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_schemas_name_their_arguments() {
        let tools = tools();
        let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(
            names,
            [
                "echo",
                "slow",
                "fail",
                "notify",
                "broadcast",
                "progress",
                "get-roots-list",
                "trigger-sampling-request",
                "trigger-elicitation-request"
            ]
        );
        // echo is what a probe with no configured tool calls: read-only, no required argument.
        let echo = &tools[0];
        assert_eq!(echo.input_schema.get("required"), None);
        assert!(echo.input_schema.get("properties").and_then(|p| p.get("message")).is_some());
        assert_eq!(echo.annotations.as_ref().and_then(|a| a.read_only_hint), Some(true));
        let picked = serde_json::to_value(&tools).unwrap();
        assert_eq!(crate::mcp::protocol::read_only_tool(picked.as_array().unwrap()), Some("echo"));
    }

    #[test]
    fn burn_cpu_takes_at_least_the_time_asked() {
        let started = Instant::now();
        burn_cpu(20);
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
