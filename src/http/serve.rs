//! Serving the HTTP surface with bounds no client can lift: a header-read timeout (also the
//! idle keep-alive timeout), a bound on each request's time, a connection cap that leaves most
//! descriptors to probing, and a stop that drains for a fixed time and then closes what is left.
//!
//! `axum::serve` has none of these (its graceful stop waits for every connection, forever for a
//! half-sent request), so this is its accept loop with them: hyper's HTTP/1 connection with
//! [`HEADER_READ_TIMEOUT`], a per-connection watchdog for [`REQUEST_TIMEOUT`], a registry that
//! displaces a connection when a new one would exceed the cap, and a [`DRAIN_TIMEOUT`] on stop.
//! With `[server.tls]` ([`serve_with_tls`]) each connection's handshake runs inside the same
//! bounds: it spends the first head's [`HEADER_READ_TIMEOUT`], and displacement and stop end it.

use super::tls::Tls;
use crate::telemetry::events::{self, HttpClose};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// A connection must deliver a complete request head within this time of starting to wait for
/// one: from its accept, and again after each answer, so it is also the idle keep-alive
/// timeout. Prometheus sends its request at once and reconnects when an idle connection is
/// gone; a half-sent or trickled head is closed at this point.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request, from its complete head to the last byte of its answer (a slow reader of a big
/// `/metrics`, a trickled body), gets this long; then its connection is closed. Longer than
/// [`HEADER_READ_TIMEOUT`], so an idle connection is closed by that timer first.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many connections to the HTTP surface at once; fewer when the open-file limit is
/// small (see [`connection_cap`]). A scraper needs one (Prometheus keeps one per target).
pub const MAX_CONNECTIONS: usize = 64;
/// The HTTP surface holds at most 1/`DESCRIPTOR_SHARE` of `RLIMIT_NOFILE`: the rest stays for
/// probe sessions, heavy profiles, Redis and OTLP.
pub const DESCRIPTOR_SHARE: u64 = 4;
/// On stop: no new connection is accepted, idle ones close, answers in flight get this long to
/// finish; whatever is still open then is closed.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// What a stop may add to `server.shutdown_grace` (the probes' drain slack plus
/// [`DRAIN_TIMEOUT`]), whatever HTTP clients do; the final OTLP push, when OTLP is on, adds at
/// most [`OTLP_FLUSH_TIMEOUT`].
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(4);
/// The final OTLP push on stop: an unreachable or slow collector costs at most this long.
pub const OTLP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Probe loops and profiles that have not finished `shutdown_grace` after a stop began get this
/// much more before they are aborted.
pub const PROBE_DRAIN_SLACK: Duration = Duration::from_secs(2);

/// A connection's read buffer, and so the largest request head (hyper answers 431 beyond it):
/// Prometheus sends a few hundred bytes; hyper's default (about 400 KiB) times
/// [`MAX_CONNECTIONS`] would be 25 MiB of buffers a client could make the daemon hold.
pub const MAX_BUF_SIZE: usize = 64 * 1024;

const _: () = assert!(REQUEST_TIMEOUT.as_secs() > HEADER_READ_TIMEOUT.as_secs());
const _: () = assert!(PROBE_DRAIN_SLACK.as_secs() + DRAIN_TIMEOUT.as_secs() <= SHUTDOWN_BOUND.as_secs());

/// Accept errors (out of descriptors, mostly) are retried after this pause, logged at most once
/// per [`ACCEPT_ERROR_LOG_EVERY`].
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// The connection cap for an open-file limit: [`MAX_CONNECTIONS`], or a [`DESCRIPTOR_SHARE`]
/// of `descriptor_limit` when that is smaller (at least one).
pub fn connection_cap(descriptor_limit: u64) -> usize {
    let share = usize::try_from(descriptor_limit / DESCRIPTOR_SHARE).unwrap_or(usize::MAX);
    share.clamp(1, MAX_CONNECTIONS)
}

/// The bounds a [`serve`] holds its clients to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub drain_timeout: Duration,
}

