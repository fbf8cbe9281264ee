//! OTLP export: an OTLP receiver built from the official protobuf definitions (the
//! opentelemetry-proto crate's collector services over tonic, and the same messages decoded by
//! prost behind axum for HTTP/protobuf) receives the daemon's metrics and spans; the test checks
//! names, attributes and values, the error path, the standard environment variables, and the
//! flush on SIGTERM.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric, metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use prost::Message;

use common::{admin, start_daemon, start_target};

const SECRET: &str = "collector-secret-value";

/// Everything the receiver got, in arrival order.
#[derive(Default)]
struct Received {
    metrics: Mutex<Vec<ExportMetricsServiceRequest>>,
    spans: Mutex<Vec<ExportTraceServiceRequest>>,
    /// Values of the `x-canary-auth` header / metadata seen on exports.
    auth: Mutex<Vec<String>>,
}

impl Received {
    fn metrics(&self) -> Vec<Metric> {
        let batches = self.metrics.lock().unwrap();
        batches
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| sm.metrics.clone())
            .collect()
    }

    fn spans(&self) -> Vec<Span> {
        let batches = self.spans.lock().unwrap();
        batches
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect()
    }

    fn note_auth(&self, value: Option<&str>) {
        if let Some(v) = value {
            self.auth.lock().unwrap().push(v.to_string());
        }
    }
}

#[derive(Clone)]
struct Receiver(Arc<Received>);

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.note_auth(request.metadata().get("x-canary-auth").and_then(|v| v.to_str().ok()));
        self.0.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.note_auth(request.metadata().get("x-canary-auth").and_then(|v| v.to_str().ok()));
        self.0.spans.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A gRPC OTLP receiver on a free loopback port; returns the store and its endpoint.
async fn grpc_receiver() -> (Arc<Received>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Received::default());
    let service = Receiver(Arc::clone(&received));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::new(service.clone()))
            .add_service(TraceServiceServer::new(service))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (received, format!("http://{addr}"))
}

/// A gRPC OTLP receiver behind TLS with a certificate for 127.0.0.1 signed by a fresh CA;
/// returns the store, its https endpoint and the CA's PEM.
async fn grpc_tls_receiver() -> (Arc<Received>, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let identity = tonic::transport::Identity::from_pem(leaf.pem(), leaf_key.serialize_pem());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Received::default());
    let service = Receiver(Arc::clone(&received));
    tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .unwrap()
            .add_service(MetricsServiceServer::new(service.clone()))
            .add_service(TraceServiceServer::new(service))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (received, format!("https://{addr}"), ca_cert.pem())
}

