//! HTTP/1.1 exchanges on a socket the calling task owns: the request head is encoded once into
//! the write, the response head is parsed with `httparse`, and the body is unframed (chunked,
//! length or until close) as the caller reads it, on the caller's task. Compared with an HTTP
//! client connection (hyper's), there is no connection task to hand requests and body chunks to,
//! and nothing is buffered between reads: an idle kept connection or a quiet held stream costs
//! its socket and a few words of state, not an 8 KB write buffer, a read buffer and a request
//! channel (about 20 KB per connection).

use super::McpError;
use super::protocol::snippet;
use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::{Mutex, Weak};
use std::task::{Context, Poll, ready};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in a response head (hyper's default).
const MAX_HEADERS: usize = 100;
/// Bytes asked of the socket per read; the buffer is let go once its bytes are passed on.
const READ_CHUNK: usize = 4096;
/// Bytes asked of the socket for a response head: most MCP answers, head and body, fit in one
/// such read, and a buffer this small comes from the allocator's per-thread cache.
const HEAD_CHUNK: usize = 1024;
/// Longest chunk-size or trailer line accepted (extensions included).
const MAX_LINE: usize = 4096;

/// An open connection between exchanges.
#[derive(Debug)]
pub struct Conn {
    tcp: TcpStream,
    /// When the connection last went home idle (its creation before that).
    idle_since: std::time::Instant,
}

/// Where a connection goes back to once a response on it has been read to its end.
#[derive(Clone, Debug)]
pub struct Home {
    pub kept: Weak<Mutex<Vec<Conn>>>,
    /// Connections kept at most.
    pub cap: usize,
}

/// A response whose body is read from the socket as the caller asks for it.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

/// How the body's end is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// `Transfer-Encoding: chunked`, in the given part of a chunk.
    Chunked(Chunk),
    /// `Content-Length`: bytes still to come.
    Length(u64),
    /// Neither: the body ends when the server closes the connection.
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
}

/// The body of a [`Response`]: a stream of its data, unframed. Read to its end, the connection
/// goes back to its [`Home`] (when the response allows reuse); dropped earlier, it closes.
#[derive(Debug)]
pub struct Body {
    /// `None` once the body has ended (the connection kept or closed).
    conn: Option<Conn>,
    /// Bytes read and not yet unframed; unallocated between reads.
    buf: BytesMut,
    framing: Framing,
    /// The response lets the connection carry another request after it.
    reusable: bool,
    home: Option<Home>,
}

/// Why an exchange failed, and whether it may be sent again on a fresh connection: nothing of a
/// response arrived and the request may never have been read (a kept connection the server had
/// closed).
#[derive(Debug)]
pub struct Failure {
    pub error: McpError,
    pub unanswered: bool,
}

impl Conn {
    pub fn new(tcp: TcpStream) -> Self {
        Self { tcp, idle_since: std::time::Instant::now() }
    }

    /// How long the connection has been idle at home.
    pub fn idle_for(&self) -> std::time::Duration {
        self.idle_since.elapsed()
    }

    /// The connection as if it had gone home `ago` earlier (tests of the idle bound).
    #[cfg(test)]
    pub fn idled_since(mut self, ago: std::time::Duration) -> Self {
        self.idle_since -= ago;
        self
    }

    /// Whether an idle connection can carry another request: nothing has arrived on it since its
    /// last response. A FIN, a reset or stray bytes (all readable) mean it cannot. No system call
    /// unless the socket was reported readable.
    pub fn is_idle(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.tcp.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readiness may be left over from the last read: look.
            Poll::Ready(Ok(())) => {
                matches!(self.tcp.try_read(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock)
            }
        }
    }

