//! Redirects: a target answering 307/302 to another origin (another port here) never gets its
//! configured header, bearer token or anything else sent there; the request fails as
//! `error_type="redirect"` in `check`, the daemon and the lean transport of profile sessions. A
//! same-origin redirect is followed at most 3 times (`MAX_REDIRECTS`); a loop or a longer
//! chain is `redirect` too.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use common::{Scrape, scrape_until, start_daemon, start_target};

/// Requests the other origin received: their headers.
type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// The other origin: records every request's headers and answers 503.
async fn other_origin() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let app = axum::Router::new().fallback(any(move |req: Request| {
        let log = Arc::clone(&log);
        async move {
            log.lock().unwrap().push(req.headers().clone());
            StatusCode::SERVICE_UNAVAILABLE
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/mcp"), seen)
}

#[derive(Clone)]
struct Redirector {
    /// The other origin's URL.
    other: String,
    /// The reference target's MCP URL, behind `/real`.
    upstream: String,
    /// Headers of the requests `/real` forwarded.
    forwarded: Seen,
}

fn redirect(status: StatusCode, location: &str) -> Response {
    Response::builder().status(status).header(header::LOCATION, location).body(Body::empty()).unwrap()
}

/// The target: `/cross307` and `/cross302` redirect to the other origin; `/loop` to itself;
/// `/hop/N` to `/hop/N-1`, and `/hop/0` to `/real` (N + 1 same-origin redirects); `/real`
/// forwards to the reference target; `/otlp/...` (an OTLP collector) redirects to the other
/// origin.
async fn redirector(other: String, upstream: String) -> (String, Seen) {
    let forwarded: Seen = Arc::default();
    let state = Redirector { other, upstream, forwarded: Arc::clone(&forwarded) };
    let app = axum::Router::new()
        .route(
            "/cross307",
            any(|State(s): State<Redirector>| async move { redirect(StatusCode::TEMPORARY_REDIRECT, &s.other) }),
        )
        .route("/cross302", any(|State(s): State<Redirector>| async move { redirect(StatusCode::FOUND, &s.other) }))
        .route("/loop", any(|| async { redirect(StatusCode::TEMPORARY_REDIRECT, "/loop") }))
        .route(
            "/hop/{n}",
            any(|Path(n): Path<u32>| async move {
                let next = if n == 0 { "/real".to_string() } else { format!("/hop/{}", n - 1) };
                redirect(StatusCode::TEMPORARY_REDIRECT, &next)
            }),
        )
        .route(
            "/otlp/{*signal}",
            any(|State(s): State<Redirector>| async move { redirect(StatusCode::TEMPORARY_REDIRECT, &s.other) }),
        )
        .route("/real", any(forward))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), forwarded)
}

/// Forward a request to the reference target (its own Host), streaming the answer back.
async fn forward(State(s): State<Redirector>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    s.forwarded.lock().unwrap().push(parts.headers.clone());
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let mut headers = parts.headers;
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = http.request(parts.method, &s.upstream).headers(headers).body(body).send().await.unwrap();
    let mut out = Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            out = out.header(name, value);
        }
    }
    out.body(Body::from_stream(resp.bytes_stream())).unwrap()
}

