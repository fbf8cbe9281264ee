//! The capability matrix against the reference target and the official "everything" server: the
//! concrete cells, how the two matrices differ where the servers differ, a server that sends a
//! request the client never declared (broken, exit 99), and the CLI's metrics and report.
use crate::common;

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mcp_canary::mcp::{ClientConfig, ProtocolPreference};
use mcp_canary::profile::matrix::{
    CapabilityProfile as Caps, CellResult, ClientCapability as Capability, MatrixReport, MatrixRun,
    ResponseMode as Mode, default_triggers, run_matrix,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use common::{Proc, scrape_until, start_everything};

fn plan(url: &str) -> MatrixRun {
    MatrixRun {
        profile: "matrix".into(),
        target: "t".into(),
        client: ClientConfig {
            url: url.parse().unwrap(),
            headers: Default::default(),
            protocol: ProtocolPreference::Auto,
            request_timeout: Duration::from_secs(10),
            max_response_bytes: 1 << 20,
            client_name: "matrix-test".into(),
            client_version: "0".into(),
            capabilities: json!({}),
            accept: Default::default(),
            server_requests: Default::default(),
            log_level: None,
            auth: None,
            trace: Default::default(),
        },
        tool: None,
        triggers: default_triggers(),
        settle: Duration::from_millis(600),
        concurrency: 4,
    }
}

fn cell<'a>(r: &'a MatrixReport, caps: Caps, mode: Mode, v: &str) -> &'a mcp_canary::profile::matrix::CellReport {
    r.cell(caps, mode, v).unwrap_or_else(|| panic!("no cell {caps:?} {mode:?} {v}: {r:#?}"))
}

fn requests(c: &mcp_canary::profile::matrix::CellReport) -> Vec<&str> {
    c.server_requests.iter().map(|s| s.method.as_str()).collect()
}

#[tokio::test]
async fn reference_and_everything_matrices_differ_where_the_servers_do() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let target = mcp_canary::reference::spawn(listener, Default::default(), stop.clone()).await.unwrap();
    let everything = start_everything().await;
    let http = reqwest::Client::new();
    let (ref_plan, ev_plan) = (plan(&target.mcp_url()), plan(&everything.url));
    let (reference, official) = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::join!(run_matrix(&ref_plan, http.clone()), run_matrix(&ev_plan, http))
    })
    .await
    .expect("both matrices within 90s");

    // Versions: the reference target speaks the stateless 2026-07-28 revision, everything does not.
    assert_eq!(reference.supported_versions(), ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"]);
    assert_eq!(official.supported_versions(), ["2025-11-25", "2025-06-18", "2025-03-26"]);
    assert_eq!(reference.cells.len(), 40);
    assert_eq!(official.cells.len(), 30);
    assert!(official.cell(Caps::None, Mode::Sse, "2026-07-28").is_none());

    // Reference target: every SSE cell works, and it asks for roots / sampling / elicitation
    // exactly when the profile declares them: on the POST's stream in the 2025 revisions, as an
    // InputRequiredResult the client answers and retries in 2026-07-28.
    for c in reference.cells.iter().filter(|c| c.response_mode == Mode::Sse) {
        assert_eq!(c.result, CellResult::Works, "{c:#?}");
        assert!(c.server_requests.iter().all(|s| s.declared), "{c:#?}");
        let mut want: Vec<&str> =
            Capability::ALL.into_iter().filter(|k| c.capabilities.declares(*k)).map(|k| k.request_method()).collect();
        let mut got = requests(c);
        want.sort();
        got.sort();
        assert_eq!(got, want, "{c:#?}");
    }
    let stateless = cell(&reference, Caps::All, Mode::Sse, "2026-07-28");
    assert!(stateless.checks.iter().any(|k| k.feature == "prompts" && k.result == CellResult::Works), "{stateless:#?}");
    for (capability, method) in
        [("roots", "roots/list"), ("sampling", "sampling/createMessage"), ("elicitation", "elicitation/create")]
    {
        // Works only because the server did send the request (its trigger answering is not enough).
        let answered = |k: &&mcp_canary::profile::matrix::Check| {
            k.feature == capability
                && k.result == CellResult::Works
                && k.detail == format!("server sent {method} x1; answered")
        };
        assert!(stateless.checks.iter().any(|k| answered(&k)), "{capability} at 2026-07-28: {stateless:#?}");
        // Not declared: the reference target does not ask (and says so in an isError result).
        let one = cell(&reference, Caps::None, Mode::Sse, "2026-07-28");
        assert!(one.server_requests.is_empty() && !one.checks.iter().any(|k| k.feature == capability), "{one:#?}");
    }

    // JSON-only Accept: both answer 406, a graceful refusal.
    for r in [&reference, &official] {
        for c in r.cells.iter().filter(|c| c.response_mode == Mode::JsonOnly) {
            assert_eq!(c.result, CellResult::Degraded, "{c:#?}");
            assert!(c.checks[0].detail.contains("406"), "{c:#?}");
        }
    }

    // Everything: asks for roots / sampling / elicitation exactly when the profile declares them.
    for v in ["2025-11-25", "2025-06-18", "2025-03-26"] {
        assert!(requests(cell(&official, Caps::None, Mode::Sse, v)).is_empty());
        assert_eq!(cell(&official, Caps::None, Mode::Sse, v).result, CellResult::Works);
        let roots = cell(&official, Caps::Roots, Mode::Sse, v);
        assert!(requests(roots).contains(&"roots/list"), "{roots:#?}");
        assert!(!requests(roots).contains(&"sampling/createMessage"), "{roots:#?}");
        let sampling = cell(&official, Caps::Sampling, Mode::Sse, v);
        assert_eq!(requests(sampling), ["sampling/createMessage"], "{sampling:#?}");
        assert!(sampling.checks.iter().any(|k| k.feature == "sampling" && k.result == CellResult::Works));
        let all = cell(&official, Caps::All, Mode::Sse, v);
        for m in ["roots/list", "sampling/createMessage", "elicitation/create"] {
            assert!(requests(all).contains(&m), "{all:#?}");
        }
        assert!(all.server_requests.iter().all(|s| s.declared));
        assert_eq!(all.result, CellResult::Works, "{all:#?}");
    }
    assert!(reference.passed() && official.passed());
    assert_eq!(reference.summary["works"], 20);
    assert_eq!(official.summary["degraded"], 15);
    stop.cancel();
    target.stopped().await;
}

