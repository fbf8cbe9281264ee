//! The floor under the fleet's CPU: the same probe cycles as the daemon's default script, sent
//! to the same reference target over one kept HTTP/1.1 connection per target on one
//! current-thread tokio runtime, with nothing else done. Requests are canned bytes, responses are
//! read to the end of their framing and checked for their status only: no JSON or SSE parsing,
//! no listing, no metrics, no timeouts, no spans. What the daemon spends above this is its own
//! work; what the floor spends is the kernel's loopback, the wakeups and the runtime, which no
//! prober on this machine avoids.
//!
//! It runs as a child of the bench (`FLEET_FLOOR_CHILD=URL,TARGETS,INTERVAL_SECS`), so its CPU
//! is read from /proc the same way as the daemon's; it prints `floor ready`, then the cycles and
//! failed exchanges so far once a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VERSION: &str = "2025-11-25";

#[derive(Default)]
struct Counts {
    cycles: AtomicU64,
    failures: AtomicU64,
}

/// One kept connection to the target.
struct Conn {
    addr: String,
    path: String,
    tcp: Option<TcpStream>,
    buf: Vec<u8>,
}

/// A response: its status, its `Mcp-Session-Id` and its body (still framed when chunked).
struct Answer {
    status: u16,
    session: Option<String>,
    body: Vec<u8>,
}

impl Conn {
    /// POST (or DELETE when `body` is `None`) one message; reconnects once when a kept connection
    /// was closed under it.
    async fn exchange(&mut self, body: Option<&str>, session: Option<&str>) -> std::io::Result<Answer> {
        let mut request = Vec::with_capacity(512);
        let method = if body.is_some() { "POST" } else { "DELETE" };
        request.extend_from_slice(
            format!(
                "{method} {} HTTP/1.1\r\nhost: {}\r\naccept: application/json, text/event-stream\r\n",
                self.path, self.addr
            )
            .as_bytes(),
        );
        if let Some(s) = session {
            request.extend_from_slice(format!("mcp-session-id: {s}\r\nmcp-protocol-version: {VERSION}\r\n").as_bytes());
        }
        let body = body.unwrap_or("");
        request.extend_from_slice(
            format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes(),
        );
        for attempt in 0..2 {
            if self.tcp.is_none() {
                self.tcp = Some(TcpStream::connect(&self.addr).await?);
                self.buf.clear();
            }
            match self.round_trip(&request).await {
                Ok(a) => return Ok(a),
                Err(_) if attempt == 0 => self.tcp = None,
                Err(e) => return Err(e),
            }
        }
        unreachable!()
    }

    async fn round_trip(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        let tcp = self.tcp.as_mut().unwrap();
        tcp.write_all(request).await?;
        let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed");
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let (len, status, session, length, chunked, close) = loop {
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(len) = resp.parse(&self.buf).map_err(|e| bad(&e.to_string()))? {
                let field = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).to_string())
                };
                let length = field("content-length").and_then(|v| v.trim().parse::<usize>().ok());
                let chunked = field("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
                let close = field("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                break (len, resp.code.unwrap_or(0), field("mcp-session-id"), length, chunked, close);
            }
            if tcp.read_buf(&mut self.buf).await? == 0 {
                return Err(eof());
            }
        };
        self.buf.drain(..len);
        let body = if chunked {
            // Chunks until the last (size 0) and the blank line after it; no trailers.
            let mut at = 0;
            loop {
                let line_end = self.buf[at..].windows(2).position(|w| w == b"\r\n").map(|p| at + p);
                let size_known = line_end.and_then(|end| {
                    let size = std::str::from_utf8(&self.buf[at..end]).ok()?;
                    usize::from_str_radix(size.split(';').next()?.trim(), 16).ok().map(|s| (end, s))
                });
                match size_known {
                    Some((end, 0)) if self.buf.len() >= end + 4 => {
                        at = end + 4;
                        break;
                    }
                    Some((end, size)) if size > 0 && self.buf.len() >= end + 2 + size + 2 => at = end + 2 + size + 2,
                    _ => {
                        if tcp.read_buf(&mut self.buf).await? == 0 {
                            return Err(eof());
                        }
                    }
                }
            }
            self.buf.drain(..at).collect()
        } else {
            let n = length.unwrap_or(0);
            while self.buf.len() < n {
                if tcp.read_buf(&mut self.buf).await? == 0 {
                    return Err(eof());
                }
            }
            self.buf.drain(..n).collect()
        };
        if close {
            self.tcp = None;
        }
        Ok(Answer { status, session, body })
    }
}