    /// Send a request (encoded by [`Request`]) and read the response head.
    pub async fn exchange(mut self, method: &Method, request: &[u8], home: Option<Home>) -> Result<Response, Failure> {
        if let Err(e) = self.tcp.write_all(request).await {
            return Err(Failure { error: reset_io("send", &e), unanswered: true });
        }
        let mut buf = BytesMut::with_capacity(HEAD_CHUNK);
        let fail = |error| Failure { error, unanswered: false };
        loop {
            if let Some((len, head)) = parse_head(&buf).map_err(fail)? {
                buf.advance(len);
                // An interim answer (100 Continue, 103 Early Hints) precedes the real one.
                if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
                    continue;
                }
                let framing = framing(method, head.status, &head.headers).map_err(fail)?;
                let buf = if buf.is_empty() { BytesMut::new() } else { buf };
                let mut body = Body { conn: Some(self), buf, framing, reusable: head.reusable, home };
                if framing == Framing::Length(0) {
                    body.end();
                }
                return Ok(Response { status: head.status, headers: head.headers, body });
            }
            if buf.len() >= MAX_HEAD {
                return Err(fail(McpError::Reset(format!("response head over {MAX_HEAD} bytes"))));
            }
            buf.reserve(if buf.is_empty() { HEAD_CHUNK } else { READ_CHUNK });
            match tokio::io::AsyncReadExt::read_buf(&mut self.tcp, &mut buf).await {
                Ok(0) => {
                    let error = McpError::Reset("connection closed before a response".into());
                    return Err(Failure { error, unanswered: buf.is_empty() });
                }
                Ok(_) => {}
                Err(e) => {
                    let unanswered = buf.is_empty() && e.kind() == ErrorKind::ConnectionReset;
                    return Err(Failure { error: reset_io("receive", &e), unanswered });
                }
            }
        }
    }
}

/// A parsed response head.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    /// HTTP/1.1 without `Connection: close`.
    reusable: bool,
}

/// The response head at the start of `buf` and its length, `None` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, McpError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(McpError::Reset(snippet(&format!("invalid HTTP response head: {e}"), 200))),
    };
    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| McpError::Reset(format!("invalid HTTP status {code}")))?;
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    let mut close = resp.version != Some(1);
    for field in resp.headers.iter() {
        if field.name.eq_ignore_ascii_case("connection") {
            close |= field.value.split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(field.name.as_bytes()), HeaderValue::from_bytes(field.value))
        {
            headers.append(name, value);
        }
    }
    Ok(Some((len, Head { status, headers, reusable: !close })))
}

/// The body framing of a response (RFC 9112 section 6.3).
fn framing(method: &Method, status: StatusCode, headers: &HeaderMap) -> Result<Framing, McpError> {
    if method == Method::HEAD || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Length(0));
    }
    let mut codings = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty());
    if let Some(last) = codings.next_back() {
        return Ok(if last.eq_ignore_ascii_case(b"chunked") { Framing::Chunked(Chunk::Size) } else { Framing::Close });
    }
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    match lengths.next() {
        None => Ok(Framing::Close),
        Some(v) => {
            let n = std::str::from_utf8(v.as_bytes()).ok().and_then(|s| s.trim().parse::<u64>().ok());
            match n {
                Some(n) if lengths.all(|other| other == v) => Ok(Framing::Length(n)),
                _ => Err(McpError::Reset(snippet(&format!("invalid Content-Length {v:?}"), 120))),
            }
        }
    }
}

impl Body {
    /// Whether the whole body has been read (or it failed).
    pub fn is_end(&self) -> bool {
        self.conn.is_none()
    }

    /// The body ended as framed: the connection goes home when it may carry another request.
    fn end(&mut self) {
        let conn = self.conn.take();
        let framed = self.framing != Framing::Close;
        if let (Some(mut conn), Some(home), true, true) =
            (conn, &self.home, self.reusable && framed, self.buf.is_empty())
            && let Some(kept) = home.kept.upgrade()
            && let Ok(mut kept) = kept.lock()
            && kept.len() < home.cap
        {
            conn.idle_since = std::time::Instant::now();
            kept.push(conn);
        }
        self.buf = BytesMut::new();
    }

    /// The body broke off: the connection closes.
    fn fail(&mut self, e: McpError) -> Poll<Option<Result<Bytes, McpError>>> {
        self.conn = None;
        self.buf = BytesMut::new();
        Poll::Ready(Some(Err(e)))
    }

