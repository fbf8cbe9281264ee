//! Property tests (bounded fuzzing) of JSON-RPC message decoding and of the text a server sends
//! on its way to terminals, logs and labels. `PROPTEST_CASES` sets the case count.

use super::*;
use crate::mcp::transport::classify_status;
use proptest::prelude::*;

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("jsonrpc".to_string()),
                    Just("id".to_string()),
                    Just("method".to_string()),
                    Just("params".to_string()),
                    Just("result".to_string()),
                    Just("error".to_string()),
                    Just("code".to_string()),
                    Just("message".to_string()),
                    ".{0,8}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Whether a character would act on a terminal rather than print.
fn acts_on_terminal(c: char) -> bool {
    c.is_control()
}

proptest! {
    #[test]
    fn any_json_decodes_as_a_message_or_an_error(v in json()) {
        let was_object = v.is_object();
        let method = v.get("method").and_then(Value::as_str).map(str::to_string);
        match parse_message(v) {
            Ok(Incoming::Request { method: m, .. } | Incoming::Notification { method: m, .. }) => {
                prop_assert_eq!(Some(m), method);
            }
            Ok(Incoming::Response { outcome: Err((_, message)), .. }) => {
                prop_assert!(!message.chars().any(acts_on_terminal));
                prop_assert!(message.chars().count() <= 201);
            }
            Ok(Incoming::Response { .. }) => prop_assert!(method.is_none()),
            Err(_) => prop_assert!(!was_object || method.is_none()),
        }
    }

    #[test]
    fn any_bytes_as_a_json_body_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            let _ = parse_message(v);
        }
    }

    #[test]
    fn any_text_decodes_as_a_raw_message_or_an_error(text in prop_oneof![any::<String>(), json().prop_map(|v| v.to_string())]) {
        if let Ok(RawIncoming::Response { outcome: Ok(result), .. }) = parse_raw(text) {
            let _ = result.value();
        }
    }

    #[test]
    fn json_nested_past_any_reasonable_depth_is_invalid_not_a_crash(
        depth in prop_oneof![1usize..300, 300usize..200_000],
        member in prop_oneof![Just("result"), Just("params")],
    ) {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let text = match member {
            "params" => format!(r#"{{"jsonrpc":"2.0","id":1,"method":"roots/list","params":{nested}}}"#),
            other => format!(r#"{{"jsonrpc":"2.0","id":1,"{other}":{nested}}}"#),
        };
        // serde_json's recursion limit (128) turns deep nesting
        // into an error wherever it is parsed, never a stack overflow.
        let failed = match parse_raw(text) {
            Err(_) => true,
            Ok(RawIncoming::Response { outcome: Ok(result), .. }) => result.value().is_err(),
            Ok(_) => false,
        };
        // Around the limit itself the envelope's level may or may not count: no claim there.
        if depth <= 100 || depth >= 200 {
            prop_assert_eq!(failed, depth >= 200, "depth {} in {}", depth, member);
        }
    }

    #[test]
    fn printable_text_cannot_act_on_a_terminal(s in any::<String>(), max in 0usize..64) {
        let out = printable(&s, max);
        prop_assert!(!out.chars().any(acts_on_terminal), "{:?}", out);
        prop_assert!(out.chars().count() <= max.max(1));
        if s.chars().count() <= max {
            prop_assert_eq!(out.chars().count(), s.chars().count());
        }
    }

    #[test]
    fn escape_sequences_lose_their_escape(
        before in "[ -~]{0,10}",
        seq in prop_oneof![
            Just("\x1b]0;pwned\x07"),
            Just("\x1b[2J"),
            Just("\x1b[32mALL TARGETS HEALTHY\x1b[0m"),
            Just("\r"),
            Just("\0"),
            Just("\u{9b}31m"),
        ],
        after in "[ -~]{0,10}",
    ) {
        let out = printable(&format!("{before}{seq}{after}"), 200);
        prop_assert!(!out.contains(['\x1b', '\x07', '\r', '\0', '\u{9b}']), "{:?}", out);
    }

    #[test]
    fn any_error_body_becomes_a_bounded_printable_snippet(
        status in 300u16..600,
        body in prop_oneof![any::<String>(), "<html><body>[ -~]{0,300}</body></html>"],
        sent_session in any::<bool>(),
    ) {
        let e = classify_status(status, &body, sent_session).to_string();
        prop_assert!(!e.chars().any(acts_on_terminal), "{:?}", e);
        prop_assert!(e.chars().count() < 400, "{} characters", e.chars().count());
    }
}