impl Limits {
    /// The documented constants, with the connection cap for this process's open-file limit.
    pub fn for_descriptors(descriptor_limit: u64) -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_connections: connection_cap(descriptor_limit),
            drain_timeout: DRAIN_TIMEOUT,
        }
    }
}

/// Serve `app` on `listener` until `stop` is cancelled, then drain within `drain_timeout`. At
/// most `max_connections` connections are kept: one more displaces an existing one (see
/// [`Registry::victim`]).
pub async fn serve(listener: TcpListener, app: Router, stop: CancellationToken, limits: Limits) {
    serve_with_tls(listener, app, stop, limits, None).await
}

/// [`serve`], with TLS on every connection when `tls` is given: the handshake and the first
/// request head together get `header_read_timeout` from the accept, so a client that never
/// finishes its handshake is closed like one that never finishes its head.
pub async fn serve_with_tls(
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
    limits: Limits,
    tls: Option<Arc<Tls>>,
) {
    let registry = Arc::new(Mutex::new(Registry::default()));
    let mut connections = JoinSet::new();
    let mut last_error_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if last_error_log.is_none_or(|at| at.elapsed() >= ACCEPT_ERROR_LOG_EVERY) {
                    tracing::warn!(error = %e, "Cannot accept a connection on the HTTP surface; retrying");
                    last_error_log = Some(Instant::now());
                }
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (id, evicted) = lock(&registry).admit(peer, Instant::now(), limits.max_connections);
        let conn = Conn { id, registry: Arc::clone(&registry), evicted };
        connections.spawn(conn.serve(tcp, app.clone(), stop.clone(), limits, tls.clone()));
    }
    drop(listener);
    let open = connections.len();
    let drained =
        tokio::time::timeout(limits.drain_timeout, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            of = open,
            "HTTP connections still busy after the drain timeout; closing them"
        );
        connections.shutdown().await;
    }
}

/// Errors of one incoming connection, not of the listener: the next accept may succeed at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

fn lock(registry: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The open connections, for the cap.
#[derive(Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Entry>,
}

struct Entry {
    peer: IpAddr,
    accepted: Instant,
    /// When its latest request began; `None` before its first.
    last_request: Option<Instant>,
    evict: CancellationToken,
}

impl Registry {
    /// Register a new connection from `peer`; when that makes more than `cap`, the victim is
    /// told to close (and forgotten at once).
    fn admit(&mut self, peer: SocketAddr, now: Instant, cap: usize) -> (u64, CancellationToken) {
        while self.open.len() >= cap {
            let Some(victim) = self.victim() else { break };
            if let Some(entry) = self.open.remove(&victim) {
                tracing::debug!(peer = %entry.peer, "HTTP connection cap reached; closing an older connection");
                entry.evict.cancel();
            }
        }
        self.next_id += 1;
        let evict = CancellationToken::new();
        let entry = Entry { peer: peer.ip(), accepted: now, last_request: None, evict: evict.clone() };
        self.open.insert(self.next_id, entry);
        (self.next_id, evict)
    }

    /// The connection to close for a new one: from the peer address holding the most
    /// connections (a flood from one host displaces its own); among those, one that never sent a
    /// complete request head before one that did (a scraper's kept connection outlives idle
    /// ones); then the one whose latest activity is oldest.
    fn victim(&self) -> Option<u64> {
        let mut per_peer: HashMap<IpAddr, usize> = HashMap::new();
        for entry in self.open.values() {
            *per_peer.entry(entry.peer).or_default() += 1;
        }
        self.open
            .iter()
            .max_by_key(|(_, e)| {
                (per_peer[&e.peer], e.last_request.is_none(), Reverse(e.last_request.unwrap_or(e.accepted)))
            })
            .map(|(id, _)| *id)
    }

    fn request_started(&mut self, id: u64, at: Instant) {
        if let Some(entry) = self.open.get_mut(&id) {
            entry.last_request = Some(at);
        }
    }
}

