//! `docs/metrics.md` lists exactly the catalogue: names, kinds, labels and help, in order.

use mcp_canary::telemetry::catalogue::{CATALOGUE, Kind, PROCESS_METRICS};

const BEGIN: &str = "<!-- catalogue:begin -->";
const END: &str = "<!-- catalogue:end -->";

fn expected_table() -> String {
    let mut out = String::from("| name | type | labels | description |\n|---|---|---|---|\n");
    for m in CATALOGUE {
        let kind = match m.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let labels = m.labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ");
        out.push_str(&format!("| `{}` | {kind} | {labels} | {} |\n", m.name, m.help));
    }
    for p in PROCESS_METRICS {
        out.push_str(&format!("| `{p}` | process | | The daemon's own process (CPU, memory, file descriptors). |\n"));
    }
    out
}

#[test]
fn docs_list_exactly_the_catalogue() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let doc = std::fs::read_to_string(&path).expect("docs/metrics.md exists");
    let begin = doc.find(BEGIN).expect("begin marker") + BEGIN.len();
    let end = doc.find(END).expect("end marker");
    let table = doc[begin..end].trim();
    let expected = expected_table();
    assert_eq!(
        table,
        expected.trim(),
        "docs/metrics.md is out of step with the catalogue; the table should read:\n{expected}"
    );
}
