//! `GET /probe?target=URL&module=NAME`, blackbox_exporter's contract: one probe cycle of the
//! module against the URL, answered with that cycle's metrics only. Everything that can refuse
//! a request (endpoint off, bad or unknown parameters, a target outside `allowed_targets`, the
//! concurrency cap) does so before any connection is made.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Semaphore;
use url::Url;

use crate::config::{DEFAULT_MODULE, MAX_PROBE_TIMEOUT, ProbeEndpoint, TargetRefusal};
use crate::mcp::auth::TokenSource;
use crate::telemetry::probe::{self as telemetry, RequestOutcome};

/// Prometheus sends its scrape timeout in this header (seconds).
pub const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";
/// Token sources kept for protected modules, one per (module, URL); the map is emptied when
/// full, so its memory stays bounded whatever URLs the patterns allow.
pub const MAX_TOKEN_SOURCES: usize = 256;
/// The shortest deadline a probe gets, whatever the scrape timeout says.
pub const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(100);

/// What `/probe` needs: the HTTP client and the current config (swapped whole by a reload).
pub struct ProbeState {
    http: reqwest::Client,
    current: RwLock<Arc<Current>>,
}

/// One config of `/probe`: validated endpoint (`None`: off), a slot per concurrent probe and the
/// OAuth token sources of protected modules.
struct Current {
    endpoint: Option<ProbeEndpoint>,
    slots: Arc<Semaphore>,
    tokens: Mutex<HashMap<(String, Url), Arc<TokenSource>>>,
}

impl Current {
    fn new(endpoint: Option<ProbeEndpoint>) -> Arc<Self> {
        if let Some(e) = &endpoint {
            tracing::info!(
                allowed_targets = ?e.allowed_targets,
                modules = ?e.modules.keys().collect::<Vec<_>>(),
                max_concurrent = e.max_concurrent,
                "Serving /probe"
            );
        }
        let slots = Arc::new(Semaphore::new(endpoint.as_ref().map_or(0, |e| e.max_concurrent)));
        Arc::new(Self { endpoint, slots, tokens: Mutex::new(HashMap::new()) })
    }

    /// The token source of `module` for `url`: kept between probes so tokens are reused until
    /// they expire.
    fn token_source(&self, module: &str, url: &Url, http: &reqwest::Client) -> Option<Arc<TokenSource>> {
        let settings = self.endpoint.as_ref()?.module(module)?.oauth()?;
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (module.to_string(), url.clone());
        if !tokens.contains_key(&key) && tokens.len() >= MAX_TOKEN_SOURCES {
            tokens.clear();
        }
        let source = tokens
            .entry(key)
            .or_insert_with(|| Arc::new(TokenSource::new(url.clone(), settings.clone(), http.clone())));
        Some(Arc::clone(source))
    }
}

impl ProbeState {
    pub fn new(endpoint: Option<ProbeEndpoint>) -> reqwest::Result<Arc<Self>> {
        telemetry::requests_registered();
        let http = crate::mcp::transport::http_client()?;
        Ok(Arc::new(Self { http, current: RwLock::new(Current::new(endpoint)) }))
    }

    /// Serve `endpoint` from the next request on (a reload); probes in flight finish under the
    /// config they started with.
    pub fn replace(&self, endpoint: Option<ProbeEndpoint>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Current::new(endpoint);
    }

    fn current(&self) -> Arc<Current> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The `/probe` route with its own state, to merge into the surface's router.
pub fn routes(state: Arc<ProbeState>) -> Router {
    Router::new().route("/probe", get(probe)).with_state(state)
}

fn answer(outcome: RequestOutcome, status: StatusCode, message: String) -> Response {
    telemetry::request_answered(outcome);
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message + "\n").into_response()
}

