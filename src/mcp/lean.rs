//! A lean HTTP/1.1 transport for profile sessions and canary probes on plain-http endpoints
//! (a probe keeps one per target across its cycles): each client owns its
//! connections and runs its exchanges on its own task (`h1`), so a request needs no pool
//! checkout, no URL-to-URI conversion, no proxy matching and no hand-off to a connection task, and
//! its fixed header fields are encoded once. https endpoints, URLs with credentials and
//! environments with a proxy variable set stay on the shared reqwest client.

use super::McpError;
use super::h1::{self, Conn, Failure, Home, Request, Response};
use super::protocol::snippet;
use http::header::{HOST, USER_AGENT};
use http::{HeaderMap, Method};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Connections a client keeps for its POSTs; enough for the few requests one simulated session
/// has in flight. A request finding none free opens one more and drops it afterwards.
pub const KEPT_CONNECTIONS: usize = 4;

/// `User-Agent` unless one is configured.
const USER_AGENT_VALUE: &str = concat!("mcp-canary/", env!("CARGO_PKG_VERSION"));

/// Header fields the transport sets on each request; a configured one of these is not sent.
const PER_REQUEST: [&str; 9] = [
    "accept",
    "content-type",
    "content-length",
    "transfer-encoding",
    super::protocol::HEADER_LAST_EVENT_ID,
    super::protocol::HEADER_SESSION_ID,
    super::protocol::HEADER_PROTOCOL_VERSION,
    super::protocol::HEADER_METHOD,
    super::protocol::HEADER_NAME,
];

/// Longest a kept connection waits idle for its next request (reqwest's pool default): a
/// prober's connection waits a whole interval between cycles, and a middlebox may drop a quiet
/// one without a word, which would surface as a probe timing out.
pub const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(90);

/// TCP keepalive idle time and probe interval (reqwest's default).
const TCP_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Proxy variables reqwest honours; with any of them set, requests go through reqwest.
const PROXY_VARS: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

