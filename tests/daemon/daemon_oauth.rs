//! A protected MCP server end to end: the reference target behind a real authorization server
//! (npm oidc-provider, tests/auth/provider.mjs), probed by `check` and by the daemon with OAuth
//! client credentials: discovery from the target's metadata, the three client authentication
//! methods (secret basic, secret post, private_key_jwt with RS256 and ES256 keys), scope step-up, short-lived tokens renewed by a long-running daemon, a refused
//! credential classified as `auth` without its secret anywhere, and the token health metrics the
//! auth alerts read.

use std::process::Output;
use std::time::Duration;

use mcp_canary::reference::{OAuthOptions, TargetOptions};
use tokio_util::sync::CancellationToken;

use crate::common::{self, scrape_until, start_daemon};
use crate::oidc::{
    BASIC_CLIENT, JWT_CLIENT_ES256_KID, JWT_CLIENT_ID, JWT_CLIENT_RS256_KID, OidcProvider, POST_CLIENT,
    PUBLIC_CLIENT_ID,
};
use crate::promql;

/// The reference target protected by `provider`: every request needs `mcp:read`, a call of
/// `echo` needs `mcp:tools` too (step-up).
async fn protected_target(provider: &OidcProvider) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let oauth = OAuthOptions {
        issuer: provider.issuer.clone(),
        scopes: vec!["mcp:read".into()],
        tool_scopes: vec![("echo".into(), "mcp:tools".into())],
        resource: None,
    };
    let options = TargetOptions { oauth: Some(oauth), ..Default::default() };
    let handle = mcp_canary::reference::spawn(listener, options, stop.clone()).await.expect("protected target");
    (handle.mcp_url(), stop)
}

