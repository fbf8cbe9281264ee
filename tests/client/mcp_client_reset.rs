//! A connection closed mid-body is Reset (raw TCP server: headers promise more than is sent).
use mcp_canary::mcp::{ClientConfig, ErrorType, McpClient, ProtocolPreference};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn closed_mid_body_is_reset() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Bounded: serve at most a few connections.
        for _ in 0..4 {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let mut buf = vec![0u8; 8192];
            let _ = tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf)).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(b"{\"jsonrpc\":\"2.0\",").await;
            let _ = sock.shutdown().await;
        }
    });
    let cfg = ClientConfig {
        url: format!("http://{addr}/mcp").parse().unwrap(),
        headers: Default::default(),
        protocol: ProtocolPreference::Pinned("2025-11-25".into()),
        request_timeout: Duration::from_secs(5),
        max_response_bytes: 1 << 20,
        client_name: "client-test".into(),
        client_version: "0".into(),
        capabilities: serde_json::json!({}),
        accept: Default::default(),
        server_requests: Default::default(),
        log_level: None,
        auth: None,
        trace: Default::default(),
    };
    // The shared reqwest path and the lean one profile sessions use classify it alike.
    let shared = McpClient::new(cfg.clone(), reqwest::Client::new());
    let own = McpClient::with_own_connections(cfg, reqwest::Client::new());
    assert!(own.owns_connections());
    for client in [shared, own] {
        let e = client.connect().await.unwrap_err();
        assert_eq!(e.error_type(), ErrorType::Reset, "{e}");
    }
}
