//! `docs/metrics.md` lists exactly the catalogue: names, kinds, labels and help, in order, for
//! the daemon, the `/probe` answer and the reference target.

use mcp_canary::mcp::ErrorType;
use mcp_canary::telemetry::catalogue::{
    CATALOGUE, Kind, MetricDef, PROBE_ENDPOINT_CATALOGUE, PROCESS_METRICS, TARGET_CATALOGUE,
};

fn table(defs: &[MetricDef]) -> String {
    let mut out = String::from("| name | type | labels | description |\n|---|---|---|---|\n");
    for m in defs {
        let kind = match m.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let labels = m.labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ");
        out.push_str(&format!("| `{}` | {kind} | {labels} | {} |\n", m.name, m.help));
    }
    out
}

fn daemon_table() -> String {
    let mut out = table(CATALOGUE);
    for p in PROCESS_METRICS {
        out.push_str(&format!("| `{p}` | process | | The daemon's own process (CPU, memory, file descriptors). |\n"));
    }
    out
}

/// The text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`, trimmed.
fn section<'a>(doc: &'a str, name: &str) -> &'a str {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = doc.find(&begin).unwrap_or_else(|| panic!("marker {begin} missing")) + begin.len();
    let stop = doc.find(&end).unwrap_or_else(|| panic!("marker {end} missing"));
    doc[start..stop].trim()
}

#[test]
fn docs_list_exactly_the_catalogue() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let doc = std::fs::read_to_string(&path).expect("docs/metrics.md exists");
    let sections = [
        ("catalogue", daemon_table()),
        ("target", table(TARGET_CATALOGUE)),
        ("probe", table(PROBE_ENDPOINT_CATALOGUE)),
    ];
    for (name, expected) in sections {
        assert_eq!(
            section(&doc, name),
            expected.trim(),
            "docs/metrics.md section {name} is out of step with the catalogue; it should read:\n{expected}"
        );
    }
}

/// The `error_type` values the docs list are exactly the closed set, in order.
#[test]
fn docs_list_every_error_type() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let doc = std::fs::read_to_string(&path).expect("docs/metrics.md exists");
    let start = doc.find("- `error_type` is a closed set:").expect("the error_type paragraph");
    let end = start + doc[start..].find("empty on success").expect("its end");
    // Every backticked word of the paragraph that is a label value (skips header names and such).
    let listed: Vec<&str> = doc[start..end]
        .split('`')
        .skip(3)
        .step_by(2)
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .collect();
    let expected: Vec<&str> = ErrorType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(listed, expected, "docs/metrics.md lists other error_type values than ErrorType::ALL");
}