/// An HTTP/protobuf OTLP receiver (`/v1/metrics`, `/v1/traces`) on a free loopback port.
async fn http_receiver() -> (Arc<Received>, String) {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    async fn metrics(State(r): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> StatusCode {
        r.note_auth(headers.get("x-canary-auth").and_then(|v| v.to_str().ok()));
        match ExportMetricsServiceRequest::decode(body) {
            Ok(req) => {
                r.metrics.lock().unwrap().push(req);
                StatusCode::OK
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }
    async fn traces(State(r): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> StatusCode {
        r.note_auth(headers.get("x-canary-auth").and_then(|v| v.to_str().ok()));
        match ExportTraceServiceRequest::decode(body) {
            Ok(req) => {
                r.spans.lock().unwrap().push(req);
                StatusCode::OK
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Received::default());
    let app = axum::Router::new()
        .route("/v1/metrics", post(metrics))
        .route("/v1/traces", post(traces))
        .with_state(Arc::clone(&received));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (received, format!("http://{addr}"))
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.as_str()),
        _ => None,
    })
}

fn has_attr(attrs: &[KeyValue], key: &str) -> bool {
    attrs.iter().any(|kv| kv.key == key && kv.value.as_ref().is_some_and(|v: &AnyValue| v.value.is_some()))
}

/// Sum of histogram counts of `name` over data points matching the attributes.
fn histogram_count(metrics: &[Metric], name: &str, filter: &[(&str, &str)]) -> u64 {
    let matches = |attrs: &[KeyValue]| filter.iter().all(|(k, v)| attr(attrs, k) == Some(*v));
    metrics
        .iter()
        .filter(|m| m.name == name)
        .map(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => {
                h.data_points.iter().filter(|p| matches(&p.attributes)).map(|p| p.count).sum()
            }
            Some(metric::Data::ExponentialHistogram(h)) => {
                h.data_points.iter().filter(|p| matches(&p.attributes)).map(|p| p.count).sum()
            }
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// The last gauge value of `name` for `target`.
fn gauge(metrics: &[Metric], name: &str, target: &str) -> Option<f64> {
    metrics.iter().rev().filter(|m| m.name == name).find_map(|m| match &m.data {
        Some(metric::Data::Gauge(g)) => {
            g.data_points.iter().find(|p| attr(&p.attributes, "target") == Some(target)).and_then(|p| match p.value {
                Some(number_data_point::Value::AsDouble(v)) => Some(v),
                Some(number_data_point::Value::AsInt(v)) => Some(v as f64),
                None => None,
            })
        }
        _ => None,
    })
}

/// Wait (bounded) until `pred` holds on the receiver.
async fn until(received: &Received, within: Duration, pred: impl Fn(&Received) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if pred(received) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pred(received)
}

fn config(mcp_url: &str, otlp: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "2s"

{otlp}

[[targets]]
name = "ref"
url = "{mcp_url}"
interval = "1s"
timeout = "1s"
protocol = "2025-11-25"
session = "fresh"
[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}
resource = "canary://static/hello"
prompt = "greeting"
prompt_arguments = {{ name = "canary" }}
"#
    )
}

const OPERATION: &str = "mcp.client.operation.duration";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_receiver_gets_semconv_metrics_and_spans() {
    let (_target, mcp_url) = start_target(&[]).await;
    let (received, endpoint) = grpc_receiver().await;
    let otlp = format!(
        "[otlp]\nenabled = true\nendpoint = \"{endpoint}\"\nprotocol = \"grpc\"\ninterval = \"500ms\"\n\
         headers = {{ \"X-Canary-Auth\" = \"{SECRET}\" }}"
    );
    let (mut daemon, _dir, base) = start_daemon("otlp-grpc", &config(&mcp_url, &otlp), &[]).await;

    // Metrics: the operation histogram under its semconv name, unit and attributes.
    let ok = until(&received, Duration::from_secs(20), |r| {
        let m = r.metrics();
        histogram_count(&m, OPERATION, &[("target", "ref"), ("mcp.method.name", "tools/call")]) >= 2
            && gauge(&m, "mcp_canary_probe_success", "ref") == Some(1.0)
    })
    .await;
    let metrics = received.metrics();
    assert!(ok, "no operation histogram / probe_success over OTLP: {:?}\n{}", names(&metrics), daemon.log_text());
    let op = metrics.iter().find(|m| m.name == OPERATION).unwrap();
    assert_eq!(op.unit, "s");
    let Some(metric::Data::Histogram(h)) = &op.data else { panic!("{OPERATION} is not an explicit histogram") };
    let point = h.data_points.iter().find(|p| attr(&p.attributes, "mcp.method.name") == Some("tools/call")).unwrap();
    assert_eq!(attr(&point.attributes, "gen_ai.tool.name"), Some("echo"));
    assert_eq!(attr(&point.attributes, "mcp.protocol.version"), Some("2025-11-25"));
    assert!(!has_attr(&point.attributes, "error.type"), "error.type only on failures");
    assert!(point.explicit_bounds.contains(&0.05) && point.explicit_bounds.contains(&0.5), "catalogue buckets");
    assert!(point.sum.unwrap_or(0.0) > 0.0);
    assert_eq!(h.aggregation_temporality, AggregationTemporality::Cumulative as i32);
    assert!(metrics.iter().any(|m| m.name == "mcp_canary_probes_total"), "counters too");
    assert!(metrics.iter().all(|m| m.name != "mcp_client_operation_duration_seconds"), "one name per metric");
    // The info family (held outside the recorders, observed at export): one live point per target.
    let ok = until(&received, Duration::from_secs(10), |r| {
        gauge(&r.metrics(), "mcp_canary_server_info", "ref") == Some(1.0)
    })
    .await;
    assert!(ok, "no server_info over OTLP: {:?}", names(&received.metrics()));
    let metrics = received.metrics();
    let info = metrics.iter().rev().find(|m| m.name == "mcp_canary_server_info").unwrap();
    let Some(metric::Data::Gauge(g)) = &info.data else { panic!("server_info is not a gauge") };
    assert_eq!(g.data_points.len(), 1, "{g:?}");
    assert_eq!(attr(&g.data_points[0].attributes, "mcp.protocol.version"), Some("2025-11-25"));

    // Spans: a probe span with a child per operation, semconv attributes, the session id.
    let ok = until(&received, Duration::from_secs(15), |r| r.spans().iter().any(|s| s.name == "tools/call echo")).await;
    assert!(ok, "no tools/call span:\n{}", daemon.log_text());
    let spans = received.spans();
    let call = spans.iter().find(|s| s.name == "tools/call echo").unwrap();
    assert_eq!(attr(&call.attributes, "mcp.method.name"), Some("tools/call"));
    assert_eq!(attr(&call.attributes, "gen_ai.tool.name"), Some("echo"));
    assert_eq!(attr(&call.attributes, "mcp.protocol.version"), Some("2025-11-25"));
    assert!(attr(&call.attributes, "mcp.session.id").is_some_and(|s| !s.is_empty()), "{:?}", call.attributes);
    assert!(call.end_time_unix_nano > call.start_time_unix_nano);
    let root = spans.iter().find(|s| s.span_id == call.parent_span_id).expect("the probe span is the parent");
    assert_eq!(root.name, "mcp-canary probe");
    assert_eq!(root.trace_id, call.trace_id);
    for method in ["initialize", "tools/list", "resources/read", "prompts/get", "ping", "session/delete"] {
        assert!(spans.iter().any(|s| s.name == method && s.trace_id == call.trace_id), "no {method} span");
    }
    // The session id is a span attribute only, never a metric attribute.
    for m in &metrics {
        let points: Vec<&[KeyValue]> = match &m.data {
            Some(metric::Data::Histogram(h)) => h.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
            Some(metric::Data::Sum(s)) => s.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
            Some(metric::Data::Gauge(g)) => g.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
            _ => vec![],
        };
        assert!(points.iter().all(|a| !has_attr(a, "mcp.session.id")), "{} carries a session id", m.name);
    }

    // Failures: error.type on the span, status error, probe_success 0.
    admin(&mcp_url, "/admin/knobs", serde_json::json!({"error_rate": 1})).await;
    let failed = |r: &Received| {
        r.spans().into_iter().find(|s| s.name == "initialize" && attr(&s.attributes, "error.type").is_some())
    };
    let ok = until(&received, Duration::from_secs(15), |r| {
        failed(r).is_some() && gauge(&r.metrics(), "mcp_canary_probe_success", "ref") == Some(0.0)
    })
    .await;
    assert!(ok, "no failed span / probe_success 0 over OTLP:\n{}", daemon.log_text());
    let span = failed(&received).unwrap();
    assert_eq!(attr(&span.attributes, "error.type"), Some("http_5xx"));
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(status::StatusCode::Error as i32));
    let spans = received.spans();
    let root = spans.iter().find(|s| s.span_id == span.parent_span_id).expect("failed probe span");
    assert_eq!(root.status.as_ref().map(|s| s.code), Some(status::StatusCode::Error as i32));
    let failed_count = histogram_count(
        &received.metrics(),
        OPERATION,
        &[("mcp.method.name", "initialize"), ("error.type", "http_5xx")],
    );
    assert!(failed_count >= 1, "failed operations are recorded with error.type");

    // Exports are counted on /metrics by signal and outcome.
    let (scrape, ok) = common::scrape_until(&base, Duration::from_secs(10), |s| {
        s.value("mcp_canary_otlp_exports_total", &[("signal", "metrics"), ("outcome", "success")]) >= 2.0
            && s.value("mcp_canary_otlp_exports_total", &[("signal", "traces"), ("outcome", "success")]) >= 1.0
    })
    .await;
    assert!(ok, "exports not counted:\n{}", scrape.text);
    assert_eq!(scrape.value("mcp_canary_otlp_exports_total", &[("signal", "metrics"), ("outcome", "failure")]), 0.0);

    // Headers reach the collector; the secret never reaches the log.
    assert!(received.auth.lock().unwrap().iter().any(|v| v == SECRET), "x-canary-auth not sent");
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0));
    assert!(!daemon.log_text().contains(SECRET), "secret logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_from_standard_env_with_exponential_delta_histograms_flushes_on_sigterm() {
    let (_target, mcp_url) = start_target(&[]).await;
    let (received, endpoint) = http_receiver().await;
    // Only the histogram choice is in the file; the standard variables do the rest. The metric
    // interval is long, so metrics can only arrive through the flush on SIGTERM.
    let otlp = "[otlp]\nhistograms = \"exponential\"";
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-canary-auth=collector-secret-value"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "60000"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
    ];
    let (mut daemon, _dir, base) = start_daemon("otlp-http", &config(&mcp_url, otlp), &env).await;

    let ok = until(&received, Duration::from_secs(20), |r| r.spans().iter().any(|s| s.name == "tools/call echo")).await;
    assert!(ok, "no spans over HTTP/protobuf:\n{}", daemon.log_text());
    // Let a few cycles complete, then stop: the final export carries them.
    let (_, ok) = common::scrape_until(&base, Duration::from_secs(15), |s| {
        s.value("mcp_canary_probes_total", &[("target", "ref"), ("outcome", "success")]) >= 2.0
    })
    .await;
    assert!(ok, "probes did not succeed:\n{}", daemon.log_text());
    assert!(received.metrics().is_empty(), "metrics exported before the interval");
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0));

    let metrics = received.metrics();
    let op = metrics.iter().find(|m| m.name == OPERATION).unwrap_or_else(|| panic!("{:?}", names(&metrics)));
    let Some(metric::Data::ExponentialHistogram(h)) = &op.data else { panic!("{OPERATION} is not exponential") };
    assert_eq!(h.aggregation_temporality, AggregationTemporality::Delta as i32);
    let point = h.data_points.iter().find(|p| attr(&p.attributes, "mcp.method.name") == Some("tools/call")).unwrap();
    assert!(point.count >= 2, "{point:?}");
    assert_eq!(attr(&point.attributes, "target"), Some("ref"));
    assert_eq!(gauge(&metrics, "mcp_canary_probe_success", "ref"), Some(1.0));
    assert!(received.auth.lock().unwrap().iter().any(|v| v == SECRET), "OTEL_EXPORTER_OTLP_HEADERS not sent");
    assert!(!daemon.log_text().contains(SECRET), "secret logged");
}

