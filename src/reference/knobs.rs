//! Fault knobs of the reference target: their state, the `/admin/*` endpoints that change them
//! at runtime, and the middleware that applies them in front of the MCP service.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{
    Shared,
    metrics::{Fault, RequestMethod},
    server::InitializedPeerSlot,
};

/// Body of the HTML 500 the `error_rate` knob answers with (what a misbehaving proxy sends).
pub const ERROR_HTML: &str = "<html><body><h1>500 Internal Server Error</h1></body></html>";

/// Current values of the fault knobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knobs {
    /// Delay added before every MCP request, in milliseconds.
    pub latency_ms: u64,
    /// Share (0..=1) of MCP POST requests answered with an HTML 500.
    pub error_rate: f64,
    /// MCP requests hang until this is cleared (or the client gives up).
    pub stall: bool,
    /// The `echo` tool answers with an `isError` result.
    pub tool_error: bool,
    /// Share (0..=1) of `broadcast` deliveries dropped on purpose (one draw per session).
    #[serde(default)]
    pub notify_drop_rate: f64,
    /// Distributed mode: ignore Redis (local sessions only, local notification delivery), the
    /// misconfiguration that breaks non-sticky load balancing.
    #[serde(default)]
    pub local_only: bool,
    /// Share (0..=1) of received pub/sub deliveries dropped instead of delivered.
    #[serde(default)]
    pub pubsub_drop_rate: f64,
    /// Bytes leaked (kept allocated for good) per session that ends without a DELETE.
    #[serde(default)]
    pub leak_per_unclean_session_bytes: u64,
    /// The `echo` tool answers with a JSON-RPC error of this code (HTTP 200); 0: off.
    #[serde(default)]
    pub echo_jsonrpc_error: i64,
}

/// A partial update of [`Knobs`]: fields left out keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnobsPatch {
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub stall: Option<bool>,
    pub tool_error: Option<bool>,
    pub notify_drop_rate: Option<f64>,
    pub local_only: Option<bool>,
    pub pubsub_drop_rate: Option<f64>,
    pub leak_per_unclean_session_bytes: Option<u64>,
    pub echo_jsonrpc_error: Option<i64>,
}

/// Why a knob update was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum KnobsError {
    #[error("error_rate must be within 0..=1, got {0}")]
    ErrorRateOutOfRange(f64),
    #[error("notify_drop_rate must be within 0..=1, got {0}")]
    NotifyDropRateOutOfRange(f64),
    #[error("latency_ms must be at most {max}, got {got}")]
    LatencyTooLarge { got: u64, max: u64 },
    #[error("pubsub_drop_rate must be within 0..=1, got {0}")]
    DropRateOutOfRange(f64),
    #[error("leak_per_unclean_session_bytes must be at most {max}, got {got}")]
    LeakTooLarge { got: u64, max: u64 },
    #[error("echo_jsonrpc_error must be a 32-bit JSON-RPC error code, got {0}")]
    JsonrpcCodeOutOfRange(i64),
}

/// Upper bound of `latency_ms` (ten minutes): larger values are almost certainly typos.
pub const MAX_LATENCY_MS: u64 = 600_000;
/// Upper bound of `leak_per_unclean_session_bytes` (64 MiB per session).
pub const MAX_LEAK_BYTES: u64 = 64 << 20;

