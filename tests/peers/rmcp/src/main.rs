//! A peer of the test matrix: an MCP server on the official Rust SDK (rmcp), written with its
//! tool macros as its users write one. Tools `notify` (a log message carrying the nonce, after a
//! progress notification when the request has a progress token), `slow` (sleeps `ms`) and `fail`
//! (an `isError` result); one resource and one prompt. Streamable HTTP at
//! `http://127.0.0.1:$PORT/mcp`, sessions kept in memory.
// Log notifications are deprecated by SEP-2577 but still part of every revision servers speak.
#![allow(deprecated)]

use std::time::Duration;

use rmcp::handler::server::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
    ListPromptsResult, ListResourcesResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
    ProgressNotificationParam, Prompt, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, RequestMetaObject, Resource, ResourceContents, Role, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};

const HELLO_URI: &str = "peer://static/hello";

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NotifyArgs {
    /// Carried in the log message's data.
    nonce: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct SlowArgs {
    /// Milliseconds to wait before answering.
    ms: u64,
}

#[derive(Clone)]
struct PeerServer {
    #[expect(dead_code, reason = "read by the code #[tool_handler] generates")]
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl PeerServer {
    fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    #[tool(description = "Sends a progress notification (with a progress token) and a log message carrying the nonce.")]
    async fn notify(
        &self,
        Parameters(NotifyArgs { nonce }): Parameters<NotifyArgs>,
        meta: RequestMetaObject,
        client: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if let Some(token) = meta.get_progress_token() {
            let _ = client.notify_progress(ProgressNotificationParam::new(token, 1.0).with_total(1.0)).await;
        }
        let data = serde_json::Value::String(format!("nonce {nonce}"));
        let _ = client.notify_logging_message(LoggingMessageNotificationParam::new(LoggingLevel::Info, data)).await;
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("notified {nonce}"))]))
    }

    #[tool(description = "Answers after `ms` milliseconds.")]
    async fn slow(&self, Parameters(SlowArgs { ms }): Parameters<SlowArgs>) -> Result<CallToolResult, ErrorData> {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("slept {ms} ms"))]))
    }

    #[tool(description = "Always fails with an isError result.")]
    async fn fail(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::error(vec![ContentBlock::text("this tool always fails")]))
    }
}

#[tool_handler]
impl ServerHandler for PeerServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().enable_logging().build(),
        )
        .with_server_info(Implementation::new("rmcp-peer", env!("CARGO_PKG_VERSION")))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![Resource::new(HELLO_URI, "hello").with_mime_type("text/plain")]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != HELLO_URI {
            return Err(ErrorData::resource_not_found(format!("no resource {}", request.uri), None));
        }
        Ok(ReadResourceResult::new(vec![ResourceContents::text("hello from rmcp", request.uri)]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new("greeting", Some("A greeting."), None)]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != "greeting" {
            return Err(ErrorData::invalid_params(format!("no prompt {}", request.name), None));
        }
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, "Say hello.")]).into())
    }
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let service: StreamableHttpService<PeerServer, LocalSessionManager> =
        StreamableHttpService::new(|| Ok(PeerServer::new()), Default::default(), StreamableHttpServerConfig::default());
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind 127.0.0.1:$PORT");
    println!("rmcp-peer listening on http://{}/mcp", listener.local_addr().expect("local address"));
    axum::serve(listener, app).await.expect("serve");
}
