//! mcp-canary: a canary prober, load runner and telemetry exporter for MCP servers.
//!
//! Data flows one way: config -> scheduler -> runners -> MCP client -> outcomes -> telemetry.

pub mod mcp;
pub mod target;
