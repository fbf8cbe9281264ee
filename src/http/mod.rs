//! The daemon's HTTP surface: `/metrics`, `/healthz`, `/readyz`, served with client bounds
//! (see [`serve`]).

pub mod serve;

use std::sync::Arc;

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

/// Routes of the daemon.
pub fn router(exporter: Exporter, ready: Arc<Readiness>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AppState { exporter, ready })
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
