//! Nonces of a notify run and where they are found: any string of a notification's `params`,
//! searched through objects and arrays within a depth and a byte budget (a hostile server must
//! not make matching expensive). Also the bounded tally of the methods that arrived.

use std::collections::BTreeMap;

use serde_json::Value;

/// Deepest nesting of `params` searched for a nonce (`params` itself is depth 0).
pub const MAX_DEPTH: usize = 16;
/// Bytes of strings (plus one per value visited) inspected per notification at most.
pub const MAX_INSPECTED_BYTES: usize = 64 * 1024;
/// Distinct method names kept in `arrived`; later ones count as [`OTHER`].
pub const MAX_METHODS: usize = 16;
/// Characters of a method name kept in `arrived`.
pub const MAX_METHOD_CHARS: usize = 64;
/// The key of methods beyond [`MAX_METHODS`].
pub const OTHER: &str = "other";

/// Which broadcast (and, in session scope, which session's trigger) a nonce names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce {
    pub session: Option<usize>,
    pub index: usize,
}

/// The nonce of broadcast `index` of run `run_id`: `{run_id}-{index}`, or with the session that
/// triggered it (session scope) `{run_id}-s{session}-{index}`.
pub fn nonce(run_id: &str, session: Option<usize>, index: u64) -> String {
    match session {
        Some(s) => format!("{run_id}-s{s}-{index}"),
        None => format!("{run_id}-{index}"),
    }
}

/// The nonce right after an occurrence of `run_id` (`rest` starts after it), if well formed.
fn parse_after(rest: &str) -> Option<Nonce> {
    let rest = rest.strip_prefix('-')?;
    let digits = |s: &str| -> Option<(usize, usize)> {
        let len = s.bytes().take_while(u8::is_ascii_digit).count();
        // At most 19 digits: anything longer is not ours (and would overflow).
        if len == 0 || len > 19 {
            return None;
        }
        Some((s[..len].parse().ok()?, len))
    };
    match rest.strip_prefix('s') {
        Some(tail) => {
            let (session, len) = digits(tail)?;
            let (index, _) = digits(tail[len..].strip_prefix('-')?)?;
            Some(Nonce { session: Some(session), index })
        }
        None => digits(rest).map(|(index, _)| Nonce { session: None, index }),
    }
}

/// The first nonce of run `run_id` in `text`.
pub fn find_in_str(text: &str, run_id: &str) -> Option<Nonce> {
    if run_id.is_empty() {
        return None;
    }
    text.match_indices(run_id).find_map(|(at, _)| parse_after(&text[at + run_id.len()..]))
}

/// The first nonce of run `run_id` in any string of `params`, searched depth-first through
/// objects (values, not keys) and arrays down to [`MAX_DEPTH`], inspecting at most
/// [`MAX_INSPECTED_BYTES`].
pub fn find_nonce(params: &Value, run_id: &str) -> Option<Nonce> {
    find_bounded(params, run_id, MAX_DEPTH, MAX_INSPECTED_BYTES)
}

/// [`find_nonce`] with explicit bounds.
pub fn find_bounded(params: &Value, run_id: &str, max_depth: usize, max_bytes: usize) -> Option<Nonce> {
    let mut budget = max_bytes;
    search(params, run_id, 0, max_depth, &mut budget)
}

fn search(v: &Value, run_id: &str, depth: usize, max_depth: usize, budget: &mut usize) -> Option<Nonce> {
    if depth > max_depth || *budget == 0 {
        return None;
    }
    *budget -= 1;
    match v {
        Value::String(s) => {
            let mut n = s.len().min(*budget);
            while !s.is_char_boundary(n) {
                n -= 1;
            }
            *budget -= n;
            find_in_str(&s[..n], run_id)
        }
        Value::Array(items) => items.iter().find_map(|x| search(x, run_id, depth + 1, max_depth, budget)),
        Value::Object(map) => map.values().find_map(|x| search(x, run_id, depth + 1, max_depth, budget)),
        _ => None,
    }
}

/// A method name as reported: at most [`MAX_METHOD_CHARS`] characters, control characters as `?`.
pub fn clean_method(method: &str) -> String {
    printable(method, MAX_METHOD_CHARS)
}

use crate::mcp::protocol::printable;

/// Notifications that arrived, by method: at most [`MAX_METHODS`] names, the rest as [`OTHER`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arrived {
    counts: BTreeMap<String, u64>,
}

impl Arrived {
    pub fn count(&mut self, method: &str) {
        self.add(method, 1);
    }

    pub fn add(&mut self, method: &str, n: u64) {
        let clean = method.chars().count() <= MAX_METHOD_CHARS && !method.chars().any(char::is_control);
        if clean && let Some(c) = self.counts.get_mut(method) {
            *c += n;
            return;
        }
        let name = if clean { method.to_string() } else { clean_method(method) };
        if let Some(c) = self.counts.get_mut(&name) {
            *c += n;
            return;
        }
        let named = self.counts.len() - usize::from(self.counts.contains_key(OTHER));
        let key = if named < MAX_METHODS { name } else { OTHER.to_string() };
        *self.counts.entry(key).or_default() += n;
    }