/// A server that asks the client for its roots on every tool call, declared or not: a request
/// on the POST's stream in the 2025 revisions, an `InputRequiredResult` in 2026-07-28.
async fn rude_server(headers: HeaderMap, Json(msg): Json<Value>) -> Response {
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let ok = |result: Value| Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response();
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let stateless = msg.pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion").is_some();
    match msg.get("method").and_then(Value::as_str) {
        None | Some("notifications/initialized") => StatusCode::ACCEPTED.into_response(),
        Some("server/discover") => ok(json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "rude", "version": "1"}},
        })),
        Some("tools/call") if stateless && msg.pointer("/params/inputResponses/roots").is_some() => {
            ok(json!({"resultType": "complete", "content": []}))
        }
        Some("tools/call") if stateless => ok(json!({
            "resultType": "input_required",
            "inputRequests": {"roots": {"method": "roots/list"}},
        })),
        Some("initialize") => ok(json!({
            "protocolVersion": msg.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-03-26")),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "rude", "version": "1"},
        })),
        Some("tools/list") => ok(json!({"tools": [
            {"name": "echo", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}}
        ]})),
        Some("tools/call") if accept.contains("text/event-stream") => {
            let ask = json!({"jsonrpc": "2.0", "id": "srv-1", "method": "roots/list"});
            let done = json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}});
            let body = format!("data: {ask}\n\ndata: {done}\n\n");
            ([("content-type", "text/event-stream")], body).into_response()
        }
        Some("tools/call") => ok(json!({"content": []})),
        Some(_) => Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}))
            .into_response(),
    }
}

