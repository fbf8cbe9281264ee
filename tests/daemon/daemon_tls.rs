//! The daemon's own port in production: `[server.tls]` (HTTPS only, optional client
//! certificates) and `basic_auth_users` / `bearer_token_file` (401 with a challenge, `/healthz`
//! and `/readyz` open, `/-/reload` protected, refusals counted, no secret in the log); a
//! certificate that does not load stops `serve`, naming the key. All on 127.0.0.1, with a CA
//! made by the test.

use crate::common;

use std::time::Duration;

use crate::tls::Pki;
use base64::Engine;
use common::{Scrape, closed_addr, start_daemon};
use reqwest::StatusCode;

/// `[server]` listening on a free port with `extra` keys and tables, and one target nothing
/// answers (probes fail; the surface is what is tested).
fn config(extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n{extra}\n\
         [[targets]]\nname = \"down\"\nurl = \"http://{}/mcp\"\ninterval = \"30s\"\ntimeout = \"1s\"\n",
        closed_addr()
    )
}

async fn scrape_with(client: &reqwest::RequestBuilder) -> Scrape {
    let response = client.try_clone().unwrap().send().await.expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    Scrape::parse(&response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_only() {
    let pki = Pki::new();
    let (mut daemon, _dir, base) = start_daemon("tls-only", &config(&pki.server_tls("")), &[]).await;
    assert!(base.starts_with("https://127.0.0.1:"), "announced {base}");
    let https = pki.client(false);

    let response = https.get(format!("{base}/metrics")).send().await.expect("HTTPS scrape");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("mcp_canary_build_info"));
    assert_eq!(https.get(format!("{base}/healthz")).send().await.unwrap().status(), StatusCode::OK);

    // Plain HTTP on the TLS port: no answer, a failed handshake.
    let plain = base.replace("https://", "http://");
    let refused = reqwest::Client::new().get(format!("{plain}/metrics")).timeout(Duration::from_secs(5)).send().await;
    assert!(refused.is_err(), "plain HTTP answered: {:?}", refused.map(|r| r.status()));
    // A client that does not trust the daemon's CA stops in the handshake.
    let other = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(std::fs::read(pki.path("other-ca.pem")).unwrap().as_slice()).unwrap()
        ])
        .build()
        .unwrap();
    assert!(other.get(format!("{base}/metrics")).send().await.is_err(), "a certificate of another CA was accepted");

    let scrape = scrape_with(&https.get(format!("{base}/metrics"))).await;
    let failed = scrape.value("mcp_canary_http_connections_closed_total", &[("reason", "tls_handshake")]);
    assert!(failed >= 2.0, "failed handshakes not counted ({failed}):\n{}", scrape.text);
    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0), "{}", daemon.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_of_the_ca() {
    let pki = Pki::new();
    let tls = pki.server_tls(&format!("client_ca_file = \"{}\"\nclient_auth = \"require\"\n", pki.path("ca.pem")));
    let (mut daemon, _dir, base) = start_daemon("tls-mutual", &config(&tls), &[]).await;

    let without = pki.client(false).get(format!("{base}/metrics")).send().await;
    assert!(without.is_err(), "answered without a client certificate: {:?}", without.map(|r| r.status()));
    let with = pki.client(true).get(format!("{base}/metrics")).send().await.expect("scrape with a client certificate");
    assert_eq!(with.status(), StatusCode::OK);
    // Even /healthz needs the certificate: the handshake comes before any path.
    assert!(pki.client(false).get(format!("{base}/healthz")).send().await.is_err());

    let scrape = scrape_with(&pki.client(true).get(format!("{base}/metrics"))).await;
    assert!(scrape.value("mcp_canary_http_connections_closed_total", &[("reason", "tls_handshake")]) >= 2.0);
    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0), "{}", daemon.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_bearer_protect_everything_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("scrape-token");
    std::fs::write(&token_file, "t0ken-for-scrapers\n").unwrap();
    let hash = bcrypt::hash("s3cret-password", 5).unwrap();
    let extra = format!(
        "bearer_token_file = \"{}\"\n[server.basic_auth_users]\nprometheus = \"{hash}\"\n",
        token_file.display()
    );
    let (mut daemon, _cfg_dir, base) = start_daemon("http-auth", &config(&extra), &[]).await;
    assert!(base.starts_with("http://"));
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}"));

    let refused = get("/metrics").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<_> =
        refused.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(challenges, ["Basic realm=\"mcp-canary\"", "Bearer realm=\"mcp-canary\""]);
    assert!(!refused.text().await.unwrap().contains("mcp_canary_"), "metrics in a refusal");
    for (user, password) in [("prometheus", "wrong"), ("nobody", "s3cret-password"), ("prometheus", "")] {
        let status = get("/metrics").basic_auth(user, Some(password)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}:{password}");
    }
    assert_eq!(get("/metrics").bearer_auth("not-the-token").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(get("/nowhere").send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "unknown paths too");

    // Kubelet probes carry no credentials.
    assert_eq!(get("/healthz").send().await.unwrap().status(), StatusCode::OK);
    assert_ne!(get("/readyz").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // Reload is protected; with credentials it reloads (the same config: nothing changed).
    let reload = client.post(format!("{base}/-/reload"));
    assert_eq!(reload.try_clone().unwrap().send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let reloaded = reload.basic_auth("prometheus", Some("s3cret-password")).send().await.unwrap();
    assert_eq!(reloaded.status(), StatusCode::OK, "{}", reloaded.text().await.unwrap());

    for _ in 0..3 {
        let scrape = scrape_with(&get("/metrics").basic_auth("prometheus", Some("s3cret-password"))).await;
        assert!(scrape.text.contains("mcp_canary_build_info"));
    }
    let scrape = scrape_with(&get("/metrics").bearer_auth("t0ken-for-scrapers")).await;
    let refused = |reason| scrape.value("mcp_canary_http_requests_refused_total", &[("reason", reason)]);
    assert_eq!(refused("no_credentials"), 3.0, "{}", scrape.text);
    assert_eq!(refused("bad_credentials"), 4.0, "{}", scrape.text);

    let log = daemon.log_text();
    let encoded = base64::engine::general_purpose::STANDARD.encode("prometheus:s3cret-password");
    for secret in ["s3cret-password", hash.as_str(), "t0ken-for-scrapers", encoded.as_str()] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(log.contains("without [server.tls]"), "no warning about credentials in clear:\n{log}");
    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0), "{}", daemon.log_text());
}

/// A key of another certificate, or no certificate file: `serve` exits non-zero naming the key.
#[tokio::test]
async fn a_certificate_that_does_not_load_stops_the_daemon() {
    let pki = Pki::new();
    let cases = [
        (pki.server_tls("").replace("server-key.pem", "client-key.pem"), "server.tls.key_file"),
        (pki.server_tls("").replace("server.pem", "missing.pem"), "server.tls.cert_file"),
        (pki.server_tls("client_auth = \"verify_if_given\"\n"), "server.tls.client_auth"),
    ];
    for (tls, key) in cases {
        let path = pki.dir.path().join("bad.toml");
        std::fs::write(&path, config(&tls)).unwrap();
        let run = tokio::process::Command::new(common::bin())
            .args(["serve", "--config", path.to_str().unwrap()])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(20), run).await.expect("exits").unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {key} wrong");
        assert!(stderr.contains(key), "{key} not named:\n{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"), "{key}: it listened");
    }
}