async fn probe(State(state): State<Arc<ProbeState>>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let current = state.current();
    let Some(endpoint) = &current.endpoint else {
        return answer(
            RequestOutcome::Refused,
            StatusCode::NOT_FOUND,
            "/probe is off: add a [probe] table with allowed_targets to the config".into(),
        );
    };
    let mut target = None;
    let mut module = None;
    for (key, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "target" if target.is_none() => target = Some(value.into_owned()),
            "module" if module.is_none() => module = Some(value.into_owned()),
            _ => {}
        }
    }
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return answer(RequestOutcome::BadRequest, StatusCode::BAD_REQUEST, "target parameter is missing".into());
    };
    let module_name = module.filter(|m| !m.is_empty()).unwrap_or_else(|| DEFAULT_MODULE.to_string());
    let Some(module) = endpoint.module(&module_name) else {
        let known: Vec<&str> = endpoint.modules.keys().map(String::as_str).collect();
        return answer(
            RequestOutcome::BadRequest,
            StatusCode::BAD_REQUEST,
            format!(
                "unknown module {:?}; configured: {}",
                crate::mcp::protocol::printable(&module_name, 64),
                known.join(", ")
            ),
        );
    };
    let url = match endpoint.check_target(&target) {
        Ok(url) => url,
        Err(TargetRefusal::Invalid(why)) => {
            return answer(RequestOutcome::BadRequest, StatusCode::BAD_REQUEST, why.into());
        }
        Err(TargetRefusal::NotAllowed) => {
            tracing::debug!(target_url = %crate::mcp::protocol::printable(&target, 256), "Probe target refused");
            return answer(
                RequestOutcome::Refused,
                StatusCode::FORBIDDEN,
                "target is not allowed: it matches no pattern of probe.allowed_targets".into(),
            );
        }
    };
    let deadline = match deadline(module.timeout(), &headers, endpoint.scrape_timeout_offset) {
        Ok(d) => d,
        Err(message) => return answer(RequestOutcome::BadRequest, StatusCode::BAD_REQUEST, message),
    };
    let Ok(_slot) = Arc::clone(&current.slots).try_acquire_owned() else {
        return answer(
            RequestOutcome::Busy,
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} probes in flight (probe.max_concurrent); try again later", endpoint.max_concurrent),
        );
    };
    let auth = current.token_source(&module_name, &url, &state.http);
    let target = module.target(url, deadline, auth);
    let outcome = crate::runner::once::run_once(target, state.http.clone(), deadline).await;
    telemetry::request_answered(RequestOutcome::Ok);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], telemetry::render(&outcome)).into_response()
}

/// The probe's deadline: the module's timeout, shortened to Prometheus's scrape timeout less
/// `offset` (the whole timeout when it is shorter than `offset`), within
/// [`MIN_PROBE_TIMEOUT`]..=[`MAX_PROBE_TIMEOUT`].
fn deadline(module: Duration, headers: &HeaderMap, offset: Duration) -> Result<Duration, String> {
    let Some(value) = headers.get(SCRAPE_TIMEOUT_HEADER) else {
        return Ok(module.clamp(MIN_PROBE_TIMEOUT, MAX_PROBE_TIMEOUT));
    };
    let scrape = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("{SCRAPE_TIMEOUT_HEADER} must be a positive number of seconds"))?;
    let scrape = Duration::from_secs_f64(scrape.min(MAX_PROBE_TIMEOUT.as_secs_f64()));
    let budget = if scrape > offset { scrape - offset } else { scrape };
    Ok(module.min(budget).clamp(MIN_PROBE_TIMEOUT, MAX_PROBE_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SCRAPE_TIMEOUT_HEADER, v.parse().unwrap());
        h
    }

    #[test]
    fn the_deadline_follows_the_scrape_timeout_less_the_offset() {
        let offset = Duration::from_millis(500);
        let ten = Duration::from_secs(10);
        assert_eq!(deadline(ten, &HeaderMap::new(), offset), Ok(ten));
        assert_eq!(deadline(ten, &with_header("3"), offset), Ok(Duration::from_millis(2500)));
        assert_eq!(deadline(Duration::from_secs(1), &with_header("3"), offset), Ok(Duration::from_secs(1)));
        assert_eq!(
            deadline(ten, &with_header("0.3"), offset),
            Ok(Duration::from_millis(300)),
            "shorter than the offset"
        );
        assert_eq!(deadline(ten, &with_header("0.01"), offset), Ok(MIN_PROBE_TIMEOUT));
        assert_eq!(deadline(Duration::from_secs(25), &with_header("1e9"), offset), Ok(MAX_PROBE_TIMEOUT - offset));
        for bad in ["x", "-1", "0", "NaN", "inf"] {
            assert!(deadline(ten, &with_header(bad), offset).is_err(), "{bad}");
        }
    }
}
