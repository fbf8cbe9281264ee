//! HTTP POST / GET / DELETE against the MCP endpoint, and classification of what comes back.

use super::McpError;
use super::auth::TokenSource;
use super::lean::Lean;
use super::protocol::{
    ACCEPT_BOTH, HEADER_LAST_EVENT_ID, HEADER_METHOD, HEADER_NAME, HEADER_PROTOCOL_VERSION, HEADER_SESSION_ID, snippet,
};
use super::secret::Secret;
use super::sse::{EventStream, event_stream};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Idle connections kept per host. reqwest's default keeps every idle connection for 90 s: after
/// the ramp of a notify run (every session's handshake POSTs at once) that left about one idle
/// socket per session next to its held GET stream (4 KB of client memory per session at 2,000
/// sessions). Enough for hundreds of requests in flight without reconnecting.
pub const MAX_IDLE_CONNECTIONS: usize = 256;

/// How long an idle connection may be reused. uvicorn (the Python SDK) and Node's HTTP server
/// close idle keep-alive connections after 5 s; a request sent on one at that instant races the
/// close and dies with a reset (seen after check's 5 s notification wait: about one ping in seven
/// against the Python SDK failed as `reset`). reqwest's default keeps them 90 s. 2 s, not just
/// under 5: the pool decides when a request is prepared, and on a loaded machine the request
/// can reach the socket a second later (a chaos run's warm-up against mcp-use on a busy CI
/// machine lost one request in seven to a reset with 4 s).
pub const IDLE_CONNECTION_REUSE: Duration = Duration::from_secs(2);

/// Redirects one request follows at most, each to the request's own origin. MCP endpoints do
/// not redirect in normal operation; a few hops allow a moved path (`/mcp` -> `/mcp/`).
pub const MAX_REDIRECTS: usize = 3;

/// The HTTP client the daemon, `check` and the one-shot runs share.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("mcp-canary/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
        .pool_idle_timeout(IDLE_CONNECTION_REUSE)
        .redirect(redirect_policy())
        .build()
}

/// The redirect policy of every client that may carry configured headers, a bearer token or
/// cookies: a redirect to another origin (scheme, host or port) is never followed, so none of
/// them ever reaches it; a same-origin one is followed up to `MAX_REDIRECTS` times, without
/// loops. A refused redirect fails the request (`reqwest::Error::is_redirect`, classified
/// `redirect`).
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| match redirect_refusal(attempt.url(), attempt.previous()) {
        Some(refusal) => attempt.error(refusal),
        None => attempt.follow(),
    })
}

/// Why a redirect is not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefusal {
    #[error("redirect to another origin")]
    OtherOrigin,
    #[error("redirect loop")]
    Loop,
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooMany,
}

/// Whether a redirect to `next` is refused, `previous` being the URLs requested so far in its
/// chain, the request's own first (no chain: refused, the origin is unknown).
pub fn redirect_refusal(next: &url::Url, previous: &[url::Url]) -> Option<RedirectRefusal> {
    let Some(first) = previous.first() else { return Some(RedirectRefusal::OtherOrigin) };
    // `origin()` is scheme, host and port (the scheme's default when absent); never equal for
    // schemes without one.
    if next.origin() != first.origin() {
        Some(RedirectRefusal::OtherOrigin)
    } else if previous.contains(next) {
        Some(RedirectRefusal::Loop)
    } else if previous.len() > MAX_REDIRECTS {
        Some(RedirectRefusal::TooMany)
    } else {
        None
    }
}

/// Longest `Mcp-Session-Id` accepted, in bytes. The specification allows visible ASCII only
/// (0x21 to 0x7E) and sets no length; the ids servers issue (UUIDs, hex, JWTs) are far shorter.
/// A longer one would be stored and sent back on every request of the session.
pub const MAX_SESSION_ID_BYTES: usize = 1024;

/// Bytes of an error body kept for its snippet.
const ERROR_BODY_BYTES: usize = 4096;

/// Per-request MCP headers.
#[derive(Clone, Debug, Default)]
pub struct McpHeaders {
    pub session_id: Option<String>,
    pub protocol_version: Option<String>,
    pub method: Option<String>,
    pub name: Option<String>,
}

