//! TEMPORARY interface stub of the reference MCP server; replaced by the real target on merge.
#![allow(dead_code, unused_variables)]
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// Flags of `mcp-canary target`.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

impl TargetArgs {
    pub fn options(&self) -> TargetOptions {
        TargetOptions::default()
    }
}

/// Startup settings of the reference target (initial knob values and limits).
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {}

/// A running reference target.
pub struct TargetHandle {
    addr: SocketAddr,
}

impl TargetHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

/// Serve the reference target on `listener` until `shutdown`.
pub async fn spawn(
    listener: tokio::net::TcpListener,
    options: TargetOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<TargetHandle> {
    Ok(TargetHandle { addr: listener.local_addr()? })
}
