//! The HTTP surface of the daemon and of one-shot runs: `/metrics`, `/healthz`, `/readyz`,
//! `/-/reload` and `/probe` ([`probe`]), served with client bounds (see [`serve`]), and the
//! exporter's upkeep beside them.

pub mod auth;
pub mod probe;
mod secured;
pub mod serve;
pub mod tls;

pub use secured::Secured;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use crate::schedule::Readiness;
use crate::telemetry::Exporter;

/// A request to reload the config. The daemon answers on `reply`, when there is one, with a
/// summary of what changed or with why the new config was refused (the old one keeps running).
#[derive(Debug)]
pub struct ReloadRequest {
    /// What asked: `signal`, `http` or `watch` (for the log).
    pub cause: &'static str,
    pub reply: Option<oneshot::Sender<Result<String, String>>>,
}

/// Where reload requests go (the daemon's config supervisor).
pub type ReloadSender = mpsc::Sender<ReloadRequest>;

#[derive(Clone)]
struct AppState {
    exporter: Exporter,
    ready: Arc<Readiness>,
    reload: Option<ReloadSender>,
}

/// The daemon's own endpoints beside `/metrics`; one-shot runs have neither.
#[derive(Default)]
pub struct DaemonEndpoints {
    /// `/-/reload` (404 without).
    pub reload: Option<ReloadSender>,
    /// `/probe` (absent without).
    pub probe: Option<Arc<probe::ProbeState>>,
    /// TLS and credentials (`serve`'s `[server]`); plain and open by default.
    pub secured: Secured,
}

/// Routes of the daemon.
pub fn router(exporter: Exporter, ready: Arc<Readiness>, endpoints: DaemonEndpoints) -> Router {
    let DaemonEndpoints { reload, probe, .. } = endpoints;
    let app = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload_config).put(reload_config))
        .with_state(AppState { exporter, ready, reload });
    match probe {
        Some(state) => app.merge(probe::routes(state)),
        None => app,
    }
}

/// `POST /-/reload` (or PUT, as Prometheus takes it): 200 with what changed, 400 with every
/// problem of a refused config, 503 when the daemon is stopping.
async fn reload_config(State(state): State<AppState>) -> (StatusCode, String) {
    let Some(reload) = state.reload else {
        return (StatusCode::NOT_FOUND, "no config to reload here\n".into());
    };
    let (reply, answer) = oneshot::channel();
    if reload.send(ReloadRequest { cause: "http", reply: Some(reply) }).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping\n".into());
    }
    match answer.await {
        Ok(Ok(summary)) => (StatusCode::OK, format!("{summary}\n")),
        Ok(Err(e)) => (StatusCode::BAD_REQUEST, format!("config not reloaded, the previous one keeps running:\n{e}\n")),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping\n".into()),
    }
}

async fn index() -> Html<&'static str> {
    Html(
        "<html><head><title>mcp-canary</title></head><body><h1>mcp-canary</h1><ul>\
         <li><a href=\"/metrics\">/metrics</a></li><li><a href=\"/healthz\">/healthz</a></li>\
         <li><a href=\"/readyz\">/readyz</a></li><li>POST /-/reload</li></ul></body></html>",
    )
}

/// The text exposition, or the protobuf one with native histograms for a scraper whose `Accept`
/// asks for it (see [`crate::telemetry::protobuf`]).
async fn metrics(State(state): State<AppState>, headers: header::HeaderMap) -> axum::response::Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if crate::telemetry::protobuf::accepts_protobuf(accept) {
        // On a blocking thread, as the text is: the runtime's threads keep probing meanwhile,
        // and both scrapes' transient memory comes from the same threads' allocator arenas.
        let exporter = state.exporter.clone();
        return match tokio::task::spawn_blocking(move || exporter.render_protobuf()).await {
            Ok(body) => ([(header::CONTENT_TYPE, crate::telemetry::protobuf::CONTENT_TYPE)], body).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text_body(state.exporter)).into_response()
}

/// Pieces of the text exposition rendered ahead of the scraper: with the one being written,
/// what a scrape holds beyond the counters' and gauges' text.
const TEXT_CHUNKS_AHEAD: usize = 2;

/// The text exposition streamed as it is rendered (see [`Exporter::render_chunks`]), on a
/// blocking thread that stays at most [`TEXT_CHUNKS_AHEAD`] pieces ahead of the scraper and stops
/// when the scraper is gone. The bytes are those of [`Exporter::render`].
fn text_body(exporter: Exporter) -> axum::body::Body {
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(TEXT_CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        exporter
            .render_chunks(crate::telemetry::prometheus::TEXT_CHUNK, |chunk| tx.blocking_send(chunk.into()).is_ok());
    });
    axum::body::Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    }))
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
    /// `endpoints` adds the daemon's `/-/reload` and `/probe`.
    pub fn start(
        exporter: Exporter,
        listener: Option<TcpListener>,
        ready: Arc<Readiness>,
        mut endpoints: DaemonEndpoints,
    ) -> Self {
        let stop = CancellationToken::new();
        let server = listener.map(|listener| {
            let secured = std::mem::take(&mut endpoints.secured);
            let app = secured.protect(router(exporter.clone(), ready, endpoints));
            let limits = serve::Limits::for_descriptors(crate::process::descriptor_limit());
            tokio::spawn(serve::serve_with_tls(listener, app, stop.clone(), limits, secured.tls.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    /// `/metrics` streams the text exposition: the body is `Exporter::render`'s, byte for byte.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streamed_scrape_is_the_rendered_text() {
        let (exporter, recorder) = Exporter::unregistered();
        metrics::with_local_recorder(&recorder, || {
            use crate::telemetry::catalogue as m;
            for t in 0..200 {
                let t = format!("t{t}");
                for (method, seconds) in [("tools/call", 0.07), ("tools/list", 0.004), ("initialize", 0.3)] {
                    metrics::histogram!(m::OPERATION_DURATION.name, "target" => t.clone(), "mcp_method_name" => method)
                        .record(seconds);
                }
                metrics::counter!(m::PROBES.name, "target" => t, "outcome" => "success").increment(1);
            }
        });
        let rendered = exporter.render();
        assert!(rendered.len() > 2 * crate::telemetry::prometheus::TEXT_CHUNK, "several pieces: {}", rendered.len());
        let app = router(exporter, Arc::new(Readiness::default()), DaemonEndpoints::default());
        let response =
            app.oneshot(http::Request::get("/metrics").body(Body::empty()).unwrap()).await.expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; version=0.0.4; charset=utf-8");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("whole body");
        // The same lines (the exporter's counters come in hash order, which may differ between
        // two renders) and the histograms' text byte for byte.
        let body = std::str::from_utf8(&body).expect("UTF-8");
        let (mut streamed, mut expected): (Vec<&str>, Vec<&str>) = (body.lines().collect(), rendered.lines().collect());
        streamed.sort_unstable();
        expected.sort_unstable();
        assert!(streamed == expected, "{} bytes streamed, {} rendered", body.len(), rendered.len());
        let histograms = rendered.find("# HELP mcp_client_operation_duration_seconds").expect("histograms");
        let end = histograms + rendered[histograms..].find("\n\n").expect("family end");
        assert!(body.contains(&rendered[histograms..end]), "the histograms' text, byte for byte");
    }
}
