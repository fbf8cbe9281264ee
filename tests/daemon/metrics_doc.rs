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

/// The Prometheus/OTLP mapping table lists exactly what the catalogue and the OTLP bridge do: every
/// metric with an OpenTelemetry name, every label with a semantic-convention attribute key, the
/// attributes only OTLP adds and those only spans carry.
#[test]
fn docs_map_prometheus_to_otlp_as_the_bridge_does() {
    use mcp_canary::telemetry::catalogue::{find, otel_attribute};
    use mcp_canary::telemetry::semconv::{OTLP_ONLY_ATTRIBUTES, SPAN_ONLY_ATTRIBUTES};
    use std::collections::BTreeSet;

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let doc = std::fs::read_to_string(&path).expect("docs/metrics.md exists");
    let unquote = |c: &str| c.trim().trim_matches('`').to_string();
    let mut rows: BTreeSet<(String, String, String)> = BTreeSet::new();
    for line in section(&doc, "otlp").lines().skip(2) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        assert_eq!(cells.len(), 4, "malformed row: {line}");
        let row = (cells[0].trim().to_string(), unquote(cells[1]), unquote(cells[2]));
        assert!(rows.insert(row.clone()), "duplicate row {row:?}");
    }

    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    for def in CATALOGUE.iter().filter(|d| d.otel_name.is_some()) {
        expected.insert(("metric".into(), def.name.into(), def.otlp_name().into()));
    }
    for label in CATALOGUE.iter().flat_map(|d| d.labels.iter()) {
        if otel_attribute(label) != *label {
            expected.insert(("label".into(), label.to_string(), otel_attribute(label).into()));
        }
    }
    for attr in OTLP_ONLY_ATTRIBUTES {
        expected.insert(("OTLP only".into(), String::new(), attr.to_string()));
    }
    for attr in SPAN_ONLY_ATTRIBUTES {
        expected.insert(("span only".into(), String::new(), attr.to_string()));
    }
    let missing: Vec<_> = expected.difference(&rows).collect();
    let extra: Vec<_> = rows.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/metrics.md otlp table: missing {missing:?}, not so {extra:?}"
    );
    // Metric rows name real catalogue entries.
    for (kind, prom, otlp) in &rows {
        if kind == "metric" {
            assert_eq!(find(prom).map(|d| d.otlp_name()), Some(otlp.as_str()), "{prom}");
        }
    }
}
