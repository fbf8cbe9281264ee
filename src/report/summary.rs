//! The Markdown summary (a pull request's comment, a GitHub Actions job summary): the verdict
//! with its reason, the profile's key figures, the thresholds and links to the HTML and JSON
//! reports. Short on purpose: the HTML report holds the rest.
//!
//! Text from the report that a server or a config chose (target and server names, error texts,
//! scenario names) goes through [`text`]: control characters (newlines too) become `?`, and
//! Markdown and HTML punctuation is escaped so it can neither break a table nor inject a link,
//! an image or markup.

use std::fmt::Write as _;
use std::path::Path;

use super::Rendering;
use super::junit::{cell_name, describe, thousands};
use crate::chaos::report::ChaosReport;
use crate::driver::Report;
use crate::mcp::protocol::printable;
use crate::profile::matrix::{CellResult, MatrixReport};
use crate::profile::report::{RunReport, ThresholdResult, ThresholdStatus};
use crate::profile::stats::OpSummary;
use crate::profile::threshold::format_seconds;

/// Longest text from the report kept in a cell (characters).
const MAX_TEXT: usize = 160;
/// Broken matrix cells listed at most.
const MAX_BROKEN: usize = 10;

/// The report as Markdown: verdict, key figures, thresholds, links.
pub fn render(r: &Rendering<'_>) -> String {
    let mut md = String::new();
    let (profile, target, thresholds) = match r.report {
        Report::Run(x) => (&x.profile, &x.target, x.thresholds.as_slice()),
        Report::Matrix(x) => (&x.profile, &x.target, &[][..]),
        Report::Chaos(x) => (&x.profile, &x.target, x.thresholds.as_slice()),
    };
    let verdict = if r.report.passed() { "✅ pass".to_string() } else { format!("❌ fail: {}", reason(r.report)) };
    let _ = writeln!(md, "### mcp-canary {} against {}: {verdict}\n", text(profile), text(target));
    match r.report {
        Report::Run(x) => run_figures(&mut md, x),
        Report::Matrix(x) => matrix_figures(&mut md, x),
        Report::Chaos(x) => chaos_figures(&mut md, x),
    }
    if !thresholds.is_empty() {
        md.push_str("\n| threshold | observed vs limit | result |\n|---|---|---|\n");
        for t in thresholds {
            let _ = writeln!(md, "| {} | {} | {} |", text(&t.threshold), text(&describe(t)), status(t));
        }
    }
    let mut links = Vec::new();
    if let Some(name) = r.html_path.and_then(Path::file_name) {
        let name = name.to_string_lossy();
        links.push(format!("[HTML report]({})", url_path(&name)));
    }
    if let Some(path) = r.report_path {
        links.push(format!("JSON report: {}", text(&path.display().to_string())));
    }
    if !links.is_empty() {
        let _ = writeln!(md, "\n{}", links.join(" · "));
    }
    md
}

/// Why the run failed, in a few words.
fn reason(report: &Report) -> String {
    let failed = |ts: &[ThresholdResult]| -> Vec<String> {
        ts.iter().filter(|t| !t.passed).map(|t| format!("{} ({})", text(&t.threshold), t.status.as_str())).collect()
    };
    let mut parts = Vec::new();
    let (aborted, abort_reason, verdict_reason, ts) = match report {
        Report::Run(x) => (x.aborted, &x.abort_reason, &x.verdict_reason, x.thresholds.as_slice()),
        Report::Chaos(x) => {
            let not_injected: Vec<String> = x.scenarios.iter().filter(|s| !s.injected).map(|s| text(&s.name)).collect();
            if !not_injected.is_empty() {
                parts.push(format!("not injected: {}", not_injected.join(", ")));
            }
            (x.aborted, &x.abort_reason, &x.verdict_reason, x.thresholds.as_slice())
        }
        Report::Matrix(x) => {
            let broken = x.cells.iter().filter(|c| c.result == CellResult::Broken).count();
            return format!("{broken} broken cell{}", if broken == 1 { "" } else { "s" });
        }
    };
    if aborted {
        parts.push(format!("aborted ({})", text(abort_reason.as_deref().unwrap_or("cancelled"))));
    }
    if let Some(reason) = verdict_reason {
        parts.push(text(reason));
    }
    let failed = failed(ts);
    if !failed.is_empty() {
        parts.push(format!("thresholds not met: {}", failed.join(", ")));
    }
    if parts.is_empty() { "see the report".into() } else { parts.join("; ") }
}