    /// The next piece of body data already read, if any, advancing the framing; `end` is called
    /// when the framing is complete.
    fn unframe(&mut self) -> Result<Option<Bytes>, McpError> {
        loop {
            match self.framing {
                Framing::Close => return Ok((!self.buf.is_empty()).then(|| self.buf.split().freeze())),
                Framing::Length(left) => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let n = self.buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let data = self.buf.split_to(n).freeze();
                    self.framing = Framing::Length(left - n as u64);
                    if left == n as u64 {
                        self.end();
                    }
                    return Ok(Some(data));
                }
                Framing::Chunked(Chunk::Size) => match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.advance(used);
                        self.framing = Framing::Chunked(if size == 0 { Chunk::Trailer } else { Chunk::Data(size) });
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_LINE => return Ok(None),
                    _ => return Err(McpError::Reset("invalid chunk size in the response body".into())),
                },
                Framing::Chunked(Chunk::Data(left)) => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let n = self.buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let data = self.buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.framing = Framing::Chunked(if left == 0 { Chunk::DataEnd } else { Chunk::Data(left) });
                    return Ok(Some(data));
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if self.buf.len() < 2 {
                        return Ok(None);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(McpError::Reset("chunk data not followed by CRLF".into()));
                    }
                    self.buf.advance(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailer) => match self.buf.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        self.buf.advance(2);
                        self.end();
                        return Ok(None);
                    }
                    Some(end) => self.buf.advance(end + 2),
                    None if self.buf.len() < MAX_LINE => return Ok(None),
                    None => return Err(McpError::Reset("trailer line too long".into())),
                },
            }
        }
    }
}

