//! Label values that come from a server. A server is not trusted to keep them short, printable
//! or stable, so every such value passes through here before it becomes a label:
//!
//! - [`bounded`]: at most [`MAX_LABEL_CHARS`] characters (cut on a character boundary, the last
//!   one replaced by `…` when cut), every control character (Unicode `Cc`: C0, DEL, C1, so also
//!   the ESC of an ANSI sequence) replaced by `?` (`mcp::protocol::printable`).
//! - [`protocol_version`]: the negotiated revision mapped onto the versions this client speaks,
//!   anything else `other`.
//! - [`AUTO_TOOL`]: the `gen_ai_tool_name` of a tool the probe picked from the server's list
//!   (not configured), so a server renaming its tools cannot add series.

use crate::mcp::protocol::{LATEST_PROTOCOL, SESSION_PROTOCOLS};

/// Longest label value taken from a server, in characters (MCP tool names are at most 128).
pub const MAX_LABEL_CHARS: usize = 128;
/// The `gen_ai_tool_name` of a tools/call the probe picked itself (the first read-only tool
/// listed). Parentheses are not allowed in MCP tool names, so it never collides with a real one.
pub const AUTO_TOOL: &str = "(read-only)";
/// `mcp_protocol_version` of a negotiated revision outside the known set.
pub const OTHER_PROTOCOL: &str = "other";

/// `s` as a bounded label value: control characters replaced, at most [`MAX_LABEL_CHARS`]
/// characters.
pub fn bounded(s: &str) -> String {
    crate::mcp::protocol::printable(s, MAX_LABEL_CHARS)
}

/// The `mcp_protocol_version` label of a negotiated version: a known revision, empty when none
/// was negotiated, else [`OTHER_PROTOCOL`].
pub fn protocol_version(v: &str) -> &'static str {
    if v.is_empty() {
        return "";
    }
    std::iter::once(LATEST_PROTOCOL).chain(SESSION_PROTOCOLS).find(|known| *known == v).unwrap_or(OTHER_PROTOCOL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_printable_values_are_kept() {
        assert_eq!(bounded("everything-server"), "everything-server");
        assert_eq!(bounded(""), "");
        assert_eq!(bounded("ünïcödé ✓"), "ünïcödé ✓");
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(bounded("a\nb\tc\u{1b}[31md\u{7f}e\u{85}"), "a?b?c?[31md?e?");
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let exact = "x".repeat(MAX_LABEL_CHARS);
        assert_eq!(bounded(&exact), exact);
        let long = "é".repeat(10_000);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MAX_LABEL_CHARS);
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with(&"é".repeat(MAX_LABEL_CHARS - 1)));
        let mixed = format!("{}\u{1b}{}", "a".repeat(50), "b\n".repeat(5_000));
        let cut = bounded(&mixed);
        assert_eq!(cut.chars().count(), MAX_LABEL_CHARS);
        assert!(!cut.chars().any(char::is_control));
    }

    #[test]
    fn protocol_versions_map_to_the_known_set() {
        assert_eq!(protocol_version(LATEST_PROTOCOL), LATEST_PROTOCOL);
        for v in SESSION_PROTOCOLS {
            assert_eq!(protocol_version(v), v);
        }
        assert_eq!(protocol_version(""), "");
        assert_eq!(protocol_version("2099-01-01"), OTHER_PROTOCOL);
        assert_eq!(protocol_version(&"9".repeat(10_000)), OTHER_PROTOCOL);
    }
}