fn status(t: &ThresholdResult) -> &'static str {
    match t.status {
        ThresholdStatus::Pass if t.passed => "✅ pass",
        ThresholdStatus::NoData => "❌ no data",
        _ => "❌ fail",
    }
}

fn ms(v: f64) -> String {
    format_seconds(v / 1000.0)
}

fn pct(v: f64) -> String {
    let s = format!("{:.3}", v * 100.0);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

fn requests_table(md: &mut String, total: &OpSummary, elapsed_s: f64) {
    let throughput = if elapsed_s > 0.0 { total.count as f64 / elapsed_s } else { 0.0 };
    md.push_str("| requests | error rate | throughput | p50 | p95 | p99 |\n|---|---|---|---|---|---|\n");
    let _ = writeln!(
        md,
        "| {} | {} | {:.1}/s | {} | {} | {} |",
        thousands(total.count + total.shed),
        pct(total.error_rate),
        throughput,
        ms(total.latency.p50_ms),
        ms(total.latency.p95_ms),
        ms(total.latency.p99_ms)
    );
}

fn run_figures(md: &mut String, r: &RunReport) {
    if let Some(load) = &r.load {
        requests_table(md, &load.total, r.elapsed_s);
    }
    if let Some(n) = &r.notify {
        md.push_str("| delivery | expected | received | sessions missing any | p50 | p95 | p99 |\n");
        md.push_str("|---|---|---|---|---|---|---|\n");
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            pct(n.delivery_ratio),
            thousands(n.expected),
            thousands(n.received),
            thousands(n.sessions_missing_any),
            ms(n.latency.p50_ms),
            ms(n.latency.p95_ms),
            ms(n.latency.p99_ms)
        );
    }
    if let Some(l) = &r.longevity {
        let memory = l.target_memory.as_ref().map_or("not sampled".to_string(), |m| {
            let growth = m.growth_ratio.map_or("n/a".into(), pct);
            let slope = m.slope_bytes_per_hour.map_or("n/a".into(), |s| format!("{:.1} MB/h", s / 1e6));
            format!("growth {growth}, slope {slope} over {} samples", thousands(m.samples))
        });
        let _ = writeln!(
            md,
            "\nSessions ended: {} clean, {} without DELETE. Target memory: {memory}.",
            thousands(l.sessions_ended_clean),
            thousands(l.sessions_ended_unclean)
        );
    }
    if r.load.is_none() && r.notify.is_none() {
        let _ = writeln!(md, "Ran {}.", format_seconds(r.elapsed_s));
    }
}

fn matrix_figures(md: &mut String, r: &MatrixReport) {
    let count = |res: CellResult| r.cells.iter().filter(|c| c.result == res).count();
    let _ = writeln!(md, "Server: {} {}\n", text(&r.server_name), text(&r.server_version));
    md.push_str("| works | not exercised | degraded | broken |\n|---|---|---|---|\n");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} |",
        count(CellResult::Works),
        count(CellResult::NotExercised),
        count(CellResult::Degraded),
        count(CellResult::Broken)
    );
    let broken: Vec<_> = r.cells.iter().filter(|c| c.result == CellResult::Broken).collect();
    if !broken.is_empty() {
        md.push_str("\nBroken cells:\n");
        for c in broken.iter().take(MAX_BROKEN) {
            let why: Vec<String> = c
                .checks
                .iter()
                .filter(|k| k.result == CellResult::Broken)
                .map(|k| format!("{}: {}", k.feature, k.detail))
                .collect();
            let _ = writeln!(md, "- {}: {}", text(&cell_name(c)), text(&why.join("; ")));
        }
        if broken.len() > MAX_BROKEN {
            let _ = writeln!(md, "- and {} more", broken.len() - MAX_BROKEN);
        }
    }
}

fn chaos_figures(md: &mut String, r: &ChaosReport) {
    md.push_str("| scenario | injected | detected after | recovered after |\n|---|---|---|---|\n");
    for s in &r.scenarios {
        let detect = s.detect_s.map_or("not detected".into(), format_seconds);
        let recover = match s.recover_s {
            Some(v) if s.recovered => format_seconds(v),
            _ => "not recovered".into(),
        };
        let injected = if s.injected { "yes" } else { "no" };
        let _ = writeln!(md, "| {} | {injected} | {detect} | {recover} |", text(&s.name));
    }
}