impl McpHeaders {
    /// The header fields these stand for, by name; both transports send the present ones.
    fn fields(&self) -> [(&'static str, Option<&str>); 4] {
        [
            (HEADER_SESSION_ID, self.session_id.as_deref()),
            (HEADER_PROTOCOL_VERSION, self.protocol_version.as_deref()),
            (HEADER_METHOD, self.method.as_deref()),
            (HEADER_NAME, self.name.as_deref()),
        ]
    }
}

/// The HTTP version a response came over (`network.protocol.version`): the shared client may
/// negotiate HTTP/2 over TLS (ALPN), so the version is read off each response, not assumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    Http10,
    Http11,
    Http2,
    Http3,
}

impl HttpVersion {
    /// The attribute value the conventions give: `1.0`, `1.1`, `2`, `3`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
            HttpVersion::Http2 => "2",
            HttpVersion::Http3 => "3",
        }
    }

    /// `None` for HTTP/0.9 (no MCP server answers with it) and versions `http` adds later.
    pub fn of(version: http::Version) -> Option<Self> {
        match version {
            http::Version::HTTP_10 => Some(HttpVersion::Http10),
            http::Version::HTTP_11 => Some(HttpVersion::Http11),
            http::Version::HTTP_2 => Some(HttpVersion::Http2),
            http::Version::HTTP_3 => Some(HttpVersion::Http3),
            _ => None,
        }
    }

    /// As held in an atomic: 0 is "no response".
    fn encode(version: Option<Self>) -> u8 {
        version.map_or(0, |v| v as u8 + 1)
    }

    fn decode(code: u8) -> Option<Self> {
        [HttpVersion::Http10, HttpVersion::Http11, HttpVersion::Http2, HttpVersion::Http3]
            .get(usize::from(code).checked_sub(1)?)
            .copied()
    }
}

/// A successful POST.
pub struct Reply {
    pub status: u16,
    pub session_id: Option<String>,
    pub body: Body,
}

/// What a successful POST carried.
pub enum Body {
    /// 202, 204, or an empty body.
    Empty,
    /// A JSON body, not yet parsed.
    Json(String),
    Sse(EventStream),
}

/// The HTTP side of the client: one endpoint, configured headers, a body size cap.
#[derive(Clone, Debug)]
pub struct Transport {
    http: reqwest::Client,
    url: url::Url,
    headers: HeaderMap,
    max_bytes: usize,
    timeout: Duration,
    /// `Accept` of POSTs (JSON and SSE, or JSON only).
    accept: &'static str,
    /// Response headers the caller asked to see, shared by clones.
    capture: Arc<Mutex<Capture>>,
    /// This client's own plain-http connections, instead of `http` (see `lean`).
    lean: Option<Arc<Lean>>,
    /// OAuth access tokens, sent on every request (see `auth`).
    auth: Option<Arc<TokenSource>>,
    /// [`HttpVersion`] of the latest response to a request that is not a held stream (encoded;
    /// 0: that request got none), shared by clones.
    version: Arc<AtomicU8>,
}

/// A response from either path.
enum Resp {
    Shared(reqwest::Response),
    Lean(super::h1::Response),
}

impl Resp {
    fn status(&self) -> reqwest::StatusCode {
        match self {
            Resp::Shared(r) => r.status(),
            Resp::Lean(r) => r.status,
        }
    }

    fn headers(&self) -> &HeaderMap {
        match self {
            Resp::Shared(r) => r.headers(),
            Resp::Lean(r) => &r.headers,
        }
    }

    fn version(&self) -> Option<HttpVersion> {
        match self {
            Resp::Shared(r) => HttpVersion::of(r.version()),
            // The lean transport speaks HTTP/1.1 only.
            Resp::Lean(_) => Some(HttpVersion::Http11),
        }
    }

    /// The next body chunk, `None` at the end.
    async fn chunk(&mut self, timeout: Duration) -> Result<Option<Bytes>, McpError> {
        match self {
            Resp::Shared(r) => r.chunk().await.map_err(|e| classify_reqwest(e, timeout)),
            Resp::Lean(r) => r.body.next().await.transpose(),
        }
    }

    fn into_stream(self, timeout: Duration) -> BoxStream<'static, Result<Bytes, McpError>> {
        match self {
            Resp::Shared(r) => r.bytes_stream().map(move |r| r.map_err(|e| classify_reqwest(e, timeout))).boxed(),
            Resp::Lean(r) => r.body.boxed(),
        }
    }
}

