//! `network.protocol.version` is the HTTP version a response actually came over: an https server
//! that negotiates HTTP/2 (ALPN) is reported as `2`, the same server over HTTP/1.1 as `1.1`, on the
//! client and in the probe's step outcomes the OTLP attributes are built from.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mcp_canary::config::{RawConfig, RawProbeSettings, RawTarget};
use mcp_canary::mcp::transport::HttpVersion;
use mcp_canary::runner::{CanaryProbe, Operation, StepResult};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

use crate::client_support::{client, config, handshake, json_reply, rpc_error, serve};
use crate::tls::Pki;

/// A session-less 2025-11-25 server offering nothing but `ping`.
async fn mcp(Json(body): Json<Value>) -> Response {
    let Some(id) = body.get("id").cloned() else { return StatusCode::ACCEPTED.into_response() };
    let result = match body["method"].as_str() {
        Some("initialize") => json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "serverInfo": {"name": "h2-server", "version": "1"}
        }),
        Some("ping") => json!({}),
        _ => {
            return Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}}))
                .into_response();
        }
    };
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

/// The server over TLS on 127.0.0.1, offering `h2` and `http/1.1` by ALPN.
async fn serve_tls(pki: &Pki) -> url::Url {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.path("server.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(pki.path("server-key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let app = axum::Router::new().route("/mcp", post(mcp));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("https://{addr}/mcp").parse().unwrap()
}

/// A client trusting the test CA; HTTP/1.1 only when `http1`.
fn http(pki: &Pki, http1: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let builder = reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(10));
    let builder = if http1 { builder.http1_only() } else { builder };
    builder.build().unwrap()
}

#[tokio::test]
async fn the_client_reports_the_negotiated_version() {
    let pki = Pki::new();
    let url = serve_tls(&pki).await;
    for (http1, expected) in [(false, HttpVersion::Http2), (true, HttpVersion::Http11)] {
        let c = mcp_canary::mcp::McpClient::new(config(&url), http(&pki, http1));
        assert_eq!(c.last_http_version(), None, "no response yet");
        c.connect().await.unwrap();
        assert_eq!(c.last_http_version(), Some(expected), "http1_only: {http1}");
        c.ping().await.unwrap();
        assert_eq!(c.last_http_version().map(HttpVersion::as_str), Some(expected.as_str()));
    }
    // Plain http: HTTP/1.1 on the shared client and on the lean transport alike.
    let plain =
        serve(
            |r| async move { handshake(&r, "s1").unwrap_or_else(|| json_reply(200, rpc_error(&r.id(), -32601, "no"))) },
        )
        .await;
    let c = client(config(&plain.url));
    c.connect().await.unwrap();
    assert_eq!(c.last_http_version(), Some(HttpVersion::Http11));
    // A request that gets no response has no version (not the previous one's).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let c = client(config(&format!("http://{closed}/mcp").parse().unwrap()));
    assert!(c.connect().await.is_err());
    assert_eq!(c.last_http_version(), None);
}

#[tokio::test]
async fn probe_steps_carry_the_version_of_their_responses() {
    let pki = Pki::new();
    let url = serve_tls(&pki).await;
    let settings = RawProbeSettings { protocol: "2025-11-25".into(), ..Default::default() };
    let raw =
        RawConfig { targets: vec![RawTarget { settings, ..RawTarget::new("h2", url.as_str()) }], ..Default::default() };
    let target = mcp_canary::config::validate(&raw).unwrap().targets.remove(0);
    for (http1, expected) in [(false, "2"), (true, "1.1")] {
        let mut probe = CanaryProbe::new(Arc::new(target.clone()), http(&pki, http1));
        let outcome = probe.run_cycle().await;
        let ran: Vec<_> = outcome.steps.iter().filter(|s| !matches!(s.result, StepResult::Skipped(_))).collect();
        let operations: Vec<_> = ran.iter().map(|s| s.operation).collect();
        assert_eq!(operations, [Operation::Connect, Operation::Ping], "{:?}", outcome.steps);
        for step in ran {
            assert_eq!(step.result, StepResult::Success, "{step:?}");
            assert_eq!(step.http_version.map(HttpVersion::as_str), Some(expected), "{step:?}");
        }
    }
}
