//! MCP client over Streamable HTTP, both protocol eras. Knows nothing about profiles or metrics.

pub mod auth;
pub mod client;
pub mod error;
pub mod h1;
pub mod lean;
pub mod listing;
pub mod protocol;
pub mod secret;
pub mod session;
pub mod sse;
pub mod transport;

pub use client::*;
pub use error::{ErrorType, McpError};
pub use listing::{ListKind, Listing};
pub use secret::Secret;