/// Selected response headers of the latest response to arrive.
#[derive(Debug, Default)]
struct Capture {
    names: Vec<HeaderName>,
    last: HeaderMap,
}

impl Transport {
    pub fn new(http: reqwest::Client, url: url::Url, headers: HeaderMap, max_bytes: usize, timeout: Duration) -> Self {
        Self {
            http,
            url,
            headers,
            max_bytes,
            timeout,
            accept: ACCEPT_BOTH,
            capture: Default::default(),
            lean: None,
            auth: None,
            version: Default::default(),
        }
    }

    /// Send an OAuth access token from `auth` on every request.
    pub fn with_auth(mut self, auth: Option<Arc<TokenSource>>) -> Self {
        self.auth = auth;
        self
    }

    /// Send plain-http requests over `lean`'s connections (`None`: the shared client). Built for
    /// this endpoint and headers by the caller, who may keep it across transports.
    pub fn with_connections(mut self, lean: Option<Arc<Lean>>) -> Self {
        self.lean = lean;
        self
    }

    /// The HTTP version of the latest response; `None` before one or when the latest request
    /// got none (a refused connection, a timeout).
    pub fn last_version(&self) -> Option<HttpVersion> {
        HttpVersion::decode(self.version.load(Ordering::Relaxed))
    }

    /// Whether requests go over this transport's own connections.
    pub fn owns_connections(&self) -> bool {
        self.lean.is_some()
    }

    /// Keep these headers of every response (success or error) for `captured`.
    pub fn capture_headers(&self, names: Vec<HeaderName>) {
        if let Ok(mut c) = self.capture.lock() {
            c.names = names;
            c.last.clear();
        }
    }

    /// The captured headers of the latest response (empty before one, after a request that got
    /// none, or when none were asked for).
    pub fn captured(&self) -> HeaderMap {
        self.capture.lock().map(|c| c.last.clone()).unwrap_or_default()
    }

    /// A request that got no response: nothing served it, so no captured header applies to it.
    fn no_response(&self, e: McpError) -> McpError {
        if let Ok(mut c) = self.capture.lock() {
            c.last.clear();
        }
        e
    }

    fn note(&self, resp: &Resp) {
        let Ok(mut c) = self.capture.lock() else { return };
        if c.names.is_empty() {
            return;
        }
        let mut last = HeaderMap::new();
        for name in &c.names {
            if let Some(v) = resp.headers().get(name) {
                last.insert(name.clone(), v.clone());
            }
        }
        c.last = last;
    }

    /// Use this `Accept` on POSTs instead of JSON + SSE.
    pub fn with_accept(mut self, accept: &'static str) -> Self {
        self.accept = accept;
        self
    }

