//! The peer matrix: independent MCP servers from package registries, each started on a free
//! loopback port with Streamable HTTP at `/mcp` and three tools of ours (the everything server
//! has its own): a notifying tool, a slow tool and a failing tool.
//!
//! Installed by `scripts/install-test-servers.sh` into `.cache/`; the server files are in
//! `tests/peers/`. A peer whose files are missing panics (under CI a missing peer must fail the
//! run, never skip it).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::{free_port, log_dir};

/// One independent MCP server implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The official Python SDK 2.x (`MCPServer`), PyPI `mcp==2.3.0`: the 2026-07-28 stateless
    /// revision and the 2025 session handshake.
    PythonSdk2,
    /// The official Python SDK 1.x (`FastMCP`), PyPI `mcp==1.30.0`: 2025 sessions.
    PythonSdk1,
    /// The mcp-use framework, npm `mcp-use@2.5.2` (TypeScript): stateless on every revision.
    McpUse,
    /// The official TypeScript "everything" server, npm
    /// `@modelcontextprotocol/server-everything@2026.8.31`: 2025 sessions, its own tools.
    Everything,
    /// The official Rust SDK, crates.io `rmcp` 3.11 (`tests/peers/rmcp`, a workspace member built
    /// by `cargo build -p rmcp-peer`): the 2026-07-28 stateless revision and 2025 sessions.
    Rmcp,
}

/// A tool call: name and arguments (`{nonce}` is replaced by `check` in notify arguments).
pub struct ToolCall {
    pub name: &'static str,
    pub args: Value,
}

/// How a peer's notification round trip is triggered and what it sends.
pub struct NotifyCall {
    pub tool: ToolCall,
    pub method: &'static str,
    /// The protocol revision to pin for the round trip, when `auto` would not deliver it.
    pub protocol: Option<&'static str>,
}

impl Peer {
    pub const ALL: [Peer; 5] = [Peer::PythonSdk2, Peer::PythonSdk1, Peer::McpUse, Peer::Everything, Peer::Rmcp];

    /// Short name for logs and assertion messages.
    pub fn name(self) -> &'static str {
        match self {
            Peer::PythonSdk2 => "python-sdk-2",
            Peer::PythonSdk1 => "python-sdk-1",
            Peer::McpUse => "mcp-use",
            Peer::Everything => "everything",
            Peer::Rmcp => "rmcp",
        }
    }

    /// The registry package and version (pinned in `scripts/install-test-servers.sh`).
    pub fn package(self) -> &'static str {
        match self {
            Peer::PythonSdk2 => "PyPI mcp 2.3.0",
            Peer::PythonSdk1 => "PyPI mcp 1.30.0",
            Peer::McpUse => "npm mcp-use 2.5.2",
            Peer::Everything => "npm @modelcontextprotocol/server-everything 2026.8.31",
            Peer::Rmcp => "crates.io rmcp 3.11.0",
        }
    }

    /// The `serverInfo.version` the peer reports, when it is the package's own version (the
    /// Python SDK servers report the installed SDK's): catches a stale `.cache/`.
    pub fn reported_version(self) -> Option<&'static str> {
        match self {
            Peer::PythonSdk2 => Some("2.3.0"),
            Peer::PythonSdk1 => Some("1.30.0"),
            Peer::McpUse | Peer::Everything | Peer::Rmcp => None,
        }
    }

    /// The notifying tool. Ours send `notifications/message` with the nonce in its data (and a
    /// progress notification); the everything server only sends progress, whose token is the
    /// nonce. The Python SDK 2.x negotiates 2026-07-28 and sends a log message only to a request
    /// that opted in with `_meta["io.modelcontextprotocol/logLevel"]`: its round trip at the
    /// auto-negotiated revision is the test of that opt-in.
    pub fn notify(self) -> NotifyCall {
        match self {
            Peer::Everything => NotifyCall {
                tool: ToolCall { name: "trigger-long-running-operation", args: json!({"duration": 0.1, "steps": 1}) },
                method: "notifications/progress",
                protocol: None,
            },
            Peer::PythonSdk2 | Peer::PythonSdk1 | Peer::McpUse | Peer::Rmcp => NotifyCall {
                tool: ToolCall { name: "notify", args: json!({"nonce": "{nonce}"}) },
                method: "notifications/message",
                protocol: None,
            },
        }
    }

    /// A tool that answers after `ms` milliseconds.
    pub fn slow(self, ms: u64) -> ToolCall {
        match self {
            Peer::Everything => ToolCall {
                name: "trigger-long-running-operation",
                args: json!({"duration": ms as f64 / 1000.0, "steps": 1}),
            },
            _ => ToolCall { name: "slow", args: json!({"ms": ms}) },
        }
    }

    /// A tool call that comes back as an `isError: true` result. The everything server has no
    /// failing tool; its input validation error on `get-sum` is an `isError` result.
    pub fn fail(self) -> ToolCall {
        match self {
            Peer::Everything => ToolCall { name: "get-sum", args: json!({"a": "not a number", "b": 1}) },
            _ => ToolCall { name: "fail", args: json!({}) },
        }
    }

    /// The program, its arguments and the file that must exist for the peer to start.
    fn command(self) -> (PathBuf, Vec<PathBuf>, PathBuf) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let python = |venv: &str| {
            let bin = root.join(".cache/py").join(venv).join("bin/python");
            (bin.clone(), vec![root.join("tests/peers/python_sdk_server.py")], bin)
        };
        match self {
            Peer::PythonSdk2 => python("mcp2"),
            Peer::PythonSdk1 => python("mcp1"),
            Peer::McpUse => (
                "node".into(),
                vec![root.join("tests/peers/mcp_use_server.mjs")],
                root.join(".cache/npm/mcp-use/node_modules/mcp-use/package.json"),
            ),
            Peer::Rmcp => {
                // Beside the binary under test: the same profile directory of the same workspace.
                let bin = PathBuf::from(env!("CARGO_BIN_EXE_mcp-canary")).with_file_name("rmcp-peer");
                (bin.clone(), Vec::new(), bin)
            }
            Peer::Everything => {
                let entry = root
                    .join(".cache/npm/everything/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
                ("node".into(), vec![entry.clone(), "streamableHttp".into()], entry)
            }
        }
    }
}

