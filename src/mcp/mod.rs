//! MCP client over Streamable HTTP, both protocol eras. Knows nothing about profiles or metrics.

pub mod client;
pub mod error;

pub use client::*;
pub use error::{ErrorType, McpError};