    /// The request headers: configured, `Accept`, the MCP ones and `extra`.
    fn headers(
        &self,
        base: HeaderMap,
        mcp: &McpHeaders,
        accept: &'static str,
        extra: Option<(HeaderName, HeaderValue)>,
    ) -> HeaderMap {
        let mut headers = base;
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        for (name, value) in mcp.fields() {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        if let Some((name, value)) = extra {
            headers.insert(name, value);
        }
        headers
    }

    /// One request over whichever path this transport uses; `held` marks a long-lived stream.
    /// With OAuth, a 401 or 403 challenge drops the token it refused and the request is sent
    /// once more when a new token may do (expired, revoked, or a scope step-up).
    async fn send(
        &self,
        method: reqwest::Method,
        mcp: &McpHeaders,
        accept: &'static str,
        extra: Option<(HeaderName, HeaderValue)>,
        body: Option<Vec<u8>>,
        held: bool,
    ) -> Result<Resp, McpError> {
        let Some(auth) = &self.auth else {
            return self.send_once(method, mcp, accept, extra, body, held, None).await;
        };
        let token = auth.bearer().await?;
        let resp =
            self.send_once(method.clone(), mcp, accept, extra.clone(), body.clone(), held, token.as_ref()).await?;
        let status = resp.status().as_u16();
        if !matches!(status, 401 | 403) {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(super::auth::parse_challenge)
            .unwrap_or_default();
        if !auth.challenged(token.as_ref(), status, challenge).await {
            return Ok(resp);
        }
        match auth.bearer().await? {
            Some(token) => self.send_once(method, mcp, accept, extra, body, held, Some(&token)).await,
            None => Err(McpError::Auth("the server's challenge leads to no authorization server".into())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_once(
        &self,
        method: reqwest::Method,
        mcp: &McpHeaders,
        accept: &'static str,
        extra: Option<(HeaderName, HeaderValue)>,
        body: Option<Vec<u8>>,
        held: bool,
        token: Option<&Secret>,
    ) -> Result<Resp, McpError> {
        let bearer = token.and_then(|t| HeaderValue::from_str(&format!("Bearer {}", t.expose())).ok()).map(|mut v| {
            v.set_sensitive(true);
            v
        });
        if let Some(lean) = self.lean.as_ref().filter(|l| !l.handed_over()) {
            let payload = body.as_deref().unwrap_or_default();
            let mut request = lean.request(&method, payload.len());
            request.field(ACCEPT.as_str(), accept.as_bytes());
            for (name, value) in mcp.fields() {
                if let Some(v) = value {
                    request.field(name, v.as_bytes());
                }
            }
            if let Some((name, value)) = &extra {
                request.field(name.as_str(), value.as_bytes());
            }
            if let Some(bearer) = &bearer {
                request.field(AUTHORIZATION.as_str(), bearer.as_bytes());
            }
            let resp = if held {
                lean.hold(&method, request, payload).await
            } else {
                lean.send(&method, request, payload).await
            };
            match resp {
                Ok(r) if lean.hand_over(r.status) => {}
                resp => return self.seen(resp.map(Resp::Lean), held),
            }
        }
        let mut headers = self.headers(self.headers.clone(), mcp, accept, extra);
        if let Some(bearer) = bearer {
            headers.insert(AUTHORIZATION, bearer);
        }
        let mut req = self.http.request(method, self.url.clone()).headers(headers);
        if let Some(body) = body {
            req = req.body(body);
        }
        self.seen(req.send().await.map(Resp::Shared).map_err(|e| classify_reqwest(e, self.timeout)), held)
    }

    /// Note the HTTP version of a response (or that none came). A held stream's (re)connection
    /// in the background is left out: the version describes the caller's latest request.
    fn seen(&self, resp: Result<Resp, McpError>, held: bool) -> Result<Resp, McpError> {
        if !held {
            let version = resp.as_ref().ok().and_then(Resp::version);
            self.version.store(HttpVersion::encode(version), Ordering::Relaxed);
        }
        resp
    }

    /// POST one JSON-RPC message.
    pub async fn post<M: serde::Serialize + ?Sized>(&self, message: &M, mcp: &McpHeaders) -> Result<Reply, McpError> {
        let body = serde_json::to_vec(message).map_err(|e| McpError::InvalidJson(e.to_string()))?;
        let json = (CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let resp = self
            .send(reqwest::Method::POST, mcp, self.accept, Some(json), Some(body), false)
            .await
            .map_err(|e| self.no_response(e))?;
        self.note(&resp);
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(self.status_error(resp, mcp.session_id.is_some()).await);
        }
        let session_id = session_id_of(resp.headers())?;
        if status == 202 || status == 204 {
            return Ok(Reply { status, session_id, body: Body::Empty });
        }
        let ct = header_str(resp.headers(), CONTENT_TYPE.as_str()).unwrap_or_default().to_ascii_lowercase();
        if ct.starts_with("text/event-stream") {
            return Ok(Reply { status, session_id, body: Body::Sse(self.events(resp)) });
        }
        let is_json = ct.starts_with("application/json");
        let bytes = self.read_capped(resp, self.max_bytes).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Reply { status, session_id, body: Body::Empty });
        }
        if !is_json {
            return Err(McpError::ContentType(snippet(&ct, 80)));
        }
        // Kept as text: the exchange reads the message's parts, bounded, and a list its pages
        // item by item (`protocol::parse_raw`, `listing`).
        let text = String::from_utf8(bytes).map_err(|e| {
            let bytes = e.as_bytes();
            McpError::InvalidJson(format!(
                "invalid UTF-8: {}",
                snippet(&String::from_utf8_lossy(&bytes[..bytes.len().min(400)]), 80)
            ))
        })?;
        Ok(Reply { status, session_id, body: Body::Json(text) })
    }

    /// GET the server-to-client stream. `None` when the server offers none (405, 204, or no SSE).
    pub async fn get(&self, mcp: &McpHeaders, last_event_id: Option<&str>) -> Result<Option<EventStream>, McpError> {
        let resume = last_event_id
            .and_then(|id| HeaderValue::from_str(id).ok())
            .map(|id| (HeaderName::from_static(HEADER_LAST_EVENT_ID), id));
        let resp = self
            .send(reqwest::Method::GET, mcp, "text/event-stream", resume, None, true)
            .await
            .map_err(|e| self.no_response(e))?;
        self.note(&resp);
        let status = resp.status().as_u16();
        if status == 405 || status == 204 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(resp, mcp.session_id.is_some()).await);
        }
        let ct = header_str(resp.headers(), CONTENT_TYPE.as_str()).unwrap_or_default().to_ascii_lowercase();
        if !ct.starts_with("text/event-stream") {
            return Ok(None);
        }
        Ok(Some(self.events(resp)))
    }

    /// DELETE the session. 405 (server does not allow it) is success.
    pub async fn delete(&self, mcp: &McpHeaders) -> Result<(), McpError> {
        let resp = self.send(reqwest::Method::DELETE, mcp, ACCEPT_BOTH, None, None, false).await?;
        if resp.status().is_success() || resp.status().as_u16() == 405 {
            return Ok(());
        }
        Err(self.status_error(resp, mcp.session_id.is_some()).await)
    }

    fn events(&self, resp: Resp) -> EventStream {
        event_stream(resp.into_stream(self.timeout), self.max_bytes)
    }

    async fn read_capped(&self, mut resp: Resp, limit: usize) -> Result<Vec<u8>, McpError> {
        // Sized once from Content-Length (when within the cap) rather than doubled as it grows.
        let length = header_str(resp.headers(), reqwest::header::CONTENT_LENGTH.as_str())
            .and_then(|v| v.trim().parse::<usize>().ok());
        // A body announced over the cap is refused unread.
        if length.is_some_and(|n| n > limit) {
            return Err(McpError::BodyTooLarge { limit });
        }
        let mut buf = Vec::with_capacity(length.unwrap_or(0));
        while let Some(chunk) = resp.chunk(self.timeout).await? {
            if buf.len() + chunk.len() > limit {
                return Err(McpError::BodyTooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }

    /// Classify a non-2xx answer; the status decides, the body only supplies a snippet.
    async fn status_error(&self, resp: Resp, sent_session: bool) -> McpError {
        let status = resp.status().as_u16();
        let body = self.read_error_body(resp).await;
        classify_status(status, &body, sent_session)
    }

    async fn read_error_body(&self, mut resp: Resp) -> String {
        let mut buf = Vec::new();
        while buf.len() < ERROR_BODY_BYTES {
            match resp.chunk(self.timeout).await {
                Ok(Some(c)) => buf.extend_from_slice(&c[..c.len().min(ERROR_BODY_BYTES - buf.len())]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The `Mcp-Session-Id` of a successful response: `None` when absent (or empty), a
/// [`McpError::Protocol`] when it is not 1 to [`MAX_SESSION_ID_BYTES`] visible ASCII characters
/// (0x21 to 0x7E, as the specification requires) or when the response carries two different ones.
/// The error names the fault, never the id.
pub fn session_id_of(h: &HeaderMap) -> Result<Option<String>, McpError> {
    let mut values = h.get_all(HEADER_SESSION_ID).iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.any(|v| v != first) {
        return Err(McpError::Protocol("two different Mcp-Session-Id headers".into()));
    }
    let bytes = first.as_bytes();
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() > MAX_SESSION_ID_BYTES {
        return Err(McpError::Protocol(format!(
            "Mcp-Session-Id of {} bytes, over {MAX_SESSION_ID_BYTES}",
            bytes.len()
        )));
    }
    if let Some(at) = bytes.iter().position(|b| !(0x21..=0x7e).contains(b)) {
        return Err(McpError::Protocol(format!(
            "Mcp-Session-Id holds byte 0x{:02x} at {at}; only visible ASCII (0x21-0x7E) is allowed",
            bytes[at]
        )));
    }
    // Visible ASCII only, so this never fails.
    Ok(first.to_str().ok().map(str::to_string))
}

/// Classify an HTTP error status. 404, or 400 on a request that carried a session id, is an expired session.
/// Any 3xx that reaches here was not followed (the lean transport follows none; the shared
/// client returns one without a usable `Location`). The status decides the class; a JSON-RPC
/// error object in the body gives the snippet its message and the error its code (`error.type`
/// over OTLP, as for a JSON-RPC error in a 200).
pub fn classify_status(status: u16, body: &str, sent_session: bool) -> McpError {
    if (300..400).contains(&status) {
        return McpError::Redirect { status: Some(status), reason: format!("HTTP {status}") };
    }
    if sent_session && (status == 404 || status == 400) {
        return McpError::SessionExpired { status };
    }
    let json = serde_json::from_str::<Value>(body).ok();
    let error = json.as_ref().filter(|v| v.get("jsonrpc").and_then(Value::as_str) == Some("2.0"));
    let error = error.and_then(|v| v.get("error"));
    let rpc_code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let text = json
        .as_ref()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| strip_html(body));
    McpError::Http { status, snippet: snippet(&text, 200), rpc_code }
}

/// Collapse an HTML page to its text, roughly, for a readable snippet.
fn strip_html(body: &str) -> String {
    let mut out = String::with_capacity(body.len().min(1024));
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Classify a reqwest failure by kind and by its source chain (never including headers or the URL).
pub fn classify_reqwest(e: reqwest::Error, timeout: Duration) -> McpError {
    let e = e.without_url();
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    let text = chain.join(": ");
    let lower = text.to_ascii_lowercase();
    let short = snippet(&text, 200);
    if e.is_redirect() {
        let refusal = std::iter::successors(Some(&e as &dyn std::error::Error), |s| s.source())
            .find_map(|s| s.downcast_ref::<RedirectRefusal>());
        let reason = refusal.map_or(short, RedirectRefusal::to_string);
        McpError::Redirect { status: None, reason }
    } else if e.is_timeout() {
        McpError::Timeout(timeout)
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        McpError::Tls(short)
    } else if e.is_connect() || lower.contains("dns") || lower.contains("resolve") {
        McpError::Connect(short)
    } else {
        McpError::Reset(short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::ErrorType;

    #[test]
    fn status_first() {
        let html = "<html><body><h1>500 Internal Server Error</h1></body></html>";
        let e = classify_status(500, html, true);
        assert_eq!(e.error_type(), ErrorType::Http5xx);
        assert!(e.to_string().contains("500 Internal Server Error"), "{e}");
        assert_eq!(classify_status(401, "", false).error_type(), ErrorType::Auth);
        assert_eq!(classify_status(403, "", true).error_type(), ErrorType::Auth);
    }

    #[test]
    fn dead_session() {
        assert!(matches!(classify_status(404, "", true), McpError::SessionExpired { status: 404 }));
        assert!(matches!(classify_status(400, "Bad Request", true), McpError::SessionExpired { status: 400 }));
        assert!(matches!(classify_status(400, "", false), McpError::Http { status: 400, .. }));
        assert!(matches!(classify_status(404, "", false), McpError::Http { status: 404, .. }));
    }

    #[test]
    fn redirects_are_followed_only_within_the_origin_and_a_few_times() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        let start = [u("http://127.0.0.1:8080/mcp")];
        assert_eq!(redirect_refusal(&u("http://127.0.0.1:8080/real"), &start), None);
        assert_eq!(redirect_refusal(&u("http://127.0.0.1/mcp"), &[u("http://127.0.0.1:80/old")]), None);
        for other in ["http://127.0.0.1:8081/mcp", "https://127.0.0.1:8080/mcp", "http://localhost:8080/mcp"] {
            assert_eq!(redirect_refusal(&u(other), &start), Some(RedirectRefusal::OtherOrigin), "{other}");
        }
        assert_eq!(redirect_refusal(&u("data:text/plain,x"), &start), Some(RedirectRefusal::OtherOrigin));
        assert_eq!(redirect_refusal(&u("http://127.0.0.1:8080/mcp"), &start), Some(RedirectRefusal::Loop));
        let chain: Vec<_> = (0..=MAX_REDIRECTS).map(|i| u(&format!("http://127.0.0.1:8080/{i}"))).collect();
        assert_eq!(redirect_refusal(&u("http://127.0.0.1:8080/next"), &chain[..MAX_REDIRECTS]), None);
        assert_eq!(redirect_refusal(&u("http://127.0.0.1:8080/next"), &chain), Some(RedirectRefusal::TooMany));
        assert_eq!(redirect_refusal(&u("http://127.0.0.1:8080/mcp"), &[]), Some(RedirectRefusal::OtherOrigin));
    }

    #[test]
    fn session_ids_are_visible_ascii_and_bounded() {
        let of = |v: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert(HEADER_SESSION_ID, HeaderValue::from_bytes(v).unwrap());
            session_id_of(&h)
        };
        assert_eq!(session_id_of(&HeaderMap::new()).unwrap(), None);
        assert_eq!(of(b"").unwrap(), None);
        assert_eq!(of(b"abc-123_~!").unwrap().as_deref(), Some("abc-123_~!"));
        let longest = vec![b'x'; MAX_SESSION_ID_BYTES];
        assert_eq!(of(&longest).unwrap().map(|s| s.len()), Some(MAX_SESSION_ID_BYTES));
        for bad in [&b"caf\xc3\xa9"[..], b"a b", b"tab\there", &[b'x'; MAX_SESSION_ID_BYTES + 1]] {
            let e = of(bad).unwrap_err();
            assert_eq!(e.error_type(), ErrorType::Protocol, "{bad:?}");
            assert!(e.to_string().len() < 120, "{e}");
        }
        let mut two = HeaderMap::new();
        two.append(HEADER_SESSION_ID, HeaderValue::from_static("a"));
        two.append(HEADER_SESSION_ID, HeaderValue::from_static("b"));
        assert_eq!(session_id_of(&two).unwrap_err().error_type(), ErrorType::Protocol);
        let mut same = HeaderMap::new();
        same.append(HEADER_SESSION_ID, HeaderValue::from_static("a"));
        same.append(HEADER_SESSION_ID, HeaderValue::from_static("a"));
        assert_eq!(session_id_of(&same).unwrap().as_deref(), Some("a"));
    }

    #[test]
    fn http_versions_are_the_conventions_values_and_survive_the_atomic() {
        let cases = [
            (http::Version::HTTP_10, "1.0"),
            (http::Version::HTTP_11, "1.1"),
            (http::Version::HTTP_2, "2"),
            (http::Version::HTTP_3, "3"),
        ];
        for (version, value) in cases {
            let v = HttpVersion::of(version).unwrap();
            assert_eq!(v.as_str(), value);
            assert_eq!(HttpVersion::decode(HttpVersion::encode(Some(v))), Some(v));
        }
        assert_eq!(HttpVersion::of(http::Version::HTTP_09), None);
        assert_eq!(HttpVersion::decode(HttpVersion::encode(None)), None);
    }

    #[test]
    fn a_3xx_answer_is_a_redirect() {
        for status in [301, 302, 303, 307, 308] {
            let e = classify_status(status, "moved", true);
            assert_eq!(e.error_type(), ErrorType::Redirect, "{status}");
            assert_eq!(e.http_status(), Some(status));
        }
    }

    #[test]
    fn jsonrpc_error_body_gives_the_snippet() {
        let body = r#"{"jsonrpc":"2.0","id":"server-error","error":{"code":-32000,"message":"Bad Request: No valid session ID"}}"#;
        let e = classify_status(400, body, false);
        assert!(e.to_string().contains("No valid session ID"), "{e}");
        assert_eq!((e.error_type(), e.rpc_code()), (ErrorType::Http4xx, Some(-32000)), "the status keeps the class");
        let e = classify_status(500, r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"x"}}"#, true);
        assert_eq!((e.error_type(), e.rpc_code()), (ErrorType::Http5xx, Some(-32603)));
        // Not a JSON-RPC error object: no code.
        for body in [r#"{"error":{"code":-32602}}"#, r#"{"jsonrpc":"2.0","error":{"code":"x"}}"#, "<html>", ""] {
            assert_eq!(classify_status(422, body, false).rpc_code(), None, "{body}");
        }
        let long = "x".repeat(5000);
        assert!(classify_status(502, &long, false).to_string().len() < 260);
    }
}
