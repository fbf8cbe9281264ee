//! TEMPORARY interface stub; replaced by the real client on merge.
#![allow(dead_code, unused_variables)]
use super::McpError;
use serde_json::Value;
use std::time::{Duration, Instant};
pub const LATEST_PROTOCOL: &str = "2026-07-28";
pub const SESSION_PROTOCOLS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolPreference {
    Auto,
    Pinned(String),
}
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub url: url::Url,
    pub headers: reqwest::header::HeaderMap,
    pub protocol: ProtocolPreference,
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
    pub client_name: String,
    pub client_version: String,
}
#[derive(Clone, Debug, Default)]
pub struct ServerInfo {
    pub protocol_version: String,
    pub name: String,
    pub version: String,
    pub session_id: Option<String>,
    pub capabilities: Value,
    pub offers_tools: bool,
    pub offers_resources: bool,
    pub offers_prompts: bool,
    pub offers_completions: bool,
    pub offers_logging: bool,
    pub resources_subscribe: bool,
    pub stateless: bool,
}
#[derive(Clone, Debug)]
pub struct ServerNotification {
    pub method: String,
    pub params: Value,
    pub received_at: Instant,
    pub via: StreamKind,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    PostResponse,
    GetStream,
    Listen,
}
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    pub reconnects: u64,
    pub resumed: u64,
    pub duplicates_dropped: u64,
    pub server_requests_answered: u64,
}
#[derive(Clone, Debug)]
pub struct ToolResult {
    pub is_error: bool,
    pub content: Value,
    pub structured: Option<Value>,
}
pub struct McpClient {
    tx: tokio::sync::broadcast::Sender<ServerNotification>,
}
impl McpClient {
    pub fn new(config: ClientConfig, http: reqwest::Client) -> Self {
        Self { tx: tokio::sync::broadcast::channel(16).0 }
    }
    pub async fn connect(&self) -> Result<ServerInfo, McpError> {
        Err(McpError::Cancelled)
    }
    pub fn server_info(&self) -> Option<ServerInfo> {
        None
    }
    pub async fn ping(&self) -> Result<(), McpError> {
        Err(McpError::Cancelled)
    }
    pub fn supports_ping(&self) -> bool {
        true
    }
    pub async fn list_tools(&self) -> Result<Vec<Value>, McpError> {
        Err(McpError::Cancelled)
    }
    pub async fn list_resources(&self) -> Result<Vec<Value>, McpError> {
        Err(McpError::Cancelled)
    }
    pub async fn list_prompts(&self) -> Result<Vec<Value>, McpError> {
        Err(McpError::Cancelled)
    }
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Value,
        progress_token: Option<&str>,
    ) -> Result<ToolResult, McpError> {
        Err(McpError::Cancelled)
    }
    pub async fn read_resource(&self, uri: &str) -> Result<Value, McpError> {
        Err(McpError::Cancelled)
    }
    pub async fn subscribe_resource(&self, uri: &str) -> Result<(), McpError> {
        Err(McpError::Cancelled)
    }
    pub async fn get_prompt(&self, name: &str, arguments: Value) -> Result<Value, McpError> {
        Err(McpError::Cancelled)
    }
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, McpError> {
        Err(McpError::Cancelled)
    }
    pub fn notifications(&self) -> tokio::sync::broadcast::Receiver<ServerNotification> {
        self.tx.subscribe()
    }
    pub async fn open_stream(&self) -> Result<bool, McpError> {
        Ok(false)
    }
    pub fn stream_stats(&self) -> StreamStats {
        StreamStats::default()
    }
    pub async fn close(&self) -> Result<(), McpError> {
        Ok(())
    }
}
