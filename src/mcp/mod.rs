//! MCP client over Streamable HTTP, both protocol eras. Knows nothing about profiles or metrics.

pub mod error;

pub use error::{ErrorType, McpError};