/// A running peer, killed when dropped.
pub struct PeerServer {
    pub peer: Peer,
    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    pub log: PathBuf,
    child: Child,
}

impl PeerServer {
    /// Kill the peer and wait (bounded) until it is gone; its port then refuses connections.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    /// The peer's output so far (for assertion messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Start `peer` on a free loopback port and wait (at most 30 s) until it accepts connections.
/// Panics, naming the install script, when the peer is missing (never a silent pass).
pub async fn start(peer: Peer) -> PeerServer {
    let (program, args, needed) = peer.command();
    assert!(
        needed.is_file(),
        "peer {} ({}): {} is missing: run scripts/install-test-servers.sh (scripts/test.sh does)",
        peer.name(),
        peer.package(),
        needed.display()
    );
    // mcp-use reports usage to its vendor unless this is "false".
    let (child, url, log) =
        spawn_listening(peer.name(), &program, &args, &[("MCP_USE_ANONYMIZED_TELEMETRY", "false")]).await;
    PeerServer { peer, url, log, child }
}

/// Run `program ARGS` with `PORT` set to a free loopback port (and `envs`), output to a log,
/// killed when dropped; wait (at most 30 s) until it accepts connections. Returns the child,
/// its MCP endpoint `http://127.0.0.1:PORT/mcp` and its log.
pub async fn spawn_listening(
    name: &str,
    program: &std::path::Path,
    args: &[PathBuf],
    envs: &[(&str, &str)],
) -> (Child, String, PathBuf) {
    let port = free_port();
    let log = log_dir().join(format!("peer-{name}-{}-{port}.log", std::process::id()));
    let out = std::fs::File::create(&log).expect("create peer log");
    let mut child = Command::new(program)
        .args(args)
        .env("PORT", port.to_string())
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().expect("clone log handle")))
        .stderr(Stdio::from(out))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {} for peer {name}: {e}", program.display()));
    let addr = format!("127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("peer {name} exited ({status}) before listening on {addr}:\n{}", log_text());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "peer {name} did not listen on {addr} within 30s:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, format!("http://{addr}/mcp"), log)
}