impl Knobs {
    /// Check the values are in range.
    pub fn validate(&self) -> Result<(), KnobsError> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(KnobsError::ErrorRateOutOfRange(self.error_rate));
        }
        if !(0.0..=1.0).contains(&self.notify_drop_rate) {
            return Err(KnobsError::NotifyDropRateOutOfRange(self.notify_drop_rate));
        }
        if self.latency_ms > MAX_LATENCY_MS {
            return Err(KnobsError::LatencyTooLarge { got: self.latency_ms, max: MAX_LATENCY_MS });
        }
        if !(0.0..=1.0).contains(&self.pubsub_drop_rate) {
            return Err(KnobsError::DropRateOutOfRange(self.pubsub_drop_rate));
        }
        if i32::try_from(self.echo_jsonrpc_error).is_err() {
            return Err(KnobsError::JsonrpcCodeOutOfRange(self.echo_jsonrpc_error));
        }
        if self.leak_per_unclean_session_bytes > MAX_LEAK_BYTES {
            return Err(KnobsError::LeakTooLarge { got: self.leak_per_unclean_session_bytes, max: MAX_LEAK_BYTES });
        }
        Ok(())
    }

    /// The knobs with `patch` applied (not validated).
    pub fn merged(&self, patch: &KnobsPatch) -> Knobs {
        Knobs {
            latency_ms: patch.latency_ms.unwrap_or(self.latency_ms),
            error_rate: patch.error_rate.unwrap_or(self.error_rate),
            stall: patch.stall.unwrap_or(self.stall),
            tool_error: patch.tool_error.unwrap_or(self.tool_error),
            notify_drop_rate: patch.notify_drop_rate.unwrap_or(self.notify_drop_rate),
            local_only: patch.local_only.unwrap_or(self.local_only),
            pubsub_drop_rate: patch.pubsub_drop_rate.unwrap_or(self.pubsub_drop_rate),
            leak_per_unclean_session_bytes: patch
                .leak_per_unclean_session_bytes
                .unwrap_or(self.leak_per_unclean_session_bytes),
            echo_jsonrpc_error: patch.echo_jsonrpc_error.unwrap_or(self.echo_jsonrpc_error),
        }
    }
}

/// Shared, watchable handle on the knobs; cheap to clone.
#[derive(Debug, Clone)]
pub struct KnobsHandle {
    tx: Arc<watch::Sender<Knobs>>,
}

impl KnobsHandle {
    pub fn new(initial: Knobs) -> Self {
        Self { tx: Arc::new(watch::Sender::new(initial)) }
    }

    /// A copy of the current values.
    pub fn get(&self) -> Knobs {
        self.tx.borrow().clone()
    }

    /// Replace all values.
    pub fn set(&self, knobs: Knobs) -> Result<(), KnobsError> {
        knobs.validate()?;
        self.tx.send_replace(knobs);
        Ok(())
    }

    /// Merge a partial update and return the new state; nothing changes when it is invalid.
    pub fn apply(&self, patch: &KnobsPatch) -> Result<Knobs, KnobsError> {
        let mut result = Ok(Knobs::default());
        self.tx.send_if_modified(|knobs| {
            let next = knobs.merged(patch);
            match next.validate() {
                Ok(()) => {
                    let changed = *knobs != next;
                    *knobs = next.clone();
                    result = Ok(next);
                    changed
                }
                Err(e) => {
                    result = Err(e);
                    false
                }
            }
        });
        result
    }

    /// Wait until `stall` is off.
    async fn wait_unstalled(&self) {
        let mut rx = self.tx.subscribe();
        // Only fails when the sender is dropped, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|k| !k.stall).await;
    }
}

/// Routes under `/admin`.
pub fn admin_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/admin/knobs", get(get_knobs).post(post_knobs))
        .route("/admin/expire-sessions", post(expire_sessions))
        .route("/admin/notify-resources", post(notify_resources))
        .route("/admin/broadcast", post(broadcast))
        .route("/admin/trace-meta", get(trace_meta))
        .with_state(shared)
}

/// The W3C trace context keys (`traceparent`, `tracestate`, `baggage`) of the last request's
/// `params._meta` by MCP method, `{}` for a method whose last request carried none: what a
/// server's instrumentation would take as the remote parent of its span.
async fn trace_meta(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(shared.trace_meta())
}

async fn get_knobs(State(shared): State<Arc<Shared>>) -> Json<Knobs> {
    Json(shared.knobs.get())
}

async fn post_knobs(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let patch: KnobsPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(e) => return bad_request(format!("invalid knobs JSON: {e}")),
    };
    match shared.knobs.apply(&patch) {
        Ok(knobs) => {
            tracing::info!(?knobs, "Knobs changed");
            Json(knobs).into_response()
        }
        Err(e) => bad_request(e.to_string()),
    }
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn expire_sessions(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let expired = shared.expire_sessions().await;
    tracing::info!(expired, "Sessions expired by admin");
    Json(serde_json::json!({ "expired": expired }))
}