/// Whether clients of `url` with their own connections use this transport: plain http without
/// credentials in the URL, and no proxy variable in the environment.
pub fn applies(url: &url::Url) -> bool {
    url.scheme() == "http"
        && url.username().is_empty()
        && url.password().is_none()
        && !PROXY_VARS.iter().any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// One client's plain-http endpoint and the connections it keeps.
pub struct Lean {
    /// `host:port` to connect to.
    addr: String,
    /// Origin-form request target (path and query).
    target: String,
    /// Header fields of every request, encoded: `Host`, `User-Agent` and the configured ones.
    base: Vec<u8>,
    /// Idle connections, back from responses read to their end.
    kept: Arc<Mutex<Vec<Conn>>>,
    /// `Some` when a redirect hands the endpoint to the shared client (whose policy follows a
    /// few same-origin hops) instead of failing; set once the endpoint answered one.
    redirected: Option<AtomicBool>,
}

impl std::fmt::Debug for Lean {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lean").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Lean {
    /// `None` when the endpoint needs what only reqwest does (TLS, credentials in the URL, a proxy).
    pub fn new(url: &url::Url, headers: &HeaderMap) -> Option<Self> {
        if !applies(url) {
            return None;
        }
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let port = url.port_or_known_default()?;
        let addr = match url.host()? {
            url::Host::Ipv6(a) => format!("[{a}]:{port}"),
            url::Host::Ipv4(a) => format!("{a}:{port}"),
            url::Host::Domain(d) => format!("{d}:{port}"),
        };
        let target = url[url::Position::BeforePath..url::Position::AfterQuery].to_string();
        let mut base = Vec::new();
        if !headers.contains_key(HOST) {
            h1::encode_field(&mut base, HOST.as_str(), authority.as_bytes());
        }
        if !headers.contains_key(USER_AGENT) {
            h1::encode_field(&mut base, USER_AGENT.as_str(), USER_AGENT_VALUE.as_bytes());
        }
        for (name, value) in headers {
            // The transport sets these per request (over the configured value, as with reqwest).
            if !PER_REQUEST.contains(&name.as_str()) {
                h1::encode_field(&mut base, name.as_str(), value.as_bytes());
            }
        }
        Some(Self { addr, target, base, kept: Arc::default(), redirected: None })
    }

    /// As [`Lean::new`], for a prober's connections: a 3xx is not an error of this transport
    /// but sends that request, and every later one to the endpoint, through the shared client,
    /// so the probe sees what any HTTP client would (a followed same-origin redirect, or a
    /// refused one to another origin).
    pub fn following_redirects(url: &url::Url, headers: &HeaderMap) -> Option<Self> {
        Self::new(url, headers).map(|lean| Self { redirected: Some(AtomicBool::new(false)), ..lean })
    }

    /// Whether requests to the endpoint go through the shared client since it redirected.
    pub fn handed_over(&self) -> bool {
        self.redirected.as_ref().is_some_and(|r| r.load(Ordering::Relaxed))
    }

    /// Whether a response of `status` hands the endpoint over to the shared client (and so this
    /// request is to be sent again there); remembered for later requests.
    pub fn hand_over(&self, status: http::StatusCode) -> bool {
        let Some(redirected) = &self.redirected else { return false };
        if status.is_redirection() {
            redirected.store(true, Ordering::Relaxed);
        }
        status.is_redirection()
    }

    /// A request to this endpoint with its fixed header fields; the caller adds the rest.
    pub fn request(&self, method: &Method, body_hint: usize) -> Request {
        Request::new(method, &self.target, &self.base, body_hint)
    }

    /// Send one request over an idle connection of the client, or a new one; the connection is
    /// kept for later requests once the response has been read to its end.
    pub async fn send(&self, method: &Method, request: Request, body: &[u8]) -> Result<Response, McpError> {
        let home = Home { kept: Arc::downgrade(&self.kept), cap: KEPT_CONNECTIONS };
        let reused = self.take_idle();
        self.exchange_on(reused, method, request.finish(method, body), Some(home)).await
    }

    /// Send a request whose response is held open (a GET stream). The connection is not kept
    /// afterwards, and the client's idle connections are let go: a session holding a stream
    /// seldom posts, and a later POST opens a new one.
    pub async fn hold(&self, method: &Method, request: Request, body: &[u8]) -> Result<Response, McpError> {
        let reused = self.take_idle();
        if let Ok(mut kept) = self.kept.lock() {
            kept.clear();
        }
        self.exchange_on(reused, method, request.finish(method, body), None).await
    }

    /// One exchange on `reused` or a new connection. A kept connection the server closed while
    /// it was idle, found out only by the request getting no answer at all, is tried once more
    /// on a new connection (as an HTTP client's pool does).
    async fn exchange_on(
        &self,
        reused: Option<Conn>,
        method: &Method,
        request: Vec<u8>,
        home: Option<Home>,
    ) -> Result<Response, McpError> {
        let fresh = reused.is_none();
        let conn = match reused {
            Some(c) => c,
            None => self.connect().await?,
        };
        match conn.exchange(method, &request, home.clone()).await {
            Ok(resp) => Ok(resp),
            Err(Failure { unanswered: true, .. }) if !fresh => {
                let conn = self.connect().await?;
                conn.exchange(method, &request, home).await.map_err(|f| f.error)
            }
            Err(f) => Err(f.error),
        }
    }

    /// An idle kept connection still open and idle for less than [`MAX_IDLE`]; the others are
    /// closed.
    fn take_idle(&self) -> Option<Conn> {
        let mut kept = self.kept.lock().ok()?;
        while let Some(conn) = kept.pop() {
            if conn.idle_for() < MAX_IDLE && conn.is_idle() {
                return Some(conn);
            }
        }
        None
    }

    /// A connected socket with reqwest's options: no Nagle delay, and TCP keepalive so a held
    /// stream to a peer that vanished without a FIN ends instead of waiting forever.
    async fn connect(&self) -> Result<Conn, McpError> {
        let tcp = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| McpError::Connect(snippet(&format!("connect {}: {e}", self.addr), 200)))?;
        let _ = tcp.set_nodelay(true);
        let keepalive =
            socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE).with_interval(TCP_KEEPALIVE).with_retries(3);
        let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
        Ok(Conn::new(tcp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head(lean: &Lean) -> String {
        String::from_utf8(lean.request(&Method::GET, 0).finish(&Method::GET, b"")).unwrap()
    }

    #[test]
    fn plain_http_only() {
        let h = HeaderMap::new();
        let lean = Lean::new(&"http://127.0.0.1:8080/mcp?x=1".parse().unwrap(), &h).unwrap();
        assert_eq!(lean.addr, "127.0.0.1:8080");
        assert!(head(&lean).starts_with("GET /mcp?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nuser-agent: mcp-canary/"));
        let v6 = Lean::new(&"http://[::1]/mcp".parse().unwrap(), &h).unwrap();
        assert_eq!(v6.addr, "[::1]:80");
        assert!(head(&v6).contains("host: [::1]\r\n"), "{}", head(&v6));
        assert!(Lean::new(&"https://example.com/mcp".parse().unwrap(), &h).is_none());
        assert!(Lean::new(&"http://u:p@example.com/mcp".parse().unwrap(), &h).is_none());
    }

    #[test]
    fn configured_headers_override_the_defaults_but_not_the_per_request_ones() {
        let mut h = HeaderMap::new();
        h.insert(USER_AGENT, HeaderValue::from_static("mine"));
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        h.insert("accept", HeaderValue::from_static("text/html"));
        let lean = Lean::new(&"http://localhost:9/mcp".parse().unwrap(), &h).unwrap();
        let mut request = lean.request(&Method::POST, 2);
        request.field("accept", b"application/json");
        request.field("mcp-session-id", b"bad\r\ninjected: 1");
        let sent = String::from_utf8(request.finish(&Method::POST, b"{}")).unwrap();
        assert_eq!(
            sent,
            "POST /mcp HTTP/1.1\r\nhost: localhost:9\r\nuser-agent: mine\r\nauthorization: Bearer x\r\n\
             accept: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    /// A listener on a free loopback port and the MCP URL on it.
    async fn listen() -> (tokio::net::TcpListener, url::Url) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap()).parse().unwrap();
        (listener, url)
    }

    /// POST `{}` and read the whole answer; its status.
    async fn post_drained(lean: &Lean) -> http::StatusCode {
        let mut resp = lean.send(&Method::POST, lean.request(&Method::POST, 2), b"{}").await.unwrap();
        while let Some(chunk) = futures::StreamExt::next(&mut resp.body).await {
            chunk.unwrap();
        }
        resp.status
    }

    /// Read one test request (its body is `{}`) off `s`.
    async fn read_request(s: &mut tokio::net::TcpStream) {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        let mut b = [0u8; 512];
        while !got.ends_with(b"\r\n\r\n{}") {
            let n = s.read(&mut b).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&b[..n]);
        }
    }

    /// A kept connection that the server closes on receiving the next request, without a byte of
    /// answer: the request is sent once more on a new connection.
    #[tokio::test]
    async fn a_request_a_kept_connection_dropped_unanswered_goes_out_again() {
        use tokio::io::AsyncWriteExt;
        let (listener, url) = listen().await;
        let server = tokio::spawn(async move {
            let mut requests = 0;
            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
            let (mut first, _) = listener.accept().await.unwrap();
            read_request(&mut first).await;
            first.write_all(ok).await.unwrap();
            requests += 1;
            read_request(&mut first).await;
            drop(first); // the second request dies with the connection
            requests += 1;
            let (mut second, _) = listener.accept().await.unwrap();
            read_request(&mut second).await;
            second.write_all(ok).await.unwrap();
            requests + 1
        });
        let lean = Lean::new(&url, &HeaderMap::new()).unwrap();
        for _ in 0..2 {
            assert_eq!(post_drained(&lean).await, 200);
        }
        assert_eq!(server.await.unwrap(), 3, "the second request went out twice");
    }

    /// A kept connection idle for [`MAX_IDLE`] or longer is closed, not reused: the next request
    /// opens a new one (the server sees a second connection).
    #[tokio::test]
    async fn a_connection_idle_past_the_bound_is_not_reused() {
        use tokio::io::AsyncWriteExt;
        let (listener, url) = listen().await;
        let server = tokio::spawn(async move {
            let mut accepted = 0;
            let mut conns = Vec::new();
            while accepted < 2 {
                let (mut s, _) = listener.accept().await.unwrap();
                accepted += 1;
                read_request(&mut s).await;
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await.unwrap();
                conns.push(s); // kept open: only the client's bound closes the first
            }
            accepted
        });
        let lean = Lean::new(&url, &HeaderMap::new()).unwrap();
        let client = async {
            for round in 0..2 {
                post_drained(&lean).await;
                if round == 0 {
                    let mut kept = lean.kept.lock().unwrap();
                    assert_eq!(kept.len(), 1, "the connection went home");
                    let conn = kept.pop().unwrap();
                    kept.push(conn.idled_since(MAX_IDLE));
                }
            }
        };
        // A reused connection would wait for an answer the server never sends (it waits for a
        // second connection).
        let within = std::time::Duration::from_secs(5);
        tokio::time::timeout(within, client).await.expect("the second request went out on a new connection");
        assert_eq!(tokio::time::timeout(within, server).await.unwrap().unwrap(), 2);
    }
}
