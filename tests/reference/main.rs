//! The reference MCP server (`src/reference/`, `mcp-canary target`): its knobs, sessions,
//! notifications, metrics and shutdown, its distributed form behind nginx with Redis, and its
//! OAuth protection against a real authorization server.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/oidc.rs"]
mod oidc;
#[path = "../common/target_util.rs"]
mod target_util;
#[path = "../common/topology.rs"]
mod topology;

mod distributed_target;
mod oauth_target;
mod target_expire_sessions;
mod target_knob_error_rate;
mod target_knob_latency;
mod target_knob_stall;
mod target_knob_tool_error;
mod target_metrics;
mod target_notify;
mod target_resource_updates;
mod target_session_handshake;
mod target_session_idle_timeout;
mod target_shutdown;
mod target_sse_resume;
mod target_stateless_2026;