fn names(metrics: &[Metric]) -> Vec<&str> {
    let mut n: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    n.sort();
    n.dedup();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_collector_is_logged_and_does_not_stop_probing_or_exit() {
    let (_target, mcp_url) = start_target(&[]).await;
    let closed = common::closed_addr();
    let otlp =
        format!("[otlp]\nenabled = true\nendpoint = \"http://{closed}\"\ninterval = \"200ms\"\ntimeout = \"500ms\"");
    let (mut daemon, _dir, base) = start_daemon("otlp-unreachable", &config(&mcp_url, &otlp), &[]).await;
    let (scrape, ok) = common::scrape_until(&base, Duration::from_secs(15), |s| {
        s.value("mcp_canary_probes_total", &[("target", "ref"), ("outcome", "success")]) >= 2.0
            && s.value("mcp_canary_otlp_exports_total", &[("signal", "metrics"), ("outcome", "failure")]) >= 1.0
    })
    .await;
    assert!(ok, "probing stopped or export failures not counted:\n{}\n{}", scrape.text, daemon.log_text());
    assert_eq!(scrape.value("mcp_canary_otlp_exports_total", &[("signal", "metrics"), ("outcome", "success")]), 0.0);
    let started = std::time::Instant::now();
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0));
    assert!(started.elapsed() < Duration::from_secs(6), "exit held by the flush: {:?}", started.elapsed());
    let log = daemon.log_text();
    assert!(log.contains("OTLP export on"), "{log}");
    assert!(log.contains("PeriodicReader.ExportError"), "export failure not logged:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_signal_endpoints_with_grpc_over_tls_trusting_a_configured_ca() {
    let (_target, mcp_url) = start_target(&[]).await;
    let (tls_received, tls_endpoint, ca_pem) = grpc_tls_receiver().await;
    let (plain_received, plain_endpoint) = grpc_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    // Metrics over TLS to one collector, spans in clear text to another; export is on because a
    // signal endpoint is set.
    let env = [
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", tls_endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", plain_endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.to_str().unwrap()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
    ];
    let (mut daemon, _dir, _base) = start_daemon("otlp-tls", &config(&mcp_url, ""), &env).await;
    let ok = until(&tls_received, Duration::from_secs(20), |r| {
        histogram_count(&r.metrics(), OPERATION, &[("mcp.method.name", "tools/call")]) >= 1
    })
    .await;
    assert!(ok, "no metrics over TLS:\n{}", daemon.log_text());
    let ok = until(&plain_received, Duration::from_secs(15), |r| r.spans().iter().any(|s| s.name == "tools/call echo"))
        .await;
    assert!(ok, "no spans on the traces endpoint:\n{}", daemon.log_text());
    assert!(tls_received.spans().is_empty(), "spans went to the metrics endpoint");
    assert!(plain_received.metrics().is_empty(), "metrics went to the traces endpoint");
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_collector_with_an_untrusted_certificate_counts_failures() {
    let (_target, mcp_url) = start_target(&[]).await;
    let (received, endpoint, _ca) = grpc_tls_receiver().await;
    // No certificate configured: the system roots do not know the test CA.
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_METRIC_EXPORT_INTERVAL", "200")];
    let (mut daemon, _dir, base) = start_daemon("otlp-tls-untrusted", &config(&mcp_url, ""), &env).await;
    let (scrape, ok) = common::scrape_until(&base, Duration::from_secs(15), |s| {
        s.value("mcp_canary_otlp_exports_total", &[("signal", "metrics"), ("outcome", "failure")]) >= 1.0
    })
    .await;
    assert!(ok, "TLS failure not counted:\n{}\n{}", scrape.text, daemon.log_text());
    assert!(received.metrics().is_empty(), "an untrusted certificate was accepted");
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_collector_holds_the_stop_at_most_the_fixed_flush_bound() {
    let (_target, mcp_url) = start_target(&[]).await;
    // A collector that accepts connections and never answers: the final push waits on it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            if held.len() < 64 {
                held.push(socket);
            }
        }
    });
    let otlp = format!(
        "[otlp]\nenabled = true\nendpoint = \"http://{collector}\"\nprotocol = \"http/protobuf\"\ninterval = \"60s\"\ntimeout = \"120s\""
    );
    let config = config(&mcp_url, &otlp).replace("shutdown_grace = \"2s\"", "shutdown_grace = \"60s\"");
    let (mut daemon, _dir, base) = start_daemon("otlp-stalled", &config, &[]).await;
    let (scrape, ok) = common::scrape_until(&base, Duration::from_secs(15), |s| {
        s.value("mcp_canary_probes_total", &[("target", "ref"), ("outcome", "success")]) >= 1.0
    })
    .await;
    assert!(ok, "no probe succeeded:\n{}\n{}", scrape.text, daemon.log_text());
    let started = std::time::Instant::now();
    assert_eq!(daemon.terminate(Duration::from_secs(90)).await, Some(0));
    // Probes drain at once; the flush may take OTLP_FLUSH_TIMEOUT (5 s), not the 60 s grace.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(11), "the stalled collector held the stop for {took:?}");
    assert!(took >= Duration::from_secs(4), "the final push was not attempted ({took:?})");
    let log = daemon.log_text();
    assert!(log.contains("OTLP flush did not finish in time"), "{log}");
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    })
}

