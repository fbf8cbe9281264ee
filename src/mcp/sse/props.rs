//! Property tests (bounded fuzzing) of SSE decoding: events split anywhere decode to the same
//! frames; any bytes decode without panic, into a bounded number of frames, and a body over the
//! limit ends in an error. (Frames carry their message as text: JSON is decoded, and fuzzed, in
//! `protocol/props.rs`.) `PROPTEST_CASES` sets the case count.

use super::*;
use futures::stream;
use proptest::prelude::*;
use serde_json::Value;

fn decode(pieces: Vec<Vec<u8>>, limit: usize) -> Vec<Result<Frame, McpError>> {
    let s = stream::iter(pieces.into_iter().map(|p| Ok(Bytes::from(p)))).boxed();
    let mut es = event_stream(s, limit);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        while let Some(f) = next_frame(&mut es).await {
            let failed = f.is_err();
            out.push(f);
            if failed {
                break;
            }
        }
        out
    })
}

fn split(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    if data.is_empty() {
        return vec![];
    }
    let mut at: Vec<usize> = cuts.iter().map(|c| c % data.len()).collect();
    at.extend([0, data.len()]);
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| data[w[0]..w[1]].to_vec()).collect()
}

/// One event as a server may write it.
#[derive(Debug, Clone)]
struct Event {
    id: Option<String>,
    comment: bool,
    message: Value,
}

fn event() -> impl Strategy<Value = Event> {
    (proptest::option::of("[A-Za-z0-9_/-]{1,12}"), any::<bool>(), 1i64..1000, "[ -~]{0,40}").prop_map(
        |(id, comment, n, text)| Event {
            id,
            comment,
            message: serde_json::json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n, "data": text}}),
        },
    )
}

fn encode(events: &[Event], eol: &str) -> Vec<u8> {
    let mut out = String::new();
    for e in events {
        if e.comment {
            out.push_str(&format!(": keep-alive{eol}"));
        }
        if let Some(id) = &e.id {
            out.push_str(&format!("id: {id}{eol}"));
        }
        out.push_str(&format!("event: message{eol}data: {}{eol}{eol}", e.message));
    }
    out.into_bytes()
}

proptest! {
    #[test]
    fn events_split_anywhere_decode_alike(
        events in proptest::collection::vec(event(), 1..12),
        crlf in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let wire = encode(&events, if crlf { "\r\n" } else { "\n" });
        let frames = decode(split(&wire, &cuts), 1 << 20);
        prop_assert_eq!(frames.len(), events.len());
        for (frame, event) in frames.iter().zip(&events) {
            let frame = frame.as_ref().expect("a valid event decodes");
            prop_assert_eq!(frame.id.as_ref(), event.id.as_ref());
            let message: Option<Value> = frame.message.as_deref().map(|m| serde_json::from_str(m).unwrap());
            prop_assert_eq!(message.as_ref(), Some(&event.message));
        }
    }

    #[test]
    fn any_bytes_decode_into_a_bounded_number_of_frames(
        wire in proptest::collection::vec(any::<u8>(), 0..8192),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let frames = decode(split(&wire, &cuts), 1 << 20);
        // An event needs at least its blank line: no more frames than line ends sent.
        let line_ends = wire.iter().filter(|b| **b == b'\n' || **b == b'\r').count();
        prop_assert!(frames.len() <= line_ends + 1, "{} frames from {} line ends", frames.len(), line_ends);
    }

    #[test]
    fn a_body_over_the_limit_ends_in_an_error(
        events in proptest::collection::vec(event(), 1..40),
        limit in 16usize..2048,
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let wire = encode(&events, "\n");
        let frames = decode(split(&wire, &cuts), limit);
        let last = frames.last();
        if wire.len() > limit {
            prop_assert!(matches!(last, Some(Err(_))), "{} bytes over a limit of {} ended without error", wire.len(), limit);
        } else {
            prop_assert!(frames.iter().all(Result::is_ok));
        }
    }
}