impl Stream for Body {
    type Item = Result<Bytes, McpError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.conn.is_none() {
                return Poll::Ready(None);
            }
            match this.unframe() {
                Ok(Some(data)) => {
                    if this.buf.is_empty() {
                        // Let the read buffer go with the data handed on: an idle stream holds none.
                        this.buf = BytesMut::new();
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Ok(None) => {}
                Err(e) => return this.fail(e),
            }
            let Some(conn) = &mut this.conn else { return Poll::Ready(None) };
            if this.buf.is_empty() && this.buf.capacity() > 0 {
                // Framing consumed the rest of a read: an idle stream keeps no buffer.
                this.buf = BytesMut::new();
            }
            // Readiness first, so that a quiet stream waits without a buffer; then a read through
            // `AsyncRead`, which clears the readiness after a short read (the next wait then costs
            // no system call that would only answer "would block").
            if let Err(e) = ready!(conn.tcp.poll_read_ready(cx)) {
                return this.fail(reset_io("receive", &e));
            }
            if this.buf.capacity() - this.buf.len() < READ_CHUNK / 4 {
                this.buf.reserve(READ_CHUNK);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut conn.tcp), cx, &mut this.buf) {
                Poll::Pending => {
                    if this.buf.is_empty() {
                        this.buf = BytesMut::new();
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Ok(0)) if this.framing == Framing::Close => {
                    this.conn = None;
                    this.buf = BytesMut::new();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => {
                    return this.fail(McpError::Reset("connection closed before the end of the response body".into()));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return this.fail(reset_io("receive", &e)),
            }
        }
    }
}

/// An encoded request: the request line and header fields, then the body.
#[derive(Debug)]
pub struct Request {
    bytes: Vec<u8>,
}

impl Request {
    /// The request line and `fields` (header fields already encoded by [`Request::field`]).
    pub fn new(method: &Method, target: &str, fields: &[u8], body_hint: usize) -> Self {
        let mut bytes = Vec::with_capacity(256 + fields.len() + body_hint);
        bytes.extend_from_slice(method.as_str().as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(target.as_bytes());
        bytes.extend_from_slice(b" HTTP/1.1\r\n");
        bytes.extend_from_slice(fields);
        Self { bytes }
    }

    /// Add a header field; a value with a byte a field value may not hold (CR, LF, other
    /// controls) is left out, as `http::HeaderValue` refuses it.
    pub fn field(&mut self, name: &str, value: &[u8]) {
        encode_field(&mut self.bytes, name, value);
    }

    /// End the head (with `Content-Length` for a body or a POST) and append the body.
    pub fn finish(mut self, method: &Method, body: &[u8]) -> Vec<u8> {
        if !body.is_empty() || method == Method::POST {
            self.bytes.extend_from_slice(b"content-length: ");
            self.bytes.extend_from_slice(body.len().to_string().as_bytes());
            self.bytes.extend_from_slice(b"\r\n");
        }
        self.bytes.extend_from_slice(b"\r\n");
        self.bytes.extend_from_slice(body);
        self.bytes
    }
}

/// Append `name: value` and CRLF to `out` unless `value` holds a byte a field value may not.
pub fn encode_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A socket error after the connection was made, while sending or receiving.
pub fn reset_io(during: &str, e: &std::io::Error) -> McpError {
    McpError::Reset(snippet(&format!("{during}: {e}"), 200))
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// Read one request head (and a `Content-Length` body of `body` bytes) from `s`.
    async fn read_request(s: &mut TcpStream, body: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut b = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n")
            || got.len() < got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4 + body
        {
            let n = s.read(&mut b).await.unwrap();
            assert!(n > 0, "client closed mid-request");
            got.extend_from_slice(&b[..n]);
        }
        got
    }

    /// Serve `parts` (with a pause between them) on the first connection, after its request.
    async fn serve(parts: Vec<&'static [u8]>) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let got = read_request(&mut s, 0).await;
            for p in parts {
                s.write_all(p).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            got
        });
        (addr, task)
    }

    fn get_request() -> Vec<u8> {
        let mut fields = Vec::new();
        encode_field(&mut fields, "host", b"x");
        Request::new(&Method::GET, "/mcp", &fields, 0).finish(&Method::GET, b"")
    }

    async fn get(addr: std::net::SocketAddr, home: Option<Home>) -> Result<Response, Failure> {
        let conn = Conn::new(TcpStream::connect(addr).await.unwrap());
        conn.exchange(&Method::GET, &get_request(), home).await
    }

    async fn body(mut b: Body) -> (Vec<u8>, Option<McpError>) {
        let mut out = Vec::new();
        while let Some(item) = b.next().await {
            match item {
                Ok(d) => out.extend_from_slice(&d),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    async fn ok_body(b: Body) -> Vec<u8> {
        match body(b).await {
            (data, None) => data,
            (_, Some(e)) => panic!("body failed: {e}"),
        }
    }

    fn home(kept: &Arc<Mutex<Vec<Conn>>>) -> Option<Home> {
        Some(Home { kept: Arc::downgrade(kept), cap: 4 })
    }

    #[tokio::test]
    async fn chunked_body_split_anywhere_and_the_connection_goes_home() {
        let (addr, task) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            b"lo\r",
            b"\n6;ext=1\r\n world\r\n0",
            b"\r\nTrailer: x\r\n\r\n",
        ])
        .await;
        let kept = Arc::default();
        let r = get(addr, home(&kept)).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], "text/event-stream");
        assert_eq!(ok_body(r.body).await, b"hello world");
        assert_eq!(kept.lock().unwrap().len(), 1, "read to its end, the connection is kept");
        let sent = String::from_utf8(task.await.unwrap()).unwrap();
        assert_eq!(sent, "GET /mcp HTTP/1.1\r\nhost: x\r\n\r\n");
    }

    #[tokio::test]
    async fn length_and_close_framing() {
        let (addr, _t) = serve(vec![b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"]).await;
        let kept = Arc::default();
        let r = get(addr, home(&kept)).await.unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(ok_body(r.body).await, b"nope");
        assert_eq!(kept.lock().unwrap().len(), 1);
        let (addr, _t) = serve(vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil ", b"close"]).await;
        let kept = Arc::default();
        let r = get(addr, home(&kept)).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(ok_body(r.body).await, b"until close");
        assert!(kept.lock().unwrap().is_empty(), "a body ended by close leaves nothing to keep");
        let (addr, _t) = serve(vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"]).await;
        let kept = Arc::default();
        let r = get(addr, home(&kept)).await.unwrap();
        assert_eq!(ok_body(r.body).await, b"ok");
        assert!(kept.lock().unwrap().is_empty(), "Connection: close is honoured");
    }

    #[tokio::test]
    async fn truncated_and_garbled_responses_are_resets() {
        let (addr, _t) = serve(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort"]).await;
        let (data, err) = body(get(addr, None).await.unwrap().body).await;
        assert_eq!(data, b"short");
        assert!(matches!(err, Some(McpError::Reset(_))), "{err:?}");
        let (addr, _t) = serve(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]).await;
        let (_, err) = body(get(addr, None).await.unwrap().body).await;
        assert!(matches!(err, Some(McpError::Reset(_))), "{err:?}");
        let (addr, _t) = serve(vec![b"<html>not http</html>\r\n\r\n"]).await;
        let f = get(addr, None).await.unwrap_err();
        assert!(matches!(f.error, McpError::Reset(_)) && !f.unanswered, "{f:?}");
        let (addr, _t) = serve(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"]).await;
        assert!(matches!(get(addr, None).await, Err(Failure { error: McpError::Reset(_), .. })));
        let (addr, _t) = serve(vec![]).await;
        let f = get(addr, None).await.unwrap_err();
        assert!(f.unanswered, "closed without a byte of response: {f:?}");
    }

    #[test]
    fn heads_with_many_fields_parse_up_to_the_limit() {
        let head = |fields: usize| {
            let mut h = String::from("HTTP/1.1 200 OK\r\n");
            for i in 0..fields {
                h.push_str(&format!("x-field-{i}: {i}\r\n"));
            }
            h + "\r\n"
        };
        let (_, parsed) = parse_head(head(MAX_HEADERS).as_bytes()).unwrap().expect("complete");
        assert_eq!(parsed.headers.len(), MAX_HEADERS);
        assert!(parse_head(head(MAX_HEADERS + 1).as_bytes()).is_err());
    }

    /// A field value with a control character (a session id carrying ESC, NUL, DEL, CR) is a
    /// broken head, not a field silently left out (the session id would then vanish); obs-text
    /// bytes are kept for the caller to judge (`transport::session_id_of`).
    #[test]
    fn control_characters_in_a_field_value_break_the_head() {
        for bad in [&b"a\x1b[2Jb"[..], b"a\x00b", b"a\x7fb", b"a\rb", b"a\x07b"] {
            let mut head = b"HTTP/1.1 200 OK\r\nmcp-session-id: ".to_vec();
            head.extend_from_slice(bad);
            head.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
            let parsed = parse_head(&head);
            assert!(parsed.is_err(), "{bad:?}: {:?}", parsed.map(|h| h.map(|(_, h)| h.headers)));
        }
        let head = b"HTTP/1.1 200 OK\r\nmcp-session-id: caf\xc3\xa9\r\n\r\n";
        let (_, parsed) = parse_head(head).unwrap().expect("complete");
        assert_eq!(parsed.headers["mcp-session-id"].as_bytes(), b"caf\xc3\xa9");
    }

    #[tokio::test]
    async fn a_kept_connection_the_server_closed_is_not_idle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            read_request(&mut s, 0).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await.unwrap();
            // Wait for the test to look at the idle connection, then close it.
            let mut b = [0u8; 1];
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), s.read(&mut b)).await;
        });
        let kept: Arc<Mutex<Vec<Conn>>> = Arc::default();
        let r = get(addr, home(&kept)).await.unwrap();
        assert!(r.body.is_end(), "an empty body ends with the head");
        let conn = kept.lock().unwrap().pop().expect("kept");
        assert!(conn.is_idle());
        server.await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!conn.is_idle(), "the server's FIN makes it unusable");
    }

    #[test]
    fn requests_carry_a_length_when_they_have_a_body_or_are_posts() {
        let post = Request::new(&Method::POST, "/mcp", b"", 0).finish(&Method::POST, b"");
        assert_eq!(post, b"POST /mcp HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
        let get = Request::new(&Method::GET, "/", b"", 0).finish(&Method::GET, b"");
        assert_eq!(get, b"GET / HTTP/1.1\r\n\r\n");
        let mut fields = Vec::new();
        encode_field(&mut fields, "x", b"a\x7fb");
        encode_field(&mut fields, "y", b"tab\tok");
        assert_eq!(fields, b"y: tab\tok\r\n");
    }
}
