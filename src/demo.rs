//! `demo`: the reference target and the daemon in one process, no config needed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{RawConfig, RawNotification, RawProbe, RawProbeSettings, RawServer, RawTarget};
use crate::telemetry::Exporter;

/// Flags of `mcp-canary demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where the daemon serves /metrics.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Probe interval of the demo targets.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
}

/// The demo config: the reference target probed on the cold path (`auto`, so the stateless
/// 2026-07-28 revision, fresh every cycle) and on the warm path (one long-lived 2025-11-25
/// session with its GET stream), so both protocol eras show up.
pub fn demo_config(listen: SocketAddr, mcp_url: &str, interval: Duration) -> RawConfig {
    let table = |pairs: &[(&str, &str)]| {
        Some(pairs.iter().map(|(k, v)| (k.to_string(), toml::Value::String(v.to_string()))).collect())
    };
    let target = |name: &str, session: &str, protocol: &str| RawTarget {
        interval,
        jitter: 0.1,
        settings: RawProbeSettings {
            timeout: Some(interval.min(Duration::from_secs(5))),
            protocol: protocol.into(),
            session: session.into(),
            probe: RawProbe {
                tool: Some("echo".into()),
                tool_arguments: table(&[("message", "canary")]),
                resource: Some("canary://static/hello".into()),
                prompt: Some("greeting".into()),
                prompt_arguments: table(&[("name", "canary")]),
            },
            notification: Some(RawNotification {
                tool: "notify".into(),
                arguments: table(&[("nonce", "{nonce}")]),
                method: "notifications/message".into(),
                timeout: Duration::from_secs(5),
            }),
            ..Default::default()
        },

        ..RawTarget::new(name, mcp_url)
    };
    RawConfig {
        server: RawServer { listen: listen.to_string(), ..Default::default() },
        targets: vec![target("reference-cold", "fresh", "auto"), target("reference-warm", "persistent", "2025-11-25")],
        ..Default::default()
    }
}

/// Run the demo until `shutdown`.
pub async fn run(args: DemoArgs, exporter: Exporter, shutdown: CancellationToken) -> anyhow::Result<()> {
    let target_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let target = crate::reference::spawn(target_listener, Default::default(), shutdown.child_token()).await?;
    let raw = demo_config(args.listen, &target.mcp_url(), args.interval);
    let config = crate::config::validate(&raw).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e} (try --listen 127.0.0.1:0)", args.listen))?;
    let addr = listener.local_addr()?;
    println!("reference MCP server on {} (admin knobs: {}/admin/knobs)", target.mcp_url(), target.base_url());
    println!("open http://{addr}/metrics and look for:");
    println!("  mcp_canary_probe_success{{target=\"reference-cold\"}} 1");
    println!("  mcp_client_operation_duration_seconds_bucket{{...,mcp_method_name=\"tools/call\",...}}");
    println!("  mcp_canary_notifications_received_total{{target=\"reference-warm\"}}");
    println!("first results within {} ; Ctrl-C stops", humantime::format_duration(args.interval));
    crate::daemon::run(config, exporter, Some(listener), None, shutdown).await
}
