//! Independent MCP servers (tests/peers/, npm and PyPI packages) checked against
//! docs/compatibility.md; `MCP_CANARY_WRITE_COMPAT=1 cargo test --test compat` rewrites its cells.

#[path = "../common/mod.rs"]
mod common;

mod notify_any_server;
mod peer_check;
mod peer_matrix;
