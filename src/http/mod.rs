//! The HTTP surface of the daemon and of one-shot runs: `/metrics`, `/healthz`, `/readyz`,
//! the daemon's `/probe` ([`probe`]), served with client bounds (see [`serve`]), and the
//! exporter's upkeep beside them.

pub mod probe;
pub mod serve;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::schedule::Readiness;
use crate::telemetry::Exporter;

#[derive(Clone)]
struct AppState {
    exporter: Exporter,
    ready: Arc<Readiness>,
}

/// Routes of the daemon; `/probe` when given its state (the daemon's, not a one-shot run's).
pub fn router(exporter: Exporter, ready: Arc<Readiness>, probe: Option<Arc<probe::ProbeState>>) -> Router {
    let app = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AppState { exporter, ready });
    match probe {
        Some(state) => app.merge(probe::routes(state)),
        None => app,
    }
}

async fn index() -> Html<&'static str> {
    Html(
        "<html><head><title>mcp-canary</title></head><body><h1>mcp-canary</h1><ul>\
         <li><a href=\"/metrics\">/metrics</a></li><li><a href=\"/healthz\">/healthz</a></li>\
         <li><a href=\"/readyz\">/readyz</a></li></ul></body></html>",
    )
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.exporter.render())
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.ready.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "waiting for the first probe cycle of every target\n")
    }
}

/// How often histogram buffers are drained when nobody scrapes (memory stays bounded between
/// scrapes; with OTLP on, process metrics are refreshed too).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The exporter's upkeep task and, given a listener, `/metrics` served under the bounds of
/// [`serve::Limits`]: the one surface of `serve` and `run`.
pub struct Surface {
    stop: CancellationToken,
    upkeep: JoinHandle<()>,
    server: Option<JoinHandle<()>>,
}

impl Surface {
    /// Start the upkeep, and serving on `listener` when there is one; `ready` answers `/readyz`,
    /// `probe` (when given) `/probe`.
    pub fn start(
        exporter: Exporter,
        listener: Option<TcpListener>,
        ready: Arc<Readiness>,
        probe: Option<Arc<probe::ProbeState>>,
    ) -> Self {
        let stop = CancellationToken::new();
        let server = listener.map(|listener| {
            let app = router(exporter.clone(), ready, probe);
            let limits = serve::Limits::for_descriptors(crate::process::descriptor_limit());
            tokio::spawn(serve::serve(listener, app, stop.clone(), limits))
        });
        let upkeep = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
                while stop.run_until_cancelled(tick.tick()).await.is_some() {
                    exporter.run_upkeep();
                }
            }
        });
        Self { stop, upkeep, server }
    }

    /// Stop accepting, let answers in flight finish within [`serve::DRAIN_TIMEOUT`], close the
    /// rest, and stop the upkeep.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.upkeep.await;
        if let Some(server) = self.server {
            let _ = server.await;
        }
    }
}
