//! The self-contained HTML report.

use super::Rendering;

/// The report as one HTML page (inline SVG and CSS only; nothing fetched when opened).
pub fn render(r: &Rendering<'_>) -> String {
    let _ = r;
    String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mcp-canary report</title></head><body></body></html>\n",
    )
}
