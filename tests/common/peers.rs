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
/// killed when dropped; wait (at most 30 s) until it listens there. Returns the child, its MCP
/// endpoint `http://127.0.0.1:PORT/mcp` and its log. A port taken by another process between
/// picking it and the peer's bind (the peer then fails to bind while the other answers) is
/// noticed by who owns the listening socket, and the peer is started again on another port.
pub async fn spawn_listening(
    name: &str,
    program: &std::path::Path,
    args: &[PathBuf],
    envs: &[(&str, &str)],
) -> (Child, String, PathBuf) {
    for attempt in 1..=3 {
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
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        loop {
            let pid = child.id().unwrap_or(0);
            if tokio::net::TcpStream::connect(&addr).await.is_ok() && listens_on(pid, port) {
                return (child, format!("http://{addr}/mcp"), log);
            }
            if let Ok(Some(status)) = child.try_wait() {
                let text = log_text();
                if attempt < 3 && text.to_lowercase().contains("address already in use") {
                    eprintln!("peer {name}: port {port} was taken before it could bind; trying another");
                    break;
                }
                panic!("peer {name} exited ({status}) before listening on {addr}:\n{text}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "peer {name} did not listen on {addr} within 30s:\n{}",
                log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// Whether process `pid` (or a child of it) holds a listening TCP socket on loopback `port`:
/// the socket inodes of `/proc/net/tcp` and `tcp6` (a server bound to `::` takes IPv4 too) in
/// state LISTEN, matched against the process's descriptors.
fn listens_on(pid: u32, port: u16) -> bool {
    let table = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    let tables = table("/proc/net/tcp") + &table("/proc/net/tcp6");
    let inodes: Vec<String> = tables
        .lines()
        .filter(|l| !l.trim_start().starts_with("sl"))
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            (u16::from_str_radix(local_port, 16).ok()? == port && f.get(3)? == &"0A")
                .then(|| f.get(9).map(|s| s.to_string()))?
        })
        .collect();
    let mut pids = vec![pid.to_string()];
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            pids.extend(children.split_whitespace().map(str::to_string));
        }
    }
    pids.iter().any(|p| {
        std::fs::read_dir(format!("/proc/{p}/fd")).into_iter().flatten().flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| inodes.iter().any(|i| l.to_string_lossy() == format!("socket:[{i}]")))
        })
    })
}
