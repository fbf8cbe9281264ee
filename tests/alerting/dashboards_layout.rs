//! Every shipped dashboard is well formed for Grafana: a unique uid, unique panel ids, panels
//! inside the 24-column grid without overlapping, every panel and query on the `datasource`
//! variable, unique query refIds per panel, and every `$variable` a query uses defined in the
//! dashboard and replaced by `promql::grafana_to_promql` (which the data tests rely on).

use crate::promql;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Every panel of a dashboard in document order, rows' nested panels after their row.
fn panels(json: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in json["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(panels(p));
    }
    out
}

/// The `$name` and `${name}` references in an expression, Grafana's `$__` built-ins left out.
fn variables(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for part in expr.split('$').skip(1) {
        let name: String =
            part.trim_start_matches('{').chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() && !name.starts_with("__") {
            out.insert(name);
        }
    }
    out
}

fn problems(name: &str, json: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let defined: BTreeSet<String> = json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["name"].as_str().unwrap_or("").to_string())
        .collect();
    if !defined.contains("datasource") {
        bad.push(format!("{name}: no datasource variable"));
    }
    let mut ids = BTreeSet::new();
    let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for p in panels(json) {
        let title = p["title"].as_str().unwrap_or("").to_string();
        let at = format!("{name} / {title}");
        if !ids.insert(p["id"].as_u64().unwrap_or_else(|| panic!("{at}: no numeric id"))) {
            bad.push(format!("{at}: id {} used twice", p["id"]));
        }
        let g = |k: &str| p["gridPos"][k].as_u64().unwrap_or_else(|| panic!("{at}: no gridPos.{k}"));
        let (x, y, w, h) = (g("x"), g("y"), g("w"), g("h"));
        if w == 0 || h == 0 || x + w > 24 {
            bad.push(format!("{at}: gridPos outside the 24-column grid"));
        }
        'cells: for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), title.clone()) {
                    bad.push(format!("{at}: overlaps {other}"));
                    break 'cells;
                }
            }
        }
        if p["type"] == "row" {
            continue;
        }
        if p["datasource"]["uid"] != "${datasource}" {
            bad.push(format!("{at}: datasource is not ${{datasource}}"));
        }
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
        if targets.is_empty() {
            bad.push(format!("{at}: no query"));
        }
        let mut refs = BTreeSet::new();
        for t in targets {
            if !refs.insert(t["refId"].as_str().unwrap_or("")) {
                bad.push(format!("{at}: refId {} used twice", t["refId"]));
            }
            if t["datasource"]["uid"] != "${datasource}" {
                bad.push(format!("{at}: query {} not on ${{datasource}}", t["refId"]));
            }
        }
    }
    bad
}

/// Variables the queries of a shipped dashboard use but it does not define, or that
/// `grafana_to_promql` leaves in place.
fn variable_problems(name: &str, json: &Value) -> Vec<String> {
    let defined: BTreeSet<String> =
        json["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().into()).collect();
    let mut bad = Vec::new();
    for (title, expr, _) in promql::dashboard_panel_queries(name) {
        for v in variables(&expr).difference(&defined) {
            bad.push(format!("{name} / {title}: ${v} is not a variable of the dashboard"));
        }
        let q = promql::grafana_to_promql(&expr);
        if q.contains('$') {
            bad.push(format!("{name} / {title}: grafana_to_promql leaves a variable in {q}"));
        }
    }
    bad
}

#[test]
fn every_dashboard_is_well_formed() {
    let files = promql::dashboard_files();
    assert!(files.len() >= 5, "{files:?}");
    let mut uids = BTreeSet::new();
    let mut bad = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        if !uids.insert(json["uid"].as_str().unwrap_or_else(|| panic!("{name}: no uid")).to_string()) {
            bad.push(format!("{name}: uid {} used by another dashboard", json["uid"]));
        }
        bad.extend(problems(&name, &json));
        bad.extend(variable_problems(&name, &json));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_checks_catch_what_they_name() {
    let json: Value = serde_json::json!({
        "uid": "x",
        "templating": {"list": [{"name": "datasource"}, {"name": "target"}]},
        "panels": [
            {"id": 1, "type": "stat", "title": "a", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 4},
             "datasource": {"uid": "${datasource}"},
             "targets": [{"refId": "A", "expr": "up", "datasource": {"uid": "${datasource}"}}]},
            {"id": 1, "type": "stat", "title": "b", "gridPos": {"x": 8, "y": 2, "w": 20, "h": 4},
             "datasource": {"uid": "prom"}, "targets": []},
        ],
    });
    let bad = problems("test.json", &json).join("\n");
    for expected in ["id 1 used twice", "outside the 24-column grid", "b: overlaps a", "datasource is not", "no query"]
    {
        assert!(bad.contains(expected), "{expected}: {bad}");
    }
    assert_eq!(
        variables("rate(x{a=~\"$target\",b=\"${replica}\"}[$__rate_interval])"),
        ["replica", "target"].map(String::from).into()
    );
}