    pub fn merge(&mut self, other: &Arrived) {
        for (method, n) in &other.counts {
            self.add(method, *n);
        }
    }

    pub fn into_map(self) -> BTreeMap<String, u64> {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nonces_round_trip() {
        let b = nonce("ab12", None, 7);
        assert_eq!(find_in_str(&b, "ab12"), Some(Nonce { session: None, index: 7 }));
        let s = nonce("ab12", Some(3), 9);
        assert_eq!(find_in_str(&s, "ab12"), Some(Nonce { session: Some(3), index: 9 }));
        assert_eq!(find_in_str("cd34-7", "ab12"), None);
        assert_eq!(find_in_str("ab12-x", "ab12"), None);
        assert_eq!(find_in_str("ab12-s3", "ab12"), None);
        // Embedded in text, after a false start.
        assert_eq!(
            find_in_str("ab12 and then: broadcast ab12-42: sent 3", "ab12"),
            Some(Nonce { session: None, index: 42 })
        );
        assert_eq!(find_in_str("ab12-99999999999999999999999", "ab12"), None);
    }

    #[test]
    fn nonce_found_in_any_string_of_params() {
        let id = "ab12";
        // The reference target's shape.
        let p = json!({"level": "info", "data": {"nonce": "ab12-1", "sent_at_ms": 5}});
        assert_eq!(find_nonce(&p, id).map(|n| n.index), Some(1));
        // A progress token, a message text, inside arrays.
        assert_eq!(find_nonce(&json!({"progress": 1, "progressToken": "ab12-2"}), id).map(|n| n.index), Some(2));
        assert_eq!(find_nonce(&json!({"message": "op ab12-3 done"}), id).map(|n| n.index), Some(3));
        let deep = json!({"a": [1, null, {"b": [["x", "ab12-s0-4"]]}]});
        assert_eq!(find_nonce(&deep, id), Some(Nonce { session: Some(0), index: 4 }));
        // Keys are not searched; numbers and bools are skipped.
        assert_eq!(find_nonce(&json!({"ab12-5": 1, "n": 12, "t": true}), id), None);
        assert_eq!(find_nonce(&Value::Null, id), None);
    }

    #[test]
    fn search_is_bounded_in_depth_and_bytes() {
        let id = "ab12";
        // Nested 3 deep: found with depth 3, not with depth 2.
        let v = json!({"a": {"b": {"c": "ab12-6"}}});
        assert_eq!(find_bounded(&v, id, 3, 1024).map(|n| n.index), Some(6));
        assert_eq!(find_bounded(&v, id, 2, 1024), None);
        // Deeper than MAX_DEPTH: not found.
        let mut deep = json!("ab12-7");
        for _ in 0..MAX_DEPTH + 1 {
            deep = json!([deep]);
        }
        assert_eq!(find_nonce(&deep, id), None);
        // After a large string the budget is spent: a later nonce is not inspected.
        let big = "x".repeat(MAX_INSPECTED_BYTES);
        assert_eq!(find_nonce(&json!(["ab12-8", big]), id).map(|n| n.index), Some(8));
        assert_eq!(find_nonce(&json!([big, "ab12-8"]), id), None);
        // Many small values spend it too.
        let many: Vec<Value> = (0..MAX_INSPECTED_BYTES).map(|_| Value::Null).chain([json!("ab12-9")]).collect();
        assert_eq!(find_nonce(&Value::Array(many), id), None);
        // A nonce cut by the budget inside a multi-byte string does not panic.
        let s = format!("{}ab12-10", "é".repeat(20));
        assert_eq!(find_bounded(&json!(s), id, 4, 15), None);
        assert_eq!(find_bounded(&json!(s), id, 4, 100).map(|n| n.index), Some(10));
    }

    #[test]
    fn arrived_is_bounded_and_cleaned() {
        let mut a = Arrived::default();
        a.count("notifications/progress");
        a.count("notifications/progress");
        a.count("bad\u{1b}[31m");
        a.count(&"m".repeat(200));
        for i in 0..40 {
            a.count(&format!("n/{i}"));
        }
        let mut b = Arrived::default();
        b.add("notifications/progress", 3);
        a.merge(&b);
        let m = a.into_map();
        assert_eq!(m.len(), MAX_METHODS + 1, "{m:?}");
        assert_eq!(m["notifications/progress"], 5);
        assert_eq!(m["bad?[31m"], 1);
        assert_eq!(m[&format!("{}…", "m".repeat(MAX_METHOD_CHARS - 1))], 1, "cut, and marked as cut");
        assert_eq!(m[OTHER], 43 - MAX_METHODS as u64, "3 named and 40 numbered methods");
        assert!(m.keys().all(|k| k.chars().count() <= MAX_METHOD_CHARS));
    }
}
