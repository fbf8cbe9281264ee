//! Property tests (bounded fuzzing) of the response-head parser and the body unframing: whatever
//! bytes a server sends, in whatever pieces they arrive, parsing never panics, never claims more
//! than it was given, and holds at most a bounded buffer. `PROPTEST_CASES` sets the case count
//! (scripts/fuzz.sh runs many more than CI does).

use super::*;
use proptest::prelude::*;

/// A body reading from a real (idle) loopback socket, so that its end is observable.
struct Harness {
    _rt: tokio::runtime::Runtime,
    _peer: std::net::TcpStream,
    body: Body,
}

fn harness(framing: Framing) -> Harness {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (peer, _) = listener.accept().unwrap();
    ours.set_nonblocking(true).unwrap();
    let tcp = {
        let _guard = rt.enter();
        TcpStream::from_std(ours).unwrap()
    };
    let body = Body { conn: Some(Conn::new(tcp)), buf: BytesMut::new(), framing, reusable: true, home: None };
    Harness { _rt: rt, _peer: peer, body }
}

/// What feeding `pieces` to a body yields: the data, the error if any, and whether it ended.
fn feed(framing: Framing, pieces: &[Vec<u8>]) -> (Vec<u8>, Option<McpError>, bool) {
    let mut h = harness(framing);
    let body = &mut h.body;
    let mut out = Vec::new();
    for piece in pieces {
        if body.is_end() {
            break;
        }
        body.buf.extend_from_slice(piece);
        loop {
            match body.unframe() {
                Ok(Some(data)) => out.extend_from_slice(&data),
                Ok(None) => {
                    // Bytes kept between reads are bounded whatever the server sends.
                    assert!(body.buf.len() < MAX_LINE, "{} bytes held between reads", body.buf.len());
                    break;
                }
                Err(e) => return (out, Some(e), body.is_end()),
            }
            if body.is_end() {
                break;
            }
        }
    }
    (out, None, body.is_end())
}

/// `data` cut at the given points (taken modulo its length).
fn split(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    if data.is_empty() {
        return vec![Vec::new()];
    }
    let mut at: Vec<usize> = cuts.iter().map(|c| c % data.len()).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| data[w[0]..w[1]].to_vec()).collect()
}

/// A chunked encoding of `data` in chunks of the given sizes, with optional extensions and
/// trailers, hex sizes in either case and with leading zeros.
fn chunked(data: &[u8], sizes: &[usize], ext: bool, upper: bool, trailers: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        let size = if upper { format!("{n:04X}") } else { format!("{n:x}") };
        out.extend_from_slice(size.as_bytes());
        if ext {
            out.extend_from_slice(b";name=\"value\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    for t in trailers {
        out.extend_from_slice(format!("X-Trailer: {t}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,20}"
}

fn field_value() -> impl Strategy<Value = String> {
    "[ -~]{0,40}".prop_map(|v| v.trim().to_string())
}

proptest! {
    #[test]
    fn any_head_bytes_parse_without_panic(buf in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(Some((len, _))) = parse_head(&buf) {
            prop_assert!(len <= buf.len());
        }
    }

    #[test]
    fn any_bytes_after_a_status_line_parse_without_panic(rest in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut buf = b"HTTP/1.1 200 OK\r\n".to_vec();
        buf.extend_from_slice(&rest);
        if let Ok(Some((len, head))) = parse_head(&buf) {
            prop_assert!(len <= buf.len());
            prop_assert_eq!(head.status, StatusCode::OK);
        }
    }

    #[test]
    fn a_valid_head_is_partial_until_complete(
        code in 200u16..600,
        fields in proptest::collection::vec((token(), field_value()), 0..20),
        close in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut head = format!("HTTP/1.1 {code} Whatever\r\n");
        for (name, value) in &fields {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut buf = head.clone().into_bytes();
        for cut in 0..head.len() {
            prop_assert!(matches!(parse_head(&buf[..cut]), Ok(None)), "prefix of {} bytes", cut);
        }
        buf.extend_from_slice(&body);
        let (len, parsed) = parse_head(&buf).unwrap().expect("complete head");
        prop_assert_eq!(len, head.len());
        prop_assert_eq!(parsed.status.as_u16(), code);
        prop_assert_eq!(parsed.headers.len(), fields.len() + usize::from(close));
        prop_assert_eq!(parsed.reusable, !close);
    }

    #[test]
    fn chunked_bodies_reassemble_however_they_are_split(
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        sizes in proptest::collection::vec(1usize..600, 1..8),
        ext in any::<bool>(),
        upper in any::<bool>(),
        trailers in proptest::collection::vec(field_value(), 0..3),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let wire = chunked(&data, &sizes, ext, upper, &trailers);
        let (out, err, ended) = feed(Framing::Chunked(Chunk::Size), &split(&wire, &cuts));
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert!(ended, "the last chunk and trailers ended the body");
        prop_assert_eq!(out, data);
    }

    #[test]
    fn a_chunked_body_cut_short_never_ends(
        data in proptest::collection::vec(any::<u8>(), 1..1024),
        sizes in proptest::collection::vec(1usize..300, 1..4),
        keep in any::<usize>(),
    ) {
        let wire = chunked(&data, &sizes, false, false, &[]);
        let keep = keep % wire.len();
        let (out, err, ended) = feed(Framing::Chunked(Chunk::Size), &[wire[..keep].to_vec()]);
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert!(!ended, "a body cut at {} of {} bytes ended", keep, wire.len());
        prop_assert!(data.starts_with(&out));
    }

    #[test]
    fn any_bytes_as_a_chunked_body_never_yield_more_than_sent(
        wire in proptest::collection::vec(any::<u8>(), 0..8192),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let (out, _, _) = feed(Framing::Chunked(Chunk::Size), &split(&wire, &cuts));
        prop_assert!(out.len() <= wire.len());
    }

    #[test]
    fn length_framing_yields_exactly_the_length(
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        extra in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut wire = data.clone();
        wire.extend_from_slice(&extra);
        let (out, err, ended) = feed(Framing::Length(data.len() as u64), &split(&wire, &cuts));
        prop_assert!(err.is_none());
        prop_assert_eq!(ended, !wire.is_empty());
        prop_assert_eq!(out, data);
    }

    #[test]
    fn framing_of_any_headers_is_decided_without_panic(
        te in proptest::collection::vec("[ -~]{0,30}", 0..3),
        cl in proptest::collection::vec("[ -~]{0,25}", 0..3),
        status in 100u16..600,
    ) {
        let mut headers = HeaderMap::new();
        for v in &te {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.append(http::header::TRANSFER_ENCODING, v);
            }
        }
        for v in &cl {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.append(http::header::CONTENT_LENGTH, v);
            }
        }
        let _ = framing(&Method::POST, StatusCode::from_u16(status).unwrap(), &headers);
    }
}