/// Data points of the operation histogram (explicit buckets) matching `filter`.
fn operation_points(
    metrics: &[Metric],
    filter: &[(&str, &str)],
) -> Vec<opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint> {
    metrics
        .iter()
        .filter(|m| m.name == OPERATION)
        .flat_map(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => h.data_points.clone(),
            _ => vec![],
        })
        .filter(|p| filter.iter().all(|(k, v)| attr(&p.attributes, k) == Some(*v)))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The MCP semantic conventions over OTLP: endpoint and network attributes, `gen_ai.operation.name`,
/// the session id only in the session era, `error.type` as the JSON-RPC code of a JSON-RPC error
/// and `tool_error` for an `isError` result (the Prometheus label unchanged), the advised
/// boundaries with the SLO thresholds, and the probe span's trace context in `params._meta` as
/// the reference target received it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_conventions_error_types_boundaries_and_trace_context_in_meta() {
    let (_target, mcp_url) = start_target(&[]).await;
    let port = i64::from(url::Url::parse(&mcp_url).unwrap().port().unwrap());
    let (received, endpoint) = grpc_receiver().await;
    let target = |name: &str, protocol: &str| {
        format!(
            "[[targets]]\nname = \"{name}\"\nurl = \"{mcp_url}\"\ninterval = \"1s\"\ntimeout = \"1s\"\n\
             protocol = \"{protocol}\"\nsession = \"fresh\"\n[targets.probe]\ntool = \"echo\"\n\
             tool_arguments = {{ message = \"canary\" }}\n"
        )
    };
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"2s\"\n\n[otlp]\nenabled = true\nendpoint = \"{endpoint}\"\n\
         protocol = \"grpc\"\ninterval = \"300ms\"\n\n{}\n{}",
        target("session", "2025-11-25"),
        target("stateless", "2026-07-28")
    );
    let (mut daemon, _dir, base) = start_daemon("otlp-semconv", &config, &[]).await;

    // Successful tools/call points of both eras, with the conventions' attributes.
    let ok = until(&received, Duration::from_secs(20), |r| {
        let m = r.metrics();
        ["session", "stateless"]
            .iter()
            .all(|t| !operation_points(&m, &[("target", t), ("mcp.method.name", "tools/call")]).is_empty())
            && r.spans().iter().any(|s| attr(&s.attributes, "target") == Some("stateless"))
    })
    .await;
    assert!(ok, "no tools/call points or spans of both targets:\n{}", daemon.log_text());
    let metrics = received.metrics();
    for (t, version) in [("session", "2025-11-25"), ("stateless", "2026-07-28")] {
        let points = operation_points(&metrics, &[("target", t), ("mcp.method.name", "tools/call")]);
        let p = &points[0];
        assert_eq!(attr(&p.attributes, "server.address"), Some("127.0.0.1"), "{:?}", p.attributes);
        assert_eq!(int_attr(&p.attributes, "server.port"), Some(port));
        assert_eq!(attr(&p.attributes, "network.transport"), Some("tcp"));
        assert_eq!(attr(&p.attributes, "network.protocol.name"), Some("http"));
        assert_eq!(attr(&p.attributes, "network.protocol.version"), Some("1.1"));
        assert_eq!(attr(&p.attributes, "gen_ai.operation.name"), Some("execute_tool"));
        assert_eq!(attr(&p.attributes, "gen_ai.tool.name"), Some("echo"));
        assert_eq!(attr(&p.attributes, "mcp.protocol.version"), Some(version));
        assert!(!has_attr(&p.attributes, "error.type") && !has_attr(&p.attributes, "mcp.session.id"));
        assert_eq!(
            p.explicit_bounds,
            [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0],
            "the conventions' advised boundaries (holding the SLO thresholds)"
        );
        // Other methods get no GenAI operation.
        let list = operation_points(&metrics, &[("target", t), ("mcp.method.name", "tools/list")]);
        assert!(list.iter().all(|p| !has_attr(&p.attributes, "gen_ai.operation.name")), "{list:?}");
    }
    // Spans: the session id on session-era operations only, never on 2026-07-28 traffic.
    let spans = received.spans();
    let session_call = spans
        .iter()
        .find(|s| s.name == "tools/call echo" && attr(&s.attributes, "target") == Some("session"))
        .expect("a session-era tools/call span");
    assert!(attr(&session_call.attributes, "mcp.session.id").is_some_and(|s| !s.is_empty()));
    assert_eq!(int_attr(&session_call.attributes, "server.port"), Some(port));
    assert_eq!(attr(&session_call.attributes, "gen_ai.operation.name"), Some("execute_tool"));
    let stateless: Vec<&Span> = spans
        .iter()
        .filter(|s| attr(&s.attributes, "target") == Some("stateless") && s.parent_span_id.len() == 8)
        .collect();
    assert!(
        stateless.iter().any(|s| s.name == "server/discover"),
        "{:?}",
        stateless.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for s in &stateless {
        assert!(!has_attr(&s.attributes, "mcp.session.id"), "{} of 2026-07-28 traffic carries a session id", s.name);
        assert_eq!(attr(&s.attributes, "mcp.protocol.version"), Some("2026-07-28"));
    }

    // Each request carried the context of its own operation span: the target saw a traceparent
    // whose parent is the exported client span of that operation (in the probe span's trace),
    // so the server's spans nest under it rather than beside it.
    let base_url = mcp_url.trim_end_matches("/mcp").to_string();
    let seen: serde_json::Value =
        reqwest::get(format!("{base_url}/admin/trace-meta")).await.unwrap().json().await.unwrap();
    for method in ["tools/call", "tools/list", "initialize"] {
        let tp = seen[method]["traceparent"].as_str().unwrap_or_else(|| panic!("no traceparent on {method}: {seen}"));
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!((parts.len(), parts[0], parts[3]), (4, "00", "01"), "{tp}");
        let ok = until(&received, Duration::from_secs(10), |r| {
            r.spans().iter().any(|s| hex(&s.trace_id) == parts[1] && hex(&s.span_id) == parts[2])
        })
        .await;
        assert!(ok, "no exported span {tp} ({method})");
        let spans = received.spans();
        let operation = spans.iter().find(|s| hex(&s.span_id) == parts[2]).unwrap();
        assert!(operation.name.starts_with(method), "{tp} names the span {:?}, not a {method} span", operation.name);
        assert_eq!(operation.kind, span::SpanKind::Client as i32, "{}", operation.name);
        let ok = until(&received, Duration::from_secs(10), |r| {
            r.spans().iter().any(|s| s.span_id == operation.parent_span_id && s.name == "mcp-canary probe")
        })
        .await;
        assert!(ok, "the {method} span of {tp} is not a child of an exported probe span");
    }

    // A JSON-RPC error: error.type and rpc.response.status_code are the code over OTLP; the
    // Prometheus label stays the class.
    admin(&mcp_url, "/admin/knobs", serde_json::json!({"echo_jsonrpc_error": -32603})).await;
    let ok = until(&received, Duration::from_secs(15), |r| {
        ["session", "stateless"].iter().all(|t| {
            !operation_points(
                &r.metrics(),
                &[("target", t), ("mcp.method.name", "tools/call"), ("error.type", "-32603")],
            )
            .is_empty()
        })
    })
    .await;
    assert!(ok, "no error.type=-32603 points:\n{}", daemon.log_text());
    let points = operation_points(&received.metrics(), &[("mcp.method.name", "tools/call"), ("error.type", "-32603")]);
    assert!(points.iter().all(|p| attr(&p.attributes, "rpc.response.status_code") == Some("-32603")), "{points:?}");
    let ok = until(&received, Duration::from_secs(10), |r| {
        r.spans().iter().any(|s| s.name == "tools/call echo" && attr(&s.attributes, "error.type") == Some("-32603"))
    })
    .await;
    assert!(ok, "no span with error.type -32603");
    let (scrape, ok) = common::scrape_until(&base, Duration::from_secs(10), |s| {
        s.value(
            "mcp_client_operation_duration_seconds_count",
            &[("mcp_method_name", "tools/call"), ("error_type", "jsonrpc_error")],
        ) >= 1.0
    })
    .await;
    assert!(ok, "Prometheus error_type changed:\n{}", scrape.text);
    assert!(!scrape.text.contains("error_type=\"-32603\""), "a code leaked into the Prometheus label");
    assert!(
        !scrape.text.contains("server_address") && !scrape.text.contains("network_"),
        "OTLP-only attributes on /metrics"
    );

    // An isError result: tool_error.
    admin(&mcp_url, "/admin/knobs", serde_json::json!({"echo_jsonrpc_error": 0, "tool_error": true})).await;
    let ok = until(&received, Duration::from_secs(15), |r| {
        !operation_points(&r.metrics(), &[("mcp.method.name", "tools/call"), ("error.type", "tool_error")]).is_empty()
    })
    .await;
    assert!(ok, "no error.type=tool_error points:\n{}", daemon.log_text());
    let points = operation_points(&received.metrics(), &[("error.type", "tool_error")]);
    assert!(points.iter().all(|p| !has_attr(&p.attributes, "rpc.response.status_code")), "{points:?}");
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0));
}
