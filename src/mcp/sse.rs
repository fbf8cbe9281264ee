//! SSE handling: a size-capped body stream decoded by `sse-stream`, normalised frames, replay dedupe.

use super::McpError;
use super::protocol::snippet;
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use sse_stream::{Sse, SseByteStream};
use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Upper bound on the server's `retry` hint.
pub const MAX_RETRY: Duration = Duration::from_secs(5);
/// Delay before reconnecting when the server gave no `retry` hint.
pub const DEFAULT_RETRY: Duration = Duration::from_millis(500);

/// Why a body stream stopped yielding bytes.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("response body over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Transport(McpError),
}

/// A byte stream that fails once more than `limit` bytes have arrived.
pub struct Limited<S> {
    inner: S,
    seen: usize,
    limit: usize,
    done: bool,
}

impl<S> Limited<S> {
    pub fn new(inner: S, limit: usize) -> Self {
        Self { inner, seen: 0, limit, done: false }
    }
}

impl<S> Stream for Limited<S>
where
    S: Stream<Item = Result<Bytes, McpError>> + Unpin,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen = self.seen.saturating_add(chunk.len());
                if self.seen > self.limit {
                    self.done = true;
                    return Poll::Ready(Some(Err(BodyError::TooLarge { limit: self.limit })));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(BodyError::Transport(e))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A decoded SSE body.
pub type EventStream = SseByteStream<Limited<BoxStream<'static, Result<Bytes, McpError>>>>;

/// Decode `bytes` as SSE, failing once more than `limit` bytes arrived.
pub fn event_stream(bytes: BoxStream<'static, Result<Bytes, McpError>>, limit: usize) -> EventStream {
    SseByteStream::new(Limited::new(bytes, limit))
}

/// One SSE event, normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Event id with any CR stripped.
    pub id: Option<String>,
    pub retry: Option<u64>,
    /// The JSON-RPC message's text (valid JSON, not yet parsed: see `protocol::parse_raw`), or
    /// `None` for priming, empty, `{}` or non-message events.
    pub message: Option<String>,
    /// Hash of the raw data, to tell a replay from a reused id.
    pub data_hash: u64,
}

/// Normalise a raw SSE block.
pub fn frame_of(sse: Sse) -> Result<Frame, McpError> {
    let id = sse.id.map(|id| id.replace('\r', "").trim().to_string()).filter(|id| !id.is_empty());
    let is_message =
        sse.event.as_deref().map(|e| e.trim_end_matches('\r')).is_none_or(|e| e.is_empty() || e == "message");
    let data = sse.data.unwrap_or_default();
    let trimmed = data.trim();
    let data_hash = hash(trimmed);
    let empty_object = || trimmed.bytes().filter(|b| !b.is_ascii_whitespace()).eq(*b"{}");
    let message = if !is_message || trimmed.is_empty() || empty_object() {
        None
    } else {
        // Checked here (without building anything), parsed by the exchange.
        serde_json::from_str::<serde::de::IgnoredAny>(trimmed)
            .map_err(|e| McpError::InvalidJson(format!("SSE data: {}: {}", e, snippet(trimmed, 80))))?;
        Some(if trimmed.len() == data.len() { data } else { trimmed.to_string() })
    };
    Ok(Frame { id, retry: sse.retry, message, data_hash })
}

/// The next frame, `None` at the end of the stream.
pub async fn next_frame(stream: &mut EventStream) -> Option<Result<Frame, McpError>> {
    match stream.next().await? {
        Ok(sse) => Some(frame_of(sse)),
        Err(e) => Some(Err(classify_decode_error(e))),
    }
}

/// How long the rest of a POST's SSE stream is read after its response arrived.
const DRAIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// Read what is left of a POST's SSE stream after the awaited response, so that the HTTP
/// connection goes back to the pool instead of being closed (a server ends the stream right after
/// the response; dropping it unread would cost a new TCP connection per request). Frames after
/// the response are discarded; a stream that stays open is dropped after `DRAIN_WINDOW`.
pub fn drain(mut stream: EventStream) {
    use futures::FutureExt;
    // Usually the end of the stream has arrived with the response: no task needed.
    for _ in 0..4 {
        match stream.next().now_or_never() {
            Some(None) => return,
            Some(Some(_)) => continue,
            None => break,
        }
    }
    tokio::spawn(async move {
        let _ = tokio::time::timeout(DRAIN_WINDOW, async { while stream.next().await.is_some() {} }).await;
    });
}

