//! A lean HTTP/1.1 transport for profile sessions on plain-http endpoints, on hyper's client
//! connection API: each client owns its connections, so a request needs no pool checkout, no
//! URL-to-URI conversion and no proxy matching, and a held stream's connection keeps a small read
//! buffer. https endpoints, URLs with credentials and environments with a proxy variable set stay
//! on the shared reqwest client.

use super::McpError;
use super::protocol::snippet;
use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper_util::rt::TokioIo;
use std::sync::Mutex;

/// Connections a client keeps for its POSTs; enough for the few requests one simulated session
/// has in flight. A request finding none free opens one more and drops it afterwards.
pub const KEPT_CONNECTIONS: usize = 4;

/// Read buffer of a held stream's fresh connection (hyper's default starts at 8 KB and may grow
/// to 400 KB). The response head must fit in it; a larger head is retried on a default connection.
pub const STREAM_READ_BUFFER: usize = 2048;

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
    uri: Uri,
    /// Headers of every request: `Host`, `User-Agent` and the configured ones.
    base: HeaderMap,
    kept: Mutex<Vec<SendRequest<Full<Bytes>>>>,
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
        let uri: Uri = url[url::Position::BeforePath..url::Position::AfterQuery].parse().ok()?;
        let mut base = HeaderMap::new();
        base.insert(HOST, HeaderValue::from_str(authority).ok()?);
        base.insert(USER_AGENT, HeaderValue::from_static(concat!("mcp-canary/", env!("CARGO_PKG_VERSION"))));
        for name in [HOST, USER_AGENT] {
            if headers.contains_key(&name) {
                base.remove(name);
            }
        }
        for (name, value) in headers {
            base.append(name.clone(), value.clone());
        }
        Some(Self { addr, uri, base, kept: Mutex::new(Vec::new()) })
    }

    /// The headers every request starts from.
    pub fn headers(&self) -> HeaderMap {
        self.base.clone()
    }

    /// Send one request. A `held` request (a long-lived stream) takes over an idle connection of
    /// the client or gets a new one with a small read buffer; either is never reused afterwards
    /// and closes when the body is dropped.
    pub async fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
        held: bool,
    ) -> Result<Response<Incoming>, McpError> {
        let request = |headers: HeaderMap, body: Bytes| {
            let mut req = Request::new(Full::new(body));
            *req.method_mut() = method.clone();
            *req.uri_mut() = self.uri.clone();
            *req.headers_mut() = headers;
            req
        };
        if held {
            // The stream takes over a connection the client already has (a notify session's
            // handshake connection): one socket and one set of buffers per session instead of two
            // during the ramp. The client's other idle connections are let go: a session holding a
            // stream seldom posts, and a later POST opens a new one.
            let reused = self.take_ready();
            if let Ok(mut kept) = self.kept.lock() {
                kept.clear();
            }
            if let Some(mut sender) = reused {
                match sender.try_send_request(request(headers.clone(), body.clone())).await {
                    Ok(resp) => return Ok(resp),
                    Err(e) if e.message().is_none() => return Err(reset(e.into_error())),
                    Err(_) => {} // closed before the request went out: a fresh connection below
                }
            }
            let mut sender = self.connect(Some(STREAM_READ_BUFFER)).await?;
            return match sender.send_request(request(headers.clone(), body.clone())).await {
                Err(e) if e.is_parse_too_large() => {
                    let mut sender = self.connect(None).await?;
                    sender.send_request(request(headers, body)).await.map_err(reset)
                }
                other => other.map_err(reset),
            };
        }
        let reused = self.take_ready();
        let fresh = reused.is_none();
        let mut sender = match reused {
            Some(s) => s,
            None => self.connect(None).await?,
        };
        let resp = match sender.try_send_request(request(headers, body)).await {
            Ok(resp) => resp,
            // A kept connection the server closed before the request went out: once more, fresh.
            Err(mut e) if !fresh => match e.take_message() {
                Some(req) => {
                    sender = self.connect(None).await?;
                    sender.send_request(req).await.map_err(reset)?
                }
                None => return Err(reset(e.into_error())),
            },
            Err(e) => return Err(reset(e.into_error())),
        };
        self.keep(sender);
        Ok(resp)
    }

    /// A kept connection ready for a request now; closed ones are forgotten.
    fn take_ready(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut kept = self.kept.lock().ok()?;
        kept.retain(|s| !s.is_closed());
        let i = kept.iter().position(SendRequest::is_ready)?;
        Some(kept.swap_remove(i))
    }

    /// Keep a connection for later requests (it serves them once its current body is read).
    fn keep(&self, sender: SendRequest<Full<Bytes>>) {
        if let Ok(mut kept) = self.kept.lock()
            && kept.len() < KEPT_CONNECTIONS
        {
            kept.push(sender);
        }
    }

    /// A new connection; its task ends when the connection closes.
    async fn connect(&self, read_buffer: Option<usize>) -> Result<SendRequest<Full<Bytes>>, McpError> {
        let tcp = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| McpError::Connect(snippet(&format!("connect {}: {e}", self.addr), 200)))?;
        // As reqwest's defaults: no Nagle delay, and TCP keepalive so a held stream to a peer that
        // vanished without a FIN ends instead of waiting forever.
        let _ = tcp.set_nodelay(true);
        let keepalive =
            socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE).with_interval(TCP_KEEPALIVE).with_retries(3);
        let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
        let mut builder = Builder::new();
        if read_buffer.is_some() {
            builder.read_buf_exact_size(read_buffer);
        }
        let (sender, conn) = builder.handshake(TokioIo::new(tcp)).await.map_err(reset)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "Lean connection ended");
            }
        });
        Ok(sender)
    }
}

/// A failure after the connection was made: the exchange broke off.
pub fn reset(e: hyper::Error) -> McpError {
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    McpError::Reset(snippet(&chain.join(": "), 200))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only() {
        let h = HeaderMap::new();
        let lean = Lean::new(&"http://127.0.0.1:8080/mcp?x=1".parse().unwrap(), &h).unwrap();
        assert_eq!(lean.addr, "127.0.0.1:8080");
        assert_eq!(lean.uri, "/mcp?x=1");
        assert_eq!(lean.base[HOST], "127.0.0.1:8080");
        let v6 = Lean::new(&"http://[::1]/mcp".parse().unwrap(), &h).unwrap();
        assert_eq!((v6.addr.as_str(), &v6.base[HOST]), ("[::1]:80", &HeaderValue::from_static("[::1]")));
        assert!(Lean::new(&"https://example.com/mcp".parse().unwrap(), &h).is_none());
        assert!(Lean::new(&"http://u:p@example.com/mcp".parse().unwrap(), &h).is_none());
    }

    #[test]
    fn configured_headers_override_the_defaults() {
        let mut h = HeaderMap::new();
        h.insert(USER_AGENT, HeaderValue::from_static("mine"));
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        let lean = Lean::new(&"http://localhost:9/mcp".parse().unwrap(), &h).unwrap();
        assert_eq!(lean.headers()[USER_AGENT], "mine");
        assert_eq!(lean.headers()["authorization"], "Bearer x");
    }
}