async fn check(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(common::bin());
    cmd.arg("check").args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run check")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probes_a_protected_server_with_client_credentials() {
    let provider = OidcProvider::start().await;
    let (url, _stop) = protected_target(&provider).await;
    let echo = ["--tool", "echo", "--tool-args", r#"{"message":"hi"}"#];

    // Without credentials: the server's 401 is `auth` (exit 4).
    let bare = check(&[&echo[..], &["--json", &url]].concat(), &[]).await;
    assert_eq!(bare.status.code(), Some(4), "{}", text(&bare));

    // client_secret_basic, scopes from the server's metadata (mcp:read and mcp:tools).
    let secret = [("CANARY_OAUTH_SECRET", BASIC_CLIENT.secret)];
    let basic = ["--oauth-client-id", BASIC_CLIENT.id, "--oauth-client-secret-env", "CANARY_OAUTH_SECRET"];
    let out = check(&[&echo[..], &basic[..], &["--json", &url]].concat(), &secret).await;
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), provider.log_text());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["method"] == "tools/call" && s["outcome"] == "success"), "{report:#}");

    // `run load` takes the same flags: every request of a short run carries a token.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("load.json");
    let load = [
        "run",
        "load",
        "--target",
        &url,
        "--clients",
        "2",
        "--rpm",
        "120",
        "--duration",
        "2s",
        "--mix",
        "fast_tool=1",
        "--fast-tool-args",
        r#"{"message":"load"}"#,
        "--report",
        report.to_str().unwrap(),
    ];
    let mut cmd = tokio::process::Command::new(common::bin());
    cmd.args(load).args(basic).env("CANARY_OAUTH_SECRET", BASIC_CLIENT.secret);
    let out = cmd.output().await.expect("run load");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let fast = &r["operations"]["fast_tool"];
    assert!(fast["count"].as_u64().unwrap_or(0) >= 4 && fast["errors"] == 0, "{r:#}");

    // client_secret_post from a file, asking only for mcp:read: the call of echo is refused with
    // 403 insufficient_scope, the canary asks again with mcp:tools added, and the call passes.
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{}\n", POST_CLIENT.secret)).unwrap();
    let post = [
        "--oauth-client-id",
        POST_CLIENT.id,
        "--oauth-client-secret-file",
        file.to_str().unwrap(),
        "--oauth-auth-method",
        "client_secret_post",
        "--oauth-scope",
        "mcp:read",
    ];
    let out = check(&[&echo[..], &post[..], &[url.as_str()]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), provider.log_text());
    assert!(text(&out).contains("tools/call echo"), "{}", text(&out));

    // private_key_jwt: a client assertion signed with the client's RS256 key, then its ES256 key.
    for (key, alg, kid) in
        [(provider.rs256_key(), "RS256", JWT_CLIENT_RS256_KID), (provider.es256_key(), "ES256", JWT_CLIENT_ES256_KID)]
    {
        let jwt = [
            "--oauth-client-id",
            JWT_CLIENT_ID,
            "--oauth-private-key-file",
            key.to_str().unwrap(),
            "--oauth-signing-alg",
            alg,
            "--oauth-key-id",
            kid,
        ];
        let out = check(&[&echo[..], &jwt[..], &[url.as_str()]].concat(), &[]).await;
        assert_eq!(out.status.code(), Some(0), "{alg}: {}\n{}", text(&out), provider.log_text());
        let key_text = std::fs::read_to_string(&key).unwrap();
        let body = key_text.lines().nth(1).unwrap();
        assert!(!text(&out).contains(body), "{alg}: the key was printed");
    }
    // The RS256 key under the ES256 key's id: the assertion's signature does not verify.
    let rs256 = provider.rs256_key();
    let swapped = [
        "--oauth-client-id",
        JWT_CLIENT_ID,
        "--oauth-private-key-file",
        rs256.to_str().unwrap(),
        "--oauth-key-id",
        JWT_CLIENT_ES256_KID,
    ];
    let out = check(&[&echo[..], &swapped[..], &[url.as_str()]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("invalid_client"), "{}", text(&out));

    // A wrong secret: the token endpoint refuses it; `auth` (exit 4), the reason named, the
    // secret nowhere in the output.
    let wrong = [("CANARY_OAUTH_SECRET", "hunter2-wrong-secret")];
    let out = check(&[&echo[..], &basic[..], &[url.as_str()]].concat(), &wrong).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("invalid_client"), "{}", text(&out));
    assert!(!text(&out).contains("hunter2"), "the secret was printed: {}", text(&out));

    // Metadata that names another issuer (the provider is `127.0.0.1`, asked for as
    // `localhost`) is refused before any secret is sent.
    let localhost = provider.issuer.replace("127.0.0.1", "localhost");
    let other = [&echo[..], &basic[..], &["--oauth-authorization-server", &localhost, url.as_str()]].concat();
    let out = check(&other, &secret).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("names another issuer"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_renews_short_lived_tokens_and_reports_their_health() {
    // Tokens live 3 s: a daemon probing every 2 s must renew them again and again.
    let provider = OidcProvider::start_with(&[("OIDC_ACCESS_TOKEN_TTL", "3")]).await;
    let (url, _stop) = protected_target(&provider).await;
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[[targets]]
name = "protected"
url = "{url}"
interval = "2s"
timeout = "2s"
[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}
[targets.oauth]
client_id = "{id}"
client_secret_env = "CANARY_OAUTH_SECRET"

[[targets]]
name = "static-jwt"
url = "{url}"
interval = "2s"
timeout = "2s"
bearer_token = "{static_jwt}"

[[targets]]
name = "locked-out"
url = "{url}"
interval = "2s"
timeout = "2s"
[targets.oauth]
client_id = "{id}"
client_secret_env = "CANARY_WRONG_SECRET"
"#,
        id = BASIC_CLIENT.id,
        static_jwt = unsigned_jwt(1_800_000_000)
    );
    let envs = [("CANARY_OAUTH_SECRET", BASIC_CLIENT.secret), ("CANARY_WRONG_SECRET", "hunter2-wrong-secret")];
    let (mut daemon, _dir, base) = start_daemon("oauth", &config, &envs).await;
    let ok = [("target", "protected"), ("outcome", "success")];
    let (s, held) = scrape_until(&base, Duration::from_secs(40), |s| {
        s.value("mcp_canary_auth_token_requests_total", &ok) >= 3.0
            && s.value("mcp_canary_probes_total", &ok) >= 8.0
            && s.value("mcp_canary_auth_token_requests_total", &[("target", "locked-out"), ("outcome", "failure")])
                >= 2.0
    })
    .await;
    assert!(held, "tokens were not renewed: {}\n{}", s.text, provider.log_text());
    // Every probe of the renewing target passed: no request went out with an expired token.
    let failed = [("target", "protected"), ("outcome", "failure")];
    assert_eq!(s.value("mcp_canary_probes_total", &failed), 0.0, "{}", s.text);
    assert_eq!(s.value("mcp_canary_auth_token_requests_total", &failed), 0.0, "{}", s.text);
    let expiry = s.value("mcp_canary_auth_token_expiry_timestamp_seconds", &[("target", "protected")]);
    let now = mcp_canary::clock::unix_seconds();
    assert!(expiry > now - 1.0 && expiry < now + 10.0, "expiry {expiry} vs now {now}");
    // The refused credential: every probe fails as `auth`, and no token was ever had.
    let locked = [("target", "locked-out"), ("error_type", "auth")];
    assert!(s.value("mcp_canary_operations_total", &locked) >= 2.0, "{}", s.text);
    assert_eq!(s.value("mcp_canary_probe_success", &[("target", "locked-out")]), 0.0);
    assert_eq!(
        s.value("mcp_canary_auth_token_requests_total", &[("target", "locked-out"), ("outcome", "success")]),
        0.0
    );
    assert!(!s.text.contains("hunter2") && !s.text.contains(BASIC_CLIENT.secret), "a secret in the metrics");

    // A static bearer token that is a JWT: its expiry is exported for the 72 h ticket.
    let credential = [("target", "static-jwt"), ("credential", "bearer_token")];
    assert_eq!(s.value("mcp_canary_auth_credential_expiry_timestamp_seconds", &credential), 1.8e9, "{}", s.text);

    // Every metric alerts/auth.yml uses is on this live scrape (tests/alerting/alerting_end_to_end.rs
    // leaves that file to this test: its daemon has no protected target).
    let names = s.names();
    let missing: Vec<_> =
        promql::rule_file_metric_names("alerts/auth.yml").into_iter().filter(|n| !names.contains(n.as_str())).collect();
    assert!(missing.is_empty(), "alerts/auth.yml uses metrics the daemon does not export: {missing:?}");

    assert_eq!(daemon.terminate(Duration::from_secs(20)).await, Some(0), "{}", daemon.log_text());
    let log = daemon.log_text();
    assert!(!log.contains("hunter2") && !log.contains(BASIC_CLIENT.secret), "a secret in the log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_login_stores_a_refresh_token_that_check_and_the_daemon_use_and_rotate() {
    use std::os::unix::fs::PermissionsExt;
    let provider = OidcProvider::start_with(&[("OIDC_ACCESS_TOKEN_TTL", "3")]).await;
    let (url, _stop) = protected_target(&provider).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("refresh-token");
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[[targets]]
name = "delegated"
url = "{url}"
interval = "2s"
timeout = "2s"
[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}
[targets.oauth]
client_id = "{PUBLIC_CLIENT_ID}"
grant = "refresh_token"
token_file = "{}"
"#,
        token_file.display()
    );
    let config_path = dir.path().join("canary.toml");
    std::fs::write(&config_path, &config).unwrap();
    let login = |extra: &'static [&'static str]| {
        let config_path = config_path.clone();
        async move {
            tokio::process::Command::new(common::bin())
                .args(["auth", "login", "--config", config_path.to_str().unwrap(), "--target", "delegated"])
                .args(extra)
                .output()
                .await
                .expect("run auth login")
        }
    };

    // Before the login there is no token: check fails as `auth`, naming the login.
    let check_args = ["--oauth-client-id", PUBLIC_CLIENT_ID, "--oauth-token-file", token_file.to_str().unwrap()];
    let echo = ["--tool", "echo", "--tool-args", r#"{"message":"hi"}"#];
    let out = check(&[&echo[..], &check_args[..], &[url.as_str()]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("auth login"), "{}", text(&out));

    // The headless login: authorization code + PKCE through the provider's own approval.
    let out = login(&["--oauth-headless"]).await;
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), provider.log_text());
    let first = std::fs::read_to_string(&token_file).expect("token file written");
    assert!(first.trim().len() > 10, "{first:?}");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!text(&out).contains(first.trim()), "the refresh token was printed: {}", text(&out));

    // check uses it, and the provider rotates it on every refresh: the file follows.
    let out = check(&[&echo[..], &check_args[..], &[url.as_str()]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), provider.log_text());
    let second = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(first, second, "the rotated refresh token was not stored");

    // The daemon renews 3 s access tokens with it again and again, storing each rotation.
    let (mut daemon, _dir, base) = start_daemon("oauth-login", &config, &[]).await;
    let ok = [("target", "delegated"), ("outcome", "success")];
    let (s, held) = scrape_until(&base, Duration::from_secs(40), |s| {
        s.value("mcp_canary_auth_token_requests_total", &ok) >= 3.0 && s.value("mcp_canary_probes_total", &ok) >= 5.0
    })
    .await;
    assert!(held, "the daemon did not renew with the refresh token: {}\n{}", s.text, daemon.log_text());
    assert_eq!(s.value("mcp_canary_probes_total", &[("target", "delegated"), ("outcome", "failure")]), 0.0);
    let third = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(second, third, "the daemon did not store the rotated refresh token");
    assert_eq!(daemon.terminate(Duration::from_secs(20)).await, Some(0));
    assert!(!daemon.log_text().contains(third.trim()), "a refresh token in the log");

    // Without a client_id the login registers a client dynamically (RFC 7591) and stores its id
    // beside the token; renewals use that id (the flag's `unregistered` is never sent).
    let dynamic_file = dir.path().join("dynamic-token");
    let dynamic_config = config
        .replace(&format!("client_id = \"{PUBLIC_CLIENT_ID}\"\n"), "")
        .replace(token_file.to_str().unwrap(), dynamic_file.to_str().unwrap());
    std::fs::write(&config_path, &dynamic_config).unwrap();
    let out = login(&["--oauth-headless"]).await;
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), provider.log_text());
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&dynamic_file).unwrap()).unwrap();
    let registered = stored["client_id"].as_str().expect("a registered client id");
    assert_ne!(registered, PUBLIC_CLIENT_ID);
    let dynamic_args = ["--oauth-client-id", "unregistered", "--oauth-token-file", dynamic_file.to_str().unwrap()];
    let out = check(&[&echo[..], &dynamic_args[..], &[url.as_str()]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), provider.log_text());
    let rotated: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&dynamic_file).unwrap()).unwrap();
    assert_eq!(rotated["client_id"], registered);
    assert_ne!(rotated["refresh_token"], stored["refresh_token"]);

    // A revoked refresh token: the next renewal is refused (`invalid_grant`), classified `auth`.
    let revoked = reqwest::Client::new()
        .post(provider.endpoint("token/revocation"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(crate::oidc::form(&[("token", third.trim()), ("client_id", PUBLIC_CLIENT_ID)]))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "revocation: {}", revoked.status());
    let out = check(&[&echo[..], &check_args[..], &[url.as_str()]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("invalid_grant"), "{}", text(&out));
}

/// The Python SDK 1.x as a protected resource server (tests/peers/python_sdk_protected_server.py)
/// in front of `provider`; killed when dropped.
async fn python_protected_peer(provider: &OidcProvider) -> (tokio::process::Child, String, std::path::PathBuf) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".cache/py/mcp1/bin/python");
    assert!(python.is_file(), "{} is missing: run scripts/install-test-servers.sh", python.display());
    let script = root.join("tests/peers/python_sdk_protected_server.py");
    common::peers::spawn_listening("python-sdk-protected", &python, &[script], &[("ISSUER", &provider.issuer)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_protected_server_the_python_sdk() {
    let provider = OidcProvider::start().await;
    let (_peer, url, log) = python_protected_peer(&provider).await;
    let peer_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let echo = ["--tool", "echo", "--tool-args", r#"{"message":"hi"}"#];

    // Its own challenge without a token: `auth` (exit 4).
    let bare = check(&[&echo[..], &[url.as_str()]].concat(), &[]).await;
    assert_eq!(bare.status.code(), Some(4), "{}", text(&bare));

    // Discovery from the SDK's protected resource metadata, client credentials, the whole probe.
    let secret = [("CANARY_OAUTH_SECRET", BASIC_CLIENT.secret)];
    let basic = ["--oauth-client-id", BASIC_CLIENT.id, "--oauth-client-secret-env", "CANARY_OAUTH_SECRET"];
    let out = check(&[&echo[..], &basic[..], &["--json", &url]].concat(), &secret).await;
    assert_eq!(out.status.code(), Some(0), "{}\n{}\n{}", text(&out), peer_log(), provider.log_text());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["server"]["name"], "peer-python-sdk-protected", "{report:#}");
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["method"] == "tools/call" && s["outcome"] == "success"), "{report:#}");

    // private_key_jwt against the same server.
    let key = provider.es256_key();
    let jwt = [
        "--oauth-client-id",
        JWT_CLIENT_ID,
        "--oauth-private-key-file",
        key.to_str().unwrap(),
        "--oauth-signing-alg",
        "ES256",
        "--oauth-key-id",
        JWT_CLIENT_ES256_KID,
    ];
    let out = check(&[&echo[..], &jwt[..], &[url.as_str()]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), peer_log());
}

/// A JWT with only an `exp` claim and no valid signature: what a static bearer token tells about
/// its own expiry (the canary reads it, never verifies it).
fn unsigned_jwt(exp: u64) -> String {
    use base64::Engine as _;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!("{}.{}.sig", b64(br#"{"alg":"none"}"#), b64(format!("{{\"exp\":{exp}}}").as_bytes()))
}
