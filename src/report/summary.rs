//! The Markdown summary (a pull request's comment, a GitHub Actions job summary).

use super::Rendering;

/// The report as Markdown: verdict, key figures, thresholds, links.
pub fn render(r: &Rendering<'_>) -> String {
    let verdict = if r.report.passed() { "pass" } else { "fail" };
    format!("## mcp-canary: {verdict}\n")
}