#[tokio::test]
async fn undeclared_server_request_breaks_the_cell_and_fails_the_run() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/mcp", axum::routing::post(rude_server).get(|| async { StatusCode::METHOD_NOT_ALLOWED }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/mcp");
    let report = tokio::time::timeout(Duration::from_secs(60), run_matrix(&plan(&url), reqwest::Client::new()))
        .await
        .expect("matrix within 60s");
    assert_eq!(report.supported_versions(), ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"]);
    for v in ["2026-07-28", "2025-11-25"] {
        let none = cell(&report, Caps::None, Mode::Sse, v);
        assert_eq!(none.result, CellResult::Broken, "{none:#?}");
        assert!(none.server_requests.iter().any(|s| s.method == "roots/list" && !s.declared), "{none:#?}");
        let roots = cell(&report, Caps::Roots, Mode::Sse, v);
        // Declared: answered; resources and prompts not offered and refused cleanly: degraded.
        assert_eq!(roots.result, CellResult::Degraded, "{roots:#?}");
        assert!(roots.checks.iter().any(|k| k.feature == "roots" && k.result == CellResult::Works), "{roots:#?}");
        assert!(roots.checks.iter().any(|k| k.feature == "tools" && k.result == CellResult::Works), "{roots:#?}");
    }
    // 2026-07-28 without roots declared: the tool call itself fails with input_required.
    let none = cell(&report, Caps::None, Mode::Sse, "2026-07-28");
    let tools = none.checks.iter().find(|k| k.feature == "tools").unwrap();
    assert!(tools.result == CellResult::Broken && tools.detail.contains("did not declare roots"), "{none:#?}");
    // JSON-only: the server answers JSON and cannot send the request, so nothing breaks.
    assert_eq!(cell(&report, Caps::None, Mode::JsonOnly, "2025-11-25").result, CellResult::Degraded);
    assert!(!report.passed());

    // The CLI exits 99 on a broken cell.
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(common::bin())
            .args(["run", "matrix", "--target", &url, "--settle", "0s", "--results-dir"])
            .arg(dir.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("cli within 60s")
    .expect("run cli");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(99), "{stdout}");
    assert!(stdout.contains("broken") && stdout.contains("FAIL"), "{stdout}");
    server.abort();
}

#[tokio::test]
async fn cli_exports_the_matrix_as_metrics_and_report() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let target = mcp_canary::reference::spawn(listener, Default::default(), stop.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("matrix.json");
    let url = target.mcp_url();
    let mut run = Proc::start(
        "matrix-cli",
        &[
            "run",
            "matrix",
            "--target",
            &url,
            "--name",
            "ref",
            "--settle",
            "100ms",
            "--metrics-listen",
            "127.0.0.1:0",
            "--linger",
            "20s",
            "--report",
            report_path.to_str().unwrap(),
        ],
        &[],
        "metrics listening on ",
    )
    .await;
    let base = run.announced.clone();
    let labels = [("target", "ref"), ("profile", "matrix")];
    let (s, ok) = scrape_until(&base, Duration::from_secs(30), |s| {
        s.sum("mcp_canary_run_end_timestamp_seconds", &labels).is_some()
            && s.value("mcp_canary_run_running", &labels) == 0.0
    })
    .await;
    assert!(ok, "matrix run finished within 30s:\n{}", s.text);
    let text = std::fs::read_to_string(&report_path).expect("report written");
    let report: MatrixReport = serde_json::from_str(&text).expect("matrix report");
    for c in &report.cells {
        let filter = [
            ("target", "ref"),
            ("capabilities", c.capabilities.as_str()),
            ("response_mode", c.response_mode.as_str()),
            ("mcp_protocol_version", c.protocol_version.as_str()),
        ];
        assert_eq!(s.value("mcp_canary_matrix_cell", &filter), c.result.score(), "{c:#?}");
    }
    let cell_of = |caps: &str, mode: &str, v: &str| {
        s.value(
            "mcp_canary_matrix_cell",
            &[("capabilities", caps), ("response_mode", mode), ("mcp_protocol_version", v)],
        )
    };
    assert_eq!(cell_of("none", "sse", "2026-07-28"), 1.0);
    assert_eq!(cell_of("sampling", "json_only", "2025-06-18"), 0.5);
    for (result, n) in [("works", 20.0), ("degraded", 20.0), ("broken", 0.0)] {
        assert_eq!(s.value("mcp_canary_matrix_cells", &[("target", "ref"), ("result", result)]), n);
        assert_eq!(report.summary[result] as f64, n);
    }
    assert_eq!(s.value("mcp_canary_matrix_protocol_supported", &[("mcp_protocol_version", "2026-07-28")]), 1.0);
    assert_eq!(s.value("mcp_canary_run_passed", &labels), 1.0);
    assert!((s.value("mcp_canary_run_end_timestamp_seconds", &labels) - report.ended_at).abs() < 1.0);
    assert_eq!(run.terminate(Duration::from_secs(10)).await, Some(0), "{}", run.log_text());
    stop.cancel();
    target.stopped().await;
}