async fn check(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(common::bin()).arg("check").args(args).output(),
    )
    .await
    .expect("check ends")
    .expect("run check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = serde_json::from_str(&text).unwrap_or_default();
    (out.status.code(), report, format!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// The first failed step of a `check --json` report.
fn first_failure(report: &serde_json::Value) -> serde_json::Value {
    report["steps"].as_array().into_iter().flatten().find(|s| s["outcome"] == "failure").cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_other_origins_and_follows_a_few_same_origin_hops() {
    let (_target, upstream) = start_target(&[]).await;
    let (other, seen) = other_origin().await;
    let (base, forwarded) = redirector(other, upstream).await;
    let key = ["--header", "X-Api-Key: s3cret"];

    for path in ["/cross307", "/cross302", "/loop", "/hop/3"] {
        let (code, report, out) = check(&[&key[..], &["--json", &format!("{base}{path}")]].concat()).await;
        assert_eq!(code, Some(5), "{path}: {out}");
        assert_eq!(report["status"], "protocol_error", "{path}: {out}");
        assert_eq!(first_failure(&report)["error_type"], "redirect", "{path}: {out}");
        assert!(!out.contains("s3cret"), "{path}: the secret is printed: {out}");
    }
    assert!(seen.lock().unwrap().is_empty(), "the other origin got requests: {:?}", seen.lock().unwrap());
    assert!(forwarded.lock().unwrap().is_empty(), "a refused chain reached the end");

    // Three same-origin redirects (the most followed), then the real endpoint: healthy, and the
    // header still goes to its own origin.
    let (code, report, out) = check(&[&key[..], &["--json", &format!("{base}/hop/2")]].concat()).await;
    assert_eq!((code, &report["status"]), (Some(0), &"healthy".into()), "{out}");
    let forwarded = forwarded.lock().unwrap();
    assert!(!forwarded.is_empty() && forwarded.iter().all(|h| h.get("x-api-key").is_some_and(|v| v == "s3cret")));
    assert!(seen.lock().unwrap().is_empty());
}

fn daemon_config(url: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[[targets]]
name = "moved"
url = "{url}"
interval = "1s"
timeout = "1s"
headers = {{ X-Api-Key = "s3cret" }}
bearer_token_env = "REDIRECT_TEST_TOKEN"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_target_redirected_to_another_origin_fails_as_redirect() {
    let (_target, upstream) = start_target(&[]).await;
    let (other, seen) = other_origin().await;
    let (base, _forwarded) = redirector(other, upstream).await;
    let envs = [("REDIRECT_TEST_TOKEN", "t0ken")];
    let (daemon, _dir, metrics) =
        start_daemon("daemon-redirect", &daemon_config(&format!("{base}/cross307")), &envs).await;

    let redirected = |s: &Scrape| {
        s.sum("mcp_canary_operations_total", &[("target", "moved"), ("outcome", "failure"), ("error_type", "redirect")])
            .unwrap_or(0.0)
    };
    let (s, ok) = scrape_until(&metrics, Duration::from_secs(30), |s| redirected(s) >= 3.0).await;
    assert!(ok, "three redirect failures:\n{}\n{}", s.text, daemon.log_text());
    assert_eq!(s.value("mcp_canary_probe_success", &[("target", "moved")]), 0.0);
    let durations = s
        .sum("mcp_client_operation_duration_seconds_count", &[("target", "moved"), ("error_type", "redirect")])
        .unwrap_or(0.0);
    assert!(durations >= 3.0, "{}", s.text);
    let log = daemon.log_text();
    assert!(!log.contains("s3cret") && !log.contains("t0ken"), "a secret is logged:\n{log}");
    assert!(seen.lock().unwrap().is_empty(), "the other origin got requests: {:?}", seen.lock().unwrap());
}

/// The OTLP exporter's client carries the collector headers: a collector redirecting to another
/// origin gets failed exports, and the other origin nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_collector_redirecting_to_another_origin_gets_no_headers() {
    let (_target, upstream) = start_target(&[]).await;
    let (other, seen) = other_origin().await;
    let (base, _forwarded) = redirector(other, upstream).await;
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[otlp]
enabled = true
endpoint = "{base}/otlp"
protocol = "http/protobuf"
headers = {{ X-Collector-Token = "collector-s3cret" }}
interval = "200ms"
timeout = "500ms"
[[targets]]
name = "ref"
url = "{base}/real"
interval = "1s"
timeout = "1s"
"#
    );
    let (daemon, _dir, metrics) = start_daemon("otlp-redirect", &config, &[]).await;
    let failed =
        |s: &Scrape| s.value("mcp_canary_otlp_exports_total", &[("signal", "metrics"), ("outcome", "failure")]);
    let (s, ok) = scrape_until(&metrics, Duration::from_secs(20), |s| failed(s) >= 2.0).await;
    assert!(ok, "export failures not counted:\n{}\n{}", s.text, daemon.log_text());
    assert_eq!(s.value("mcp_canary_otlp_exports_total", &[("signal", "metrics"), ("outcome", "success")]), 0.0);
    assert!(!daemon.log_text().contains("collector-s3cret"), "secret logged");
    assert!(seen.lock().unwrap().is_empty(), "the other origin got exports: {:?}", seen.lock().unwrap());
}

/// The lean transport (profile sessions on plain http) follows no redirect: any 3xx is
/// `redirect`, and nothing reaches the other origin.
#[tokio::test]
async fn own_connections_never_follow_a_redirect() {
    use mcp_canary::mcp::{ClientConfig, ErrorType, McpClient, ProtocolPreference};
    let (other, seen) = other_origin().await;
    let (base, forwarded) = redirector(other, "http://127.0.0.1:9/mcp".into()).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-api-key", "s3cret".parse().unwrap());
    for path in ["/cross307", "/cross302", "/hop/0"] {
        let config = ClientConfig {
            url: format!("{base}{path}").parse().unwrap(),
            headers: headers.clone(),
            protocol: ProtocolPreference::Auto,
            request_timeout: Duration::from_secs(5),
            max_response_bytes: 1 << 20,
            client_name: "redirect-test".into(),
            client_version: "0.0.0".into(),
            capabilities: serde_json::json!({}),
            accept: Default::default(),
            server_requests: Default::default(),
            log_level: None,
            auth: None,
            trace: Default::default(),
        };
        let http = mcp_canary::mcp::transport::http_client().unwrap();
        let client = McpClient::with_own_connections(config, http);
        assert!(client.owns_connections());
        let e = client.connect().await.expect_err("a redirect is not followed");
        assert_eq!(e.error_type(), ErrorType::Redirect, "{path}: {e}");
    }
    assert!(seen.lock().unwrap().is_empty(), "the other origin got requests");
    assert!(forwarded.lock().unwrap().is_empty(), "a same-origin redirect was followed");
}