/// One accepted connection: its registry entry and the token that closes it when displaced.
struct Conn {
    id: u64,
    registry: Arc<Mutex<Registry>>,
    evicted: CancellationToken,
}

impl Conn {
    async fn serve(self, tcp: TcpStream, app: Router, stop: CancellationToken, limits: Limits, tls: Option<Arc<Tls>>) {
        match tls {
            None => self.serve_http(TokioIo::new(tcp), app, &stop, limits, None).await,
            Some(tls) => {
                let head_by = Instant::now() + limits.header_read_timeout;
                let acceptor = tls.acceptor();
                let handshake = tokio::select! {
                    shaken = tokio::time::timeout_at(head_by, acceptor.accept(tcp)) => Some(shaken),
                    _ = stop.cancelled() => None,
                    _ = self.evicted.cancelled() => {
                        events::http_connection_closed(HttpClose::Displaced);
                        None
                    }
                };
                match handshake {
                    Some(Ok(Ok(stream))) => {
                        self.serve_http(TokioIo::new(stream), app, &stop, limits, Some(head_by)).await
                    }
                    Some(Ok(Err(e))) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        events::http_connection_closed(HttpClose::TlsHandshake);
                    }
                    Some(Err(_)) => {
                        tracing::debug!(timeout = ?limits.header_read_timeout, "TLS handshake not finished in time; closing the connection");
                        events::http_connection_closed(HttpClose::HeaderTimeout);
                    }
                    None => {}
                }
            }
        }
        lock(&self.registry).open.remove(&self.id);
    }

    /// Serve HTTP/1 on `io` until it ends, is displaced, overruns a request or the stop's drain;
    /// `head_by`: when its first request head must have arrived (after a TLS handshake).
    async fn serve_http<I>(
        &self,
        io: I,
        app: Router,
        stop: &CancellationToken,
        limits: Limits,
        head_by: Option<Instant>,
    ) where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        // The latest request's deadline, set by the service as each request begins.
        let (deadline_tx, mut deadline) = watch::channel(None::<Instant>);
        let service = {
            let (registry, id) = (Arc::clone(&self.registry), self.id);
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let now = Instant::now();
                lock(&registry).request_started(id, now);
                deadline_tx.send_replace(Some(now + limits.request_timeout));
                app.clone().oneshot(request)
            })
        };
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).max_buf_size(MAX_BUF_SIZE);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let (mut draining, mut watching) = (false, true);
        loop {
            let until = *deadline.borrow_and_update();
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                        if e.is_timeout() {
                            events::http_connection_closed(HttpClose::HeaderTimeout);
                        }
                    }
                    break;
                }
                _ = stop.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = self.evicted.cancelled() => {
                    events::http_connection_closed(HttpClose::Displaced);
                    break;
                }
                _ = tokio::time::sleep_until(until.unwrap_or_else(Instant::now)), if until.is_some() => {
                    tracing::debug!(timeout = ?limits.request_timeout, "HTTP request exceeded its time; closing the connection");
                    events::http_connection_closed(HttpClose::RequestTimeout);
                    break;
                }
                _ = tokio::time::sleep_until(head_by.unwrap_or_else(Instant::now)), if head_by.is_some() && until.is_none() => {
                    tracing::debug!(timeout = ?limits.header_read_timeout, "No request head in time after the TLS handshake; closing the connection");
                    events::http_connection_closed(HttpClose::HeaderTimeout);
                    break;
                }
                changed = deadline.changed(), if watching => watching = changed.is_ok(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 40000))
    }

    #[test]
    fn cap_keeps_most_descriptors_for_probing() {
        assert_eq!(connection_cap(1_048_576), MAX_CONNECTIONS);
        assert_eq!(connection_cap(256), 64);
        assert_eq!(connection_cap(64), 16);
        assert_eq!(connection_cap(2), 1);
        assert_eq!(connection_cap(u64::MAX), MAX_CONNECTIONS);
    }

    #[test]
    fn a_new_connection_displaces_the_flooding_peer_idle_first() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut registry = Registry::default();
        // A scraper (peer 1) with a request behind it, then a flood from peer 2.
        let (scraper, scraper_evict) = registry.admit(peer(1), at(0), 4);
        registry.request_started(scraper, at(0));
        let flood: Vec<_> = (1..=3).map(|i| registry.admit(peer(2), at(10 * i), 4)).collect();
        // One of the flood sent a request: the never-used ones go first, oldest first.
        registry.request_started(flood[2].0, at(35));
        registry.admit(peer(2), at(40), 4);
        assert!(flood[0].1.is_cancelled() && !flood[1].1.is_cancelled());
        registry.admit(peer(3), at(50), 4);
        assert!(flood[1].1.is_cancelled());
        assert!(!scraper_evict.is_cancelled(), "the scraper's kept connection stays");
        assert_eq!(registry.open.len(), 4);
    }

    /// A body much larger than the read buffer is served whole, and a stop with no client
    /// returns at once.
    #[tokio::test]
    async fn serves_a_large_body_and_stops() {
        let body = "x".repeat(4 << 20);
        let app = Router::new().route("/big", axum::routing::get(move || std::future::ready(body.clone())));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, stop.clone(), Limits::for_descriptors(16)));
        let got = reqwest::get(format!("http://{addr}/big")).await.unwrap().text().await.unwrap();
        assert_eq!(got.len(), 4 << 20);
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), server).await.expect("stops at once").unwrap();
    }

    /// A client that asks for a big answer and does not read it loses its connection at the
    /// request timeout: it finds part of the answer and then the end.
    #[tokio::test]
    async fn a_reader_that_does_not_read_is_cut_at_the_request_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const BIG: usize = 32 << 20;
        let body = bytes::Bytes::from(vec![b'x'; BIG]);
        let app = Router::new().route("/big", axum::routing::get(move || std::future::ready(body.clone())));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits { request_timeout: Duration::from_millis(500), ..Limits::for_descriptors(16) };
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, app, stop.clone(), limits));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut got = 0;
        let mut buf = vec![0u8; 1 << 16];
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            while let Ok(n @ 1..) = client.read(&mut buf).await {
                got += n;
            }
        })
        .await;
        assert!(ended.is_ok(), "the connection stayed open ({got} bytes read)");
        assert!(got < BIG, "the whole answer arrived ({got} bytes): the connection was not cut");
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), server).await.expect("stops at once").unwrap();
    }

    /// Over TLS the handshake counts against the header-read timeout: a client that takes most
    /// of it before its handshake, then sends no head, is closed that timeout after its accept,
    /// not a whole timeout after its handshake.
    #[tokio::test]
    async fn a_tls_handshake_spends_the_header_read_timeout() {
        use std::sync::Arc;
        use tokio::io::AsyncReadExt;

        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        let settings = crate::config::TlsSettings {
            cert_file,
            key_file,
            client_ca: None,
            min_version: crate::config::TlsVersion::V12,
        };
        let tls = Arc::new(Tls::new(settings).unwrap());
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits { header_read_timeout: Duration::from_millis(1000), ..Limits::for_descriptors(16) };
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve_with_tls(listener, app, stop.clone(), limits, Some(tls)));

        let started = Instant::now();
        let tcp = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let client =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(client)).connect(name, tcp).await.unwrap();
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        let after = started.elapsed();
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
        assert!(after >= Duration::from_millis(900), "closed too early: {after:?}");
        assert!(after < Duration::from_millis(1400), "the handshake did not count: closed after {after:?}");
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), server).await.expect("stops at once").unwrap();
    }

    #[test]
    fn one_peer_keeps_the_connection_that_sent_a_request() {
        let t0 = Instant::now();
        let mut registry = Registry::default();
        let first = registry.admit(peer(1), t0, 2);
        let second = registry.admit(peer(1), t0 + Duration::from_millis(1), 2);
        registry.request_started(first.0, t0);
        registry.admit(peer(1), t0 + Duration::from_millis(2), 2);
        assert!(second.1.is_cancelled(), "the one that never sent a request");
        assert!(!first.1.is_cancelled());
    }
}