fn classify_decode_error(e: sse_stream::Error) -> McpError {
    match e {
        sse_stream::Error::Body(inner) => match inner.downcast::<BodyError>() {
            Ok(b) => match *b {
                BodyError::TooLarge { limit } => McpError::BodyTooLarge { limit },
                BodyError::Transport(e) => e,
            },
            Err(other) => McpError::Reset(snippet(&other.to_string(), 200)),
        },
        other => McpError::InvalidSse(snippet(&other.to_string(), 200)),
    }
}

/// The reconnect delay for a `retry` hint, capped.
pub fn retry_delay(retry: Option<u64>) -> Duration {
    retry.map(Duration::from_millis).unwrap_or(DEFAULT_RETRY).min(MAX_RETRY)
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// A bounded memory of keys already seen (event ids with their data, answered request ids).
#[derive(Debug)]
pub struct Seen {
    set: HashSet<String>,
    order: VecDeque<String>,
    cap: usize,
}

impl Seen {
    pub fn new(cap: usize) -> Self {
        Self { set: HashSet::new(), order: VecDeque::new(), cap: cap.max(1) }
    }

    /// Record `key`; false when it was already there.
    pub fn insert(&mut self, key: String) -> bool {
        if self.set.contains(&key) {
            return false;
        }
        if self.order.len() >= self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

/// Dedupe key of an event: its id together with its data, so a reused id with new data is kept.
pub fn event_key(frame: &Frame) -> Option<String> {
    frame.id.as_ref().map(|id| format!("e\u{1f}{id}\u{1f}{:x}", frame.data_hash))
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;
    use serde_json::Value;

    fn msg(f: &Frame) -> Value {
        serde_json::from_str(f.message.as_deref().unwrap()).unwrap()
    }

    fn decode(chunks: Vec<&'static str>, limit: usize) -> Vec<Result<Frame, McpError>> {
        let s = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c.as_bytes())))).boxed();
        let mut es = event_stream(s, limit);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut out = Vec::new();
            while let Some(f) = next_frame(&mut es).await {
                out.push(f);
                assert!(out.len() < 100);
            }
            out
        })
    }

    #[test]
    fn crlf_comments_field_order_and_priming() {
        let body = ": ping - 2026\r\n\r\nid: 0\r\nretry: 1500\r\ndata:\r\n\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\nid: 5\r\nevent: message\r\n\r\n";
        let frames: Vec<Frame> = decode(vec![body], 1 << 20).into_iter().map(Result::unwrap).collect();
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(frames[0].id.as_deref(), Some("0"));
        assert_eq!(frames[0].retry, Some(1500));
        assert_eq!(frames[0].message, None);
        assert_eq!(frames[1].id.as_deref(), Some("5"));
        assert_eq!(msg(&frames[1])["id"], 1);
    }

    #[test]
    fn split_chunks_and_empty_object_priming() {
        let frames = decode(vec!["data: {}\n\nda", "ta: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n", "\n"], 1 << 20);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].as_ref().unwrap().message, None);
        assert_eq!(msg(frames[1].as_ref().unwrap())["method"], "x");
    }

    #[test]
    fn cr_is_stripped_from_ids() {
        let f = frame_of(Sse { id: Some("abc\r".into()), data: Some(String::new()), ..Default::default() }).unwrap();
        assert_eq!(f.id.as_deref(), Some("abc"));
    }

    #[test]
    fn other_event_names_are_not_messages() {
        let f =
            frame_of(Sse { event: Some("endpoint".into()), data: Some("/x".into()), ..Default::default() }).unwrap();
        assert_eq!(f.message, None);
    }

    #[test]
    fn garbage_data_is_invalid_json() {
        let frames = decode(vec!["data: {not json\n\n"], 1 << 20);
        assert!(matches!(frames[0], Err(McpError::InvalidJson(_))));
    }

    #[test]
    fn size_cap_is_enforced_while_streaming() {
        let frames = decode(vec!["data: ", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "\n\n"], 16);
        assert!(matches!(frames.last(), Some(Err(McpError::BodyTooLarge { limit: 16 }))), "{frames:?}");
    }

    #[test]
    fn seen_is_bounded_and_dedupes() {
        let mut s = Seen::new(2);
        assert!(s.insert("a".into()));
        assert!(!s.insert("a".into()));
        assert!(s.insert("b".into()));
        assert!(s.insert("c".into()));
        assert!(s.insert("a".into()), "oldest evicted");
    }

    #[test]
    fn retry_is_capped() {
        assert_eq!(retry_delay(Some(60_000)), MAX_RETRY);
        assert_eq!(retry_delay(Some(100)), Duration::from_millis(100));
        assert_eq!(retry_delay(None), DEFAULT_RETRY);
    }
}
