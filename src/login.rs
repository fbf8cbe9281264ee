//! `mcp-canary auth login`: authorize the canary for a target whose server offers only the
//! authorization-code flow. Authorization code with PKCE and a loopback redirect (RFC 8252); the
//! refresh token goes to the target's `token_file` (atomically, mode 0600), which the daemon then
//! uses and rotates. `--oauth-headless` walks the authorization redirects itself, for test
//! authorization servers that approve without a person.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::mcp::auth::{self, Grant};

/// `mcp-canary auth ...`.
#[derive(clap::Subcommand, Debug)]
pub enum AuthCommand {
    /// Authorize the canary for a target (authorization code + PKCE) and store its refresh
    /// token in the target's `token_file`.
    Login(LoginArgs),
}

/// Flags of `mcp-canary auth login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    #[arg(long, short)]
    pub config: PathBuf,
    /// The target (its `name`) to authorize; it needs `[targets.oauth]` with
    /// `grant = "refresh_token"` and a `token_file`.
    #[arg(long)]
    pub target: String,
    /// Follow the authorization redirects without a browser (test authorization servers that
    /// approve on their own).
    #[arg(long)]
    pub oauth_headless: bool,
    /// How long to wait for the browser to come back.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    pub timeout: Duration,
}

/// Bound on the redirect request the browser sends to the loopback listener.
const MAX_CALLBACK_BYTES: usize = 16 * 1024;

pub async fn run(command: AuthCommand) -> anyhow::Result<u8> {
    let AuthCommand::Login(args) = command;
    let invalid = |e: crate::config::ConfigErrors| anyhow::anyhow!("invalid config {}:\n{e}", args.config.display());
    let config = crate::config::load(&args.config).map_err(invalid)?;
    let target = config
        .targets
        .iter()
        .find(|t| t.name == args.target)
        .ok_or_else(|| anyhow::anyhow!("no target named {:?} in {}", args.target, args.config.display()))?;
    let source =
        target.auth.as_ref().ok_or_else(|| anyhow::anyhow!("target {:?} has no [targets.oauth]", args.target))?;
    let Grant::RefreshToken { token_file } = source.grant() else {
        anyhow::bail!("target {:?}: auth login needs grant = \"refresh_token\" and a token_file", args.target);
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let redirect_uri: url::Url = format!("http://127.0.0.1:{}/callback", listener.local_addr()?.port()).parse()?;
    let authorization = source.authorization(redirect_uri.clone()).await?;
    let landed = if args.oauth_headless {
        auth::walk_headless(&authorization.url, &redirect_uri).await?
    } else {
        println!(
            "Open this URL in a browser to authorize mcp-canary for {}:\n\n  {}\n",
            args.target, authorization.url
        );
        println!("Waiting up to {} for the redirect to {redirect_uri} ...", humantime::format_duration(args.timeout));
        tokio::time::timeout(args.timeout, callback(&listener, &redirect_uri))
            .await
            .map_err(|_| anyhow::anyhow!("no redirect within {}", humantime::format_duration(args.timeout)))??
    };
    let lifetime = source.complete(authorization, &landed).await?;
    println!(
        "authorized: the refresh token is in {} (mode 0600); the daemon uses it and stores each rotated one there{}",
        token_file.display(),
        lifetime.map(|l| format!(" (access tokens live {})", humantime::format_duration(l))).unwrap_or_default()
    );
    Ok(0)
}

/// Accept connections on the loopback listener until one asks for the redirect path; answer
/// it with a short page and return the URL it asked for.
async fn callback(listener: &tokio::net::TcpListener, redirect_uri: &url::Url) -> anyhow::Result<url::Url> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_CALLBACK_BYTES {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        let head = String::from_utf8_lossy(&buf);
        let target = head.lines().next().and_then(|l| l.split(' ').nth(1)).unwrap_or("");
        let Ok(landed) = redirect_uri.join(target) else { continue };
        if landed.path() != redirect_uri.path() {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
            continue;
        }
        let body = "mcp-canary is authorized; you can close this window.\n";
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        return Ok(landed);
    }
}