async fn notify_resources(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let (sent, dropped) = shared.notify_resources_updated().await;
    tracing::info!(sent, dropped, "Resource update notifications sent");
    Json(serde_json::json!({ "sent": sent, "dropped": dropped }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastBody {
    #[serde(default)]
    nonce: Option<String>,
}

/// Send a `notifications/message` to every session on every instance (over Redis pub/sub in
/// distributed mode, else to this instance's sessions).
async fn broadcast(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let parsed = if body.is_empty() { Ok(BroadcastBody::default()) } else { serde_json::from_slice(&body) };
    let body: BroadcastBody = match parsed {
        Ok(body) => body,
        Err(e) => return bad_request(format!("invalid broadcast JSON: {e}")),
    };
    let nonce = body.nonce.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    match shared.fan_out(super::distributed::Route::Broadcast, &nonce).await {
        Ok(published) => Json(serde_json::json!({ "nonce": nonce, "published": published })).into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "Broadcast not published");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "error": error.to_string() }))).into_response()
        }
    }
}

/// Adds `Mcp-Canary-Instance` to every response.
pub async fn instance_header(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Ok(value) = header::HeaderValue::from_str(&shared.instance) {
        response.headers_mut().insert(INSTANCE_HEADER, value);
    }
    response
}

/// Register the peer of a session created by this request (an `initialize` POST) under the id the
/// response carries, so notifications reach it here whichever instance gets the rest of its traffic;
/// note the sessions whose GET stream this instance serves.
pub async fn track_sessions(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let session = request.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(session) = session {
        let opens_stream = request.method() == Method::GET;
        let response = next.run(request).await;
        if opens_stream && response.status() == StatusCode::OK {
            shared.stream_opened(session);
        }
        return response;
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let slot = InitializedPeerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok());
    if let (Some(session), Some(peer)) = (session, slot.take()) {
        shared.register_peer(session.to_owned(), peer);
    }
    response
}

/// Response header naming the instance that served the request.
pub const INSTANCE_HEADER: &str = "mcp-canary-instance";

/// Middleware in front of the MCP service: counts requests and injects the configured faults.
pub async fn fault_middleware(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = RequestMethod::from_http(request.method());
    shared.metrics.count_request(method);
    let knobs = shared.knobs.get();
    if knobs.stall {
        shared.metrics.count_fault(Fault::Stall);
        tokio::select! {
            _ = shared.knobs.wait_unstalled() => {}
            _ = shared.shutdown.cancelled() => {
                return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
            }
        }
    }
    // Re-read: the knobs may have changed while stalled.
    let knobs = shared.knobs.get();
    if knobs.latency_ms > 0 {
        shared.metrics.count_fault(Fault::Latency);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(knobs.latency_ms)) => {}
            _ = shared.shutdown.cancelled() => {
                return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
            }
        }
    }
    if request.method() == Method::POST && knobs.error_rate > 0.0 && rand::random::<f64>() < knobs.error_rate {
        shared.metrics.count_fault(Fault::HttpError);
        return html_500();
    }
    let deleted_session = (request.method() == Method::DELETE)
        .then(|| request.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned))
        .flatten();
    if let Some(id) = request.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
        shared.touch_session(id);
    }
    let response = next.run(request).await;
    if let Some(id) = deleted_session
        && response.status().is_success()
    {
        shared.session_deleted(&id).await;
    }
    response
}

fn html_500() -> Response {
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header(header::CONTENT_TYPE, "text/html")
        .body(Body::from(ERROR_HTML))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_unset_fields() {
        let knobs = Knobs { latency_ms: 5, error_rate: 0.5, tool_error: true, ..Default::default() };
        let patch = KnobsPatch { stall: Some(true), ..Default::default() };
        assert_eq!(knobs.merged(&patch), Knobs { stall: true, ..knobs.clone() });
    }

    #[test]
    fn invalid_patch_changes_nothing() {
        let handle = KnobsHandle::new(Knobs::default());
        let err = handle.apply(&KnobsPatch { error_rate: Some(1.5), latency_ms: Some(3), ..Default::default() });
        assert_eq!(err, Err(KnobsError::ErrorRateOutOfRange(1.5)));
        assert_eq!(handle.get(), Knobs::default());
        let err = handle.apply(&KnobsPatch { notify_drop_rate: Some(-0.1), ..Default::default() });
        assert_eq!(err, Err(KnobsError::NotifyDropRateOutOfRange(-0.1)));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<KnobsPatch>(r#"{"latency":1}"#).is_err());
        let patch: KnobsPatch = serde_json::from_str(r#"{"tool_error":true}"#).unwrap();
        assert_eq!(patch.tool_error, Some(true));
    }
}