/// Text from the report, safe in a Markdown table cell, a heading or a list item: control
/// characters (newlines too) as `?`, cut to [`MAX_TEXT`]; `<`, `>` and `&` as entities;
/// Markdown punctuation (`|`, backticks, emphasis, brackets, `!`) backslash-escaped.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s, MAX_TEXT).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '!' | '~' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A file name as a relative link: anything but unreserved characters percent-encoded.
fn url_path(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_cannot_break_a_table_or_inject_markup() {
        let hostile = "a|b`c`<img src=x onerror=alert(1)>\n| x | y |\r\n[link](http://evil)![i](x)\u{1b}[31m&amp;";
        let t = text(hostile);
        assert!(!t.contains('\n') && !t.contains('\r') && !t.contains('\u{1b}'), "{t}");
        assert!(!t.contains('<') && !t.contains('>'), "{t}");
        // Every `|` and backtick is escaped.
        let bytes: Vec<char> = t.chars().collect();
        for (i, c) in bytes.iter().enumerate() {
            if matches!(c, '|' | '`' | '[' | ']') {
                assert_eq!(bytes[i - 1], '\\', "unescaped {c} at {i} in {t}");
            }
        }
        assert!(t.contains("&amp;amp;"), "{t}");
        assert_eq!(text(&"x".repeat(1000)).chars().count(), MAX_TEXT);
        assert_eq!(url_path("run report (1).html"), "run%20report%20%281%29.html");
    }

    #[test]
    fn a_hostile_server_cannot_inject_into_the_summary_or_the_junit_file() {
        use crate::profile::matrix::{CapabilityProfile, CellReport, Check, ResponseMode};
        let hostile = "srv</x>|`a`\n## owned\r\n<script>alert(1)</script>[c](http://e)\u{1b}[2J";
        let cell = CellReport {
            capabilities: CapabilityProfile::All,
            response_mode: ResponseMode::JsonOnly,
            protocol_version: hostile.into(),
            result: CellResult::Broken,
            checks: vec![Check { feature: "tools".into(), result: CellResult::Broken, detail: hostile.into() }],
            server_requests: vec![],
            server_capabilities: serde_json::json!({}),
            elapsed_ms: 1.0,
        };
        let report = Report::Matrix(Box::new(MatrixReport {
            format: 1,
            profile: "matrix".into(),
            target: hostile.into(),
            started_at: 0.0,
            ended_at: 1.0,
            server_name: hostile.into(),
            server_version: hostile.into(),
            versions: vec![],
            cells: vec![cell],
            summary: Default::default(),
            verdict: "fail".into(),
        }));
        let r = Rendering {
            report: &report,
            baseline: None,
            report_path: Some(Path::new("out/r.json")),
            html_path: Some(Path::new("out/run (1).html")),
        };
        let md = render(&r);
        assert!(!md.contains('<') && !md.contains('\u{1b}'), "{md}");
        assert!(!md.lines().any(|l| l.starts_with("## ")), "a heading injected: {md}");
        assert!(!md.contains("](http"), "a link injected: {md}");
        assert!(md.starts_with("### mcp-canary matrix against srv&lt;/x&gt;\\|\\`a\\`?\\#\\# owned"), "{md}");
        assert!(md.contains("❌ fail: 1 broken cell\n"), "{md}");
        assert!(md.contains("[HTML report](run%20%281%29.html) · JSON report: out/r.json"), "{md}");
        assert_eq!(md.lines().filter(|l| l.starts_with("- ")).count(), 1, "one broken cell listed: {md}");

        let xml = super::super::junit::render(&report);
        let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        let cases = &back.test_suites[0].test_cases;
        assert_eq!(cases.len(), 2, "{xml}");
        assert!(cases.iter().all(|c| matches!(c.status, quick_junit::TestCaseStatus::NonSuccess { .. })), "{xml}");
    }

    #[test]
    fn a_row_with_a_hostile_name_keeps_its_cell_count() {
        let hostile = "x|y|z\n|---|";
        let t = ThresholdResult {
            threshold: format!("{hostile}:p95<50ms"),
            passed: false,
            status: ThresholdStatus::Fail,
            observed: 0.0724,
            samples: 1200,
        };
        let row = format!("| {} | {} | {} |", text(&t.threshold), text(&describe(&t)), status(&t));
        assert_eq!(row.lines().count(), 1, "{row}");
        let unescaped = row.char_indices().filter(|(i, c)| *c == '|' && !row[..*i].ends_with('\\')).count();
        assert_eq!(unescaped, 4, "{row}");
        assert!(row.contains("72.4ms, limit &lt; 50ms over 1,200 samples"), "{row}");
    }
}
