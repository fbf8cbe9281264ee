//! The JSON Schema of the JSON report (`docs/report.schema.json`): one schema accepting any of
//! the three report kinds, generated from the report types so it cannot drift from them (a test
//! compares the committed file with what this module generates).

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::chaos::report::{CHAOS_REPORT_FORMAT, ChaosReport};
use crate::profile::matrix::{MATRIX_REPORT_FORMAT, MatrixReport};
use crate::profile::report::{REPORT_FORMAT, RunReport};

/// Where the schema is committed, from the repository's root.
pub const SCHEMA_PATH: &str = "docs/report.schema.json";

/// The report schema (JSON Schema draft 2020-12): `anyOf` a run report (load, notify,
/// longevity), a matrix report and a chaos report, their types under `$defs`; object keys
/// sorted, so the rendered file is stable.
pub fn report_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let kinds = [
        generator.subschema_for::<RunReport>(),
        generator.subschema_for::<MatrixReport>(),
        generator.subschema_for::<ChaosReport>(),
    ];
    let defs = generator.take_definitions(true);
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("urn:mcp-canary:report:run-{REPORT_FORMAT}:matrix-{MATRIX_REPORT_FORMAT}:chaos-{CHAOS_REPORT_FORMAT}"),
        "title": format!(
            "mcp-canary report (run format {REPORT_FORMAT}, matrix format {MATRIX_REPORT_FORMAT}, chaos format {CHAOS_REPORT_FORMAT})"
        ),
        "description": "The JSON report `mcp-canary run <profile> --report FILE` (and the daemon's scheduled profiles) \
            write: a run report (profiles load, notify and longevity), a matrix report or a chaos report. \
            See docs/reports.md.",
        "anyOf": kinds.iter().map(|s| s.as_value().clone()).collect::<Vec<_>>(),
        "$defs": Value::Object(defs),
    });
    sorted(schema)
}

/// The schema as committed: pretty JSON with a final newline.
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&report_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// `value` with every object's keys in sorted order (whatever map serde_json was built with).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schema is what the report types generate; `UPDATE_SCHEMA=1` rewrites it.
    #[test]
    fn committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
        let generated = render();
        if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date with the report types: run `UPDATE_SCHEMA=1 cargo test --lib report::schema` and commit it",
            path.display()
        );
    }

    #[test]
    fn root_names_the_draft_and_the_three_kinds() {
        let s = report_schema();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let kinds: Vec<&str> = s["anyOf"].as_array().unwrap().iter().map(|k| k["$ref"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["#/$defs/RunReport", "#/$defs/MatrixReport", "#/$defs/ChaosReport"]);
        assert!(s["title"].as_str().unwrap().contains(&format!("run format {REPORT_FORMAT}")));
    }

    /// Load fields are flattened from an optional section: a notify report has none of them, a
    /// load report all of them; optional fields are never required; unknown fields pass.
    #[test]
    fn serde_attributes_come_out_right() {
        let s = report_schema();
        let run = &s["$defs"]["RunReport"];
        let required: Vec<&str> = run["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for optional in
            ["params", "slots", "total", "notify", "longevity", "timeline", "thresholds_origin", "verdict_reason"]
        {
            assert!(!required.contains(&optional), "{optional} required: {required:?}");
        }
        assert!(run["properties"]["params"].is_object(), "flattened load fields are listed");
        assert_eq!(run["dependentRequired"]["params"], json!(["slots", "total", "operations", "connect"]));
        assert_eq!(run["dependentRequired"]["connect"], json!(["params", "slots", "total", "operations"]));
        assert_eq!(run["properties"]["verdict"]["enum"], json!(["pass", "fail"]));
        let point = &s["$defs"]["TimelinePoint"];
        let required = point["required"].as_array().unwrap();
        assert!(!required.contains(&json!("p95_ms")) && !required.contains(&json!("deliveries")));
        let statuses: Vec<&Value> =
            s["$defs"]["ThresholdStatus"]["oneOf"].as_array().unwrap().iter().map(|v| &v["const"]).collect();
        assert_eq!(statuses, [&json!("pass"), &json!("fail"), &json!("no_data")], "snake_case names");
        let text = render();
        assert!(!text.contains("\"additionalProperties\": false"), "a newer field must not fail an older schema");
    }
}
