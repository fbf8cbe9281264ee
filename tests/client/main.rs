//! The MCP client (`src/mcp/`) against scripted servers and the official "everything" server:
//! one module per former `tests/mcp_client_*.rs`. scripts/test.sh runs this crate twice, the
//! second time with `MCP_CANARY_TEST_OWN_CONNECTIONS=1` (the lean transport of profile sessions).

#[path = "../common/client_support.rs"]
mod client_support;
#[path = "../common/tls.rs"]
mod tls;

mod mcp_client_bad_responses;
mod mcp_client_body_cap;
mod mcp_client_concurrency;
mod mcp_client_everything;
mod mcp_client_fallback;
mod mcp_client_get_stream;
mod mcp_client_http_error_code;
mod mcp_client_http_version;
mod mcp_client_log_level;
mod mcp_client_own_connections;
mod mcp_client_pagination;
mod mcp_client_reset;
mod mcp_client_response_headers;
mod mcp_client_resume;
mod mcp_client_session_expiry;
mod mcp_client_sse_quirks;
mod mcp_client_sse_response;
mod mcp_client_stateless;
mod mcp_client_unreachable;