fn request(id: u64, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

fn initialize() -> String {
    let params = format!(
        r#"{{"protocolVersion":"{VERSION}","capabilities":{{}},"clientInfo":{{"name":"floor","version":"0"}}}}"#
    );
    request(1, "initialize", &params)
}

/// The first resource URI and the first prompt without required arguments, from the lists the
/// target answers (read once, before the timed loops).
async fn discover(conn: &mut Conn) -> (Option<String>, Option<String>) {
    let session = conn.exchange(Some(&initialize()), None).await.expect("initialize").session;
    let json = |a: Answer| -> serde_json::Value {
        let text = String::from_utf8_lossy(&a.body).to_string();
        let start = text.find("{\"").unwrap_or(0);
        let end = text.rfind('}').map(|e| e + 1).unwrap_or(text.len());
        serde_json::from_str(&text[start..end]).unwrap_or_default()
    };
    let s = session.as_deref();
    let resources = json(conn.exchange(Some(&request(2, "resources/list", "{}")), s).await.expect("resources/list"));
    let prompts = json(conn.exchange(Some(&request(3, "prompts/list", "{}")), s).await.expect("prompts/list"));
    let _ = conn.exchange(None, s).await;
    let uri = resources.pointer("/result/resources/0/uri").and_then(|u| u.as_str()).map(str::to_string);
    let prompt = prompts.pointer("/result/prompts").and_then(|p| p.as_array()).and_then(|ps| {
        ps.iter()
            .find(|p| {
                !p.get("arguments")
                    .and_then(|a| a.as_array())
                    .is_some_and(|a| a.iter().any(|arg| arg.get("required").and_then(|r| r.as_bool()) == Some(true)))
            })
            .and_then(|p| p.get("name")?.as_str().map(str::to_string))
    });
    (uri, prompt)
}

/// The daemon's default script for a target with a tool configured: initialize, initialized,
/// tools/list, tools/call, resources/list and read, prompts/list and get, ping, DELETE.
fn script(uri: Option<&str>, prompt: Option<&str>) -> Vec<String> {
    let mut s = vec![
        initialize(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        request(2, "tools/list", "{}"),
        request(3, "tools/call", r#"{"name":"echo","arguments":{"message":"canary"}}"#),
        request(4, "resources/list", "{}"),
    ];
    if let Some(uri) = uri {
        s.push(request(5, "resources/read", &format!(r#"{{"uri":"{uri}"}}"#)));
    }
    s.push(request(6, "prompts/list", "{}"));
    if let Some(p) = prompt {
        s.push(request(7, "prompts/get", &format!(r#"{{"name":"{p}","arguments":{{}}}}"#)));
    }
    s.push(request(8, "ping", "{}"));
    s
}

async fn probe_loop(mut conn: Conn, script: Arc<Vec<String>>, interval: Duration, counts: Arc<Counts>) {
    // The daemon's schedule at its default jitter (0.1): first cycles spread over a tenth of the
    // interval, each next one the interval moved by up to 5 % either way.
    let jitter = 0.1;
    let first = Duration::from_secs_f64(interval.as_secs_f64() * jitter * rand::random::<f64>());
    let mut next = tokio::time::Instant::now() + first;
    loop {
        tokio::time::sleep_until(next).await;
        let offset = (rand::random::<f64>() - 0.5) * jitter;
        next = tokio::time::Instant::now() + interval.mul_f64(1.0 + offset);
        let mut session: Option<String> = None;
        let mut ok = true;
        for body in script.iter() {
            match conn.exchange(Some(body), session.as_deref()).await {
                Ok(a) if a.status < 300 => {
                    if session.is_none() {
                        session = a.session;
                    }
                }
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && conn.exchange(None, session.as_deref()).await.is_ok_and(|a| a.status < 300) {
            counts.cycles.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The child's body: never returns (the bench kills it).
pub fn run(spec: &str) -> ! {
    let mut parts = spec.split(',');
    let url = parts.next().expect("url");
    let targets: usize = parts.next().and_then(|t| t.parse().ok()).expect("targets");
    let interval = Duration::from_secs(parts.next().and_then(|t| t.parse().ok()).expect("interval"));
    let rest = url.strip_prefix("http://").expect("an http:// target");
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let conn = || Conn { addr: addr.to_string(), path: path.to_string(), tcp: None, buf: Vec::with_capacity(4096) };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (uri, prompt) = discover(&mut conn()).await;
        let script = Arc::new(script(uri.as_deref(), prompt.as_deref()));
        let counts = Arc::new(Counts::default());
        for _ in 0..targets {
            tokio::spawn(probe_loop(conn(), Arc::clone(&script), interval, Arc::clone(&counts)));
        }
        println!("floor ready: {} exchanges a cycle", script.len() + 1);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            println!(
                "floor cycles {} failures {}",
                counts.cycles.load(Ordering::Relaxed),
                counts.failures.load(Ordering::Relaxed)
            );
        }
    })
}
