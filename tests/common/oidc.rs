//! The test authorization server: npm `oidc-provider` (installed by
//! `scripts/install-test-servers.sh` into `.cache/npm/oidc-provider`) run by
//! `tests/auth/provider.mjs` on a free loopback port, killed when dropped. Its clients, accounts
//! and knobs are described in docs/auth-testing.md; their ids and secrets are the constants
//! below. A test crate includes it beside `common` (whose [`Proc`] runs the launcher):
//! `#[path = "../common/oidc.rs"] mod oidc;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use sha2::Digest as _;
use tokio::process::Command;

use crate::common::Proc;

/// A confidential client (client credentials grant) and how it authenticates.
#[derive(Debug, Clone, Copy)]
pub struct SecretClient {
    pub id: &'static str,
    pub secret: &'static str,
}

/// `client_secret_basic`: the secret in an HTTP Basic `Authorization` header.
pub const BASIC_CLIENT: SecretClient = SecretClient { id: "canary-basic", secret: "canary-basic-secret" };
/// `client_secret_post`: `client_id` and `client_secret` in the form body.
pub const POST_CLIENT: SecretClient = SecretClient { id: "canary-post", secret: "canary-post-secret" };
/// `private_key_jwt`: a client assertion signed with [`OidcProvider::rs256_key`] (kid
/// [`JWT_CLIENT_RS256_KID`]) or [`OidcProvider::es256_key`] (kid [`JWT_CLIENT_ES256_KID`]).
pub const JWT_CLIENT_ID: &str = "canary-jwt";
pub const JWT_CLIENT_RS256_KID: &str = "canary-jwt-rs256";
pub const JWT_CLIENT_ES256_KID: &str = "canary-jwt-es256";
/// A public native client: authorization code + PKCE (S256), refresh tokens; registered
/// redirect URI `http://127.0.0.1/callback` on any loopback port (RFC 8252 section 7.3).
pub const PUBLIC_CLIENT_ID: &str = "canary-public";
pub const PUBLIC_REDIRECT_PATH: &str = "/callback";
/// The account the headless interaction logs in (the `sub` of user-delegated tokens).
pub const TEST_ACCOUNT: &str = "canary-user";
/// The scopes an MCP resource offers.
pub const MCP_SCOPES: [&str; 2] = ["mcp:tools", "mcp:read"];
/// Stdout line prefix the launcher prints when ready (followed by the issuer).
const READY: &str = "oidc-provider listening on ";

/// A running oidc-provider.
pub struct OidcProvider {
    /// The issuer identifier, `http://127.0.0.1:PORT` (no trailing slash); the endpoints are
    /// below it ([`OidcProvider::endpoint`]).
    pub issuer: String,
    keys: tempfile::TempDir,
    /// The launcher, killed on drop; its stderr is the log.
    proc: Proc,
}

impl OidcProvider {
    /// Start with the default knobs (access tokens live 300 s, RS256).
    pub async fn start() -> OidcProvider {
        Self::start_with(&[]).await
    }

    /// Start with extra environment, e.g. `("OIDC_ACCESS_TOKEN_TTL", "2")` or
    /// `("OIDC_ACCESS_TOKEN_ALG", "ES256")`. Panics, naming the install script, when
    /// oidc-provider is not installed; waits at most 90 s for the ready line.
    pub async fn start_with(envs: &[(&str, &str)]) -> OidcProvider {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let package = root.join(".cache/npm/oidc-provider/node_modules/oidc-provider/package.json");
        assert!(
            package.is_file(),
            "oidc-provider: {} is missing: run scripts/install-test-servers.sh (scripts/test.sh does)",
            package.display()
        );
        let keys = tempfile::tempdir().expect("keys tempdir");
        let script = root.join("tests/auth/provider.mjs");
        let keys_arg = keys.path().to_str().expect("utf-8 temp path");
        let args = [script.to_str().expect("utf-8 repo path"), "0", keys_arg];
        // Generous: a cold first import on a loaded machine was seen to take 30 s.
        let proc =
            Proc::start_within("oidc-provider", Command::new("node"), &args, envs, READY, Duration::from_secs(90))
                .await;
        OidcProvider { issuer: proc.announced.clone(), keys, proc }
    }

    /// An endpoint below the issuer: `token`, `auth`, `token/revocation`,
    /// `token/introspection`, `reg`, `jwks`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{}", self.issuer, path.trim_start_matches('/'))
    }

    pub fn token_endpoint(&self) -> String {
        self.endpoint("token")
    }

    /// The private key (PKCS#8 PEM) of [`JWT_CLIENT_ID`]'s RS256 key.
    pub fn rs256_key(&self) -> PathBuf {
        self.keys.path().join("client-rs256.pem")
    }

    /// The private key (PKCS#8 PEM) of [`JWT_CLIENT_ID`]'s ES256 key (P-256).
    pub fn es256_key(&self) -> PathBuf {
        self.keys.path().join("client-es256.pem")
    }

    /// The directory holding both keys.
    pub fn keys_dir(&self) -> &Path {
        self.keys.path()
    }

    /// The launcher's output so far (for assertion messages).
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// Kill the provider and wait (bounded) until it is gone.
    pub async fn stop(&mut self) {
        let _ = self.proc.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.proc.child.wait()).await;
    }
}

/// A PKCE pair: a random verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        Pkce { verifier, challenge }
    }
}

/// `application/x-www-form-urlencoded` body of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k, v);
    }
    body.finish()
}

/// Follow an authorization request headlessly: GET `url` and each redirect (carrying the
/// provider's cookies by hand) until one leads to `redirect_prefix`; returns that final URL.
/// At most 10 hops, each bounded by `client`'s timeout. `client` must not follow redirects.
pub async fn follow_authorization(
    client: &reqwest::Client,
    url: &str,
    redirect_prefix: &str,
) -> Result<url::Url, String> {
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut next = url::Url::parse(url).map_err(|e| e.to_string())?;
    for _ in 0..10 {
        if next.as_str().starts_with(redirect_prefix) {
            return Ok(next);
        }
        let cookie_header = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut request = client.get(next.clone());
        if !cookie_header.is_empty() {
            request = request.header("Cookie", cookie_header);
        }
        let response = request.send().await.map_err(|e| format!("GET {next}: {e}"))?;
        for set in response.headers().get_all("set-cookie") {
            let Some((name, rest)) = set.to_str().unwrap_or_default().split_once('=') else { continue };
            let value = rest.split(';').next().unwrap_or_default().to_string();
            cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                cookies.push((name.to_string(), value));
            }
        }
        if !response.status().is_redirection() {
            let status = response.status();
            return Err(format!(
                "GET {next}: {status} without a redirect: {}",
                response.text().await.unwrap_or_default()
            ));
        }
        let location =
            response.headers().get("location").and_then(|v| v.to_str().ok()).ok_or("redirect without Location")?;
        next = next.join(location).map_err(|e| e.to_string())?;
    }
    Err(format!("no redirect to {redirect_prefix} within 10 hops"))
}
