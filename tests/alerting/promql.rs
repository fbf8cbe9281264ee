//! Helpers for the rule, dashboard and alerting tests: where the shipped files are, the PromQL
//! expressions in them, the metric names those expressions use, and test copies of the rules
//! with shortened windows.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yml_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v
}

/// Recording rules first (the order Prometheus should load them in), then alert rules.
pub fn rule_files() -> Vec<PathBuf> {
    let mut v = yml_in(&repo().join("prometheus/rules"));
    v.extend(yml_in(&repo().join("alerts")));
    v
}

/// Rule files whose metrics the daemon of tests/alerting/alerting_end_to_end.rs never exports (it has no
/// `redis` target and runs no profile): (file, the test that checks them on a live scrape instead
/// by calling `rule_file_metric_names` with that file).
pub const LIVE_CHECKED_ELSEWHERE: &[(&str, &str)] = &[
    ("alerts/inspectors.yml", "tests/alerting/redis_inspector.rs"),
    ("alerts/profiles.yml", "tests/profiles/load_profile.rs"),
    ("alerts/scheduled.yml", "tests/daemon/daemon_profiles.rs"),
    ("alerts/coordination.yml", "tests/daemon/daemon_ha.rs"),
    ("alerts/instances.yml", "tests/daemon/daemon_instances.rs"),
    ("alerts/longevity.yml", "tests/profiles/longevity_profile.rs"),
    ("alerts/auth.yml", "tests/daemon/daemon_oauth.rs"),
];

/// Dashboards whose metrics only a profile run exports, queried by the end-to-end test against
/// the run it starts: (file, the test that checks their metric names on a live scrape by calling
/// `dashboard_metric_names` with that file).
pub const DASHBOARD_NAMES_CHECKED_ELSEWHERE: &[(&str, &str)] =
    &[("grafana/dashboards/longevity.json", "tests/profiles/longevity_profile.rs")];

/// The exported metric names the expressions of one rule file (relative to the repository)
/// select: recording rules and `up` left out.
pub fn rule_file_metric_names(rel: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let recorded = recorded_names();
    let names: BTreeSet<String> = yaml_values(&text, "expr")
        .iter()
        .flat_map(|e| metric_names(e))
        .filter(|n| n != "up" && !recorded.contains(n))
        .collect();
    assert!(!names.is_empty(), "{rel} selects no metric");
    names
}

/// The exported metric names the queries of one dashboard (relative to the repository) select:
/// recording rules left out.
pub fn dashboard_metric_names(rel: &str) -> BTreeSet<String> {
    let file = Path::new(rel).file_name().unwrap().to_string_lossy().to_string();
    let recorded = recorded_names();
    let names: BTreeSet<String> = dashboard_queries()
        .into_iter()
        .filter(|(f, _, _)| *f == file)
        .flat_map(|(_, _, e)| metric_names(&grafana_to_promql(&e)))
        .filter(|n| !recorded.contains(n))
        .collect();
    assert!(!names.is_empty(), "{rel} selects no metric");
    names
}

pub fn alert_test_files() -> Vec<PathBuf> {
    yml_in(&repo().join("alerts/tests"))
}

pub fn dashboard_files() -> Vec<PathBuf> {
    let dir = repo().join("grafana/dashboards");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

/// The value of every `KEY:` in a rules file, following `|` block scalars.
pub fn yaml_values(text: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let prefix = format!("{key}:");
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start().trim_start_matches("- ");
        let Some(rest) = t.strip_prefix(&prefix) else { continue };
        let rest = rest.trim();
        if rest == "|" || rest == ">" {
            let indent = line.len() - line.trim_start().len();
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            out.push(body.join("\n"));
        } else {
            out.push(rest.trim_matches('"').to_string());
        }
    }
    out
}

/// Every recording rule name defined in the repository.
pub fn recorded_names() -> BTreeSet<String> {
    rule_files().iter().flat_map(|f| yaml_values(&std::fs::read_to_string(f).unwrap(), "record")).collect()
}

/// (file, panel title, expr) for every query of every dashboard, including template variables.
pub fn dashboard_queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in dashboard_files() {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let mut stack: Vec<&serde_json::Value> = json["panels"].as_array().unwrap().iter().collect();
        while let Some(p) = stack.pop() {
            if let Some(nested) = p["panels"].as_array() {
                stack.extend(nested);
            }
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{name}: a target without expr")).to_string();
                out.push((name.clone(), p["title"].as_str().unwrap_or("").to_string(), expr));
            }
        }
        for v in json["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] == "query" {
                let q = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap().to_string();
                out.push((name.clone(), format!("variable {}", v["name"]), label_values_metric(&q)));
            }
        }
    }
    out
}

/// Dashboards the daemon of tests/alerting/alerting_end_to_end.rs cannot feed (profile runs, balanced
/// targets, chaos, a fleet with a failing target, a static JWT and two canary replicas):
/// (dashboard, the test that runs every panel query of it against a real Prometheus, by calling
/// `dashboards_checked_by(file!())`).
pub const DASHBOARDS_CHECKED_ELSEWHERE: &[(&str, &str)] = &[
    ("profiles.json", "tests/alerting/dashboards_profiles.rs"),
    ("chaos.json", "tests/alerting/dashboards_profiles.rs"),
    ("replicas.json", "tests/alerting/dashboards_replicas.rs"),
    ("fleet.json", "tests/alerting/dashboards_fleet.rs"),
];

/// The dashboards `test` (its `file!()`) is listed for in `DASHBOARDS_CHECKED_ELSEWHERE`.
pub fn dashboards_checked_by(test: &str) -> Vec<&'static str> {
    let v: Vec<&str> = DASHBOARDS_CHECKED_ELSEWHERE.iter().filter(|(_, t)| *t == test).map(|(d, _)| *d).collect();
    assert!(!v.is_empty(), "{test} checks no dashboard of DASHBOARDS_CHECKED_ELSEWHERE");
    v
}

/// Whether `file` (a dashboard file name) is checked by another test than the end-to-end one.
pub fn checked_elsewhere(file: &str) -> bool {
    DASHBOARDS_CHECKED_ELSEWHERE.iter().any(|(d, _)| *d == file)
}

/// `dashboard_queries` of the dashboards the canary daemon alone feeds.
pub fn daemon_dashboard_queries() -> Vec<(String, String, String)> {
    dashboard_queries().into_iter().filter(|(f, _, _)| !checked_elsewhere(f)).collect()
}

/// (panel title, expr, instant) of every query of one dashboard, annotations included (as range
/// queries: Grafana evaluates them over the shown time range), and the series each query variable
/// reads (instant).
pub fn dashboard_panel_queries(file: &str) -> Vec<(String, String, bool)> {
    let path = repo().join("grafana/dashboards").join(file);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut stack: Vec<&serde_json::Value> = json["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = stack.pop() {
        stack.extend(p["panels"].as_array().into_iter().flatten());
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("").to_string();
            out.push((title, t["expr"].as_str().unwrap().to_string(), t["instant"] == true));
        }
    }
    for a in json["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = a["expr"].as_str() {
            out.push((format!("annotation {}", a["name"]), expr.to_string(), false));
        }
    }
    for v in json["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap();
            out.push((format!("variable {}", v["name"]), label_values_metric(q), true));
        }
    }
    out
}

/// `label_values(METRIC, label)` -> `METRIC` (the series the variable reads).
fn label_values_metric(q: &str) -> String {
    let inner = q.trim().strip_prefix("label_values(").and_then(|s| s.strip_suffix(')')).unwrap_or(q);
    inner.split(',').next().unwrap().trim().to_string()
}

/// Grafana's variables replaced by values a plain Prometheus query accepts.
pub fn grafana_to_promql(expr: &str) -> String {
    expr.replace("${target}", ".*")
        .replace("$target", ".*")
        .replace("${profile}", ".*")
        .replace("$profile", ".*")
        .replace("${replica}", ".*")
        .replace("$replica", ".*")
        .replace("${scenario}", ".*")
        .replace("$scenario", ".*")
        .replace("$__rate_interval", "20s")
        .replace("$__interval", "5s")
        .replace("$__range", "1m")
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2", // operators and literals
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// The metric names an expression selects (label matchers, ranges, functions and grouping
/// clauses removed).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let skip_to = |i: usize, open: char, close: char| -> usize {
        let mut depth = 0;
        let mut j = i;
        let mut in_str = false;
        while j < chars.len() {
            let c = chars[j];
            if in_str {
                if c == '\\' {
                    j += 1;
                } else if c == '"' {
                    in_str = false;
                }
            } else if c == '"' {
                in_str = true;
            } else if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_to(i, '{', '}');
        } else if c == '[' {
            i = skip_to(i, '[', ']');
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            i = j + 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut k = i;
            while k < chars.len() && chars[k].is_whitespace() {
                k += 1;
            }
            let call = k < chars.len() && chars[k] == '(';
            if GROUPING.contains(&word.as_str()) {
                if call {
                    i = skip_to(k, '(', ')');
                }
            } else if !call && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                out.insert(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Scale every range `[Nm|Nh|Nd]` and `for: N` in a rules file so one minute becomes one second:
/// the test copies keep the real rules' logic, thresholds and names, only their clock is 60x faster.
pub fn fast_rules(text: &str) -> String {
    fn secs(n: u64, unit: &str) -> Option<u64> {
        match unit {
            "m" => Some(n),
            "h" => Some(n * 60),
            "d" => Some(n * 1440),
            _ => None,
        }
    }
    fn scale(d: &str) -> Option<String> {
        let split = d.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = d.split_at(split);
        Some(format!("{}s", secs(n.parse().ok()?, unit)?))
    }
    let mut out = String::new();
    for line in text.lines() {
        let mut l = line.to_string();
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if let Some(d) = l.trim().strip_prefix("for: ") {
            let indent = &line[..line.len() - line.trim_start().len()];
            l = format!("{indent}for: {}", scale(d.trim()).unwrap_or_else(|| panic!("cannot scale for: {d}")));
        }
        let mut rebuilt = String::new();
        let mut rest = l.as_str();
        while let Some(open) = rest.find('[') {
            let close = rest[open..].find(']').map(|c| open + c).expect("unclosed [");
            rebuilt.push_str(&rest[..open]);
            let inner = &rest[open + 1..close];
            let scaled = scale(inner).unwrap_or_else(|| panic!("cannot scale range [{inner}]"));
            rebuilt.push_str(&format!("[{scaled}]"));
            rest = &rest[close + 1..];
        }
        rebuilt.push_str(rest);
        out.push_str(&rebuilt);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_metric_names() {
        let e = r#"sum by (target, le) (rate(a_bucket{x="y{z}", le="0.5"}[5m])) / on() group_left() b:rec:ratio_rate5m > 14.4 * (1 - scalar(c{slo="a"}))"#;
        let names: Vec<_> = metric_names(e).into_iter().collect();
        assert_eq!(names, ["a_bucket", "b:rec:ratio_rate5m", "c"]);
    }

    #[test]
    fn scales_windows_and_for() {
        let t = "        expr: rate(x[5m]) / rate(x[1h]) + rate(x[3d])\n        for: 2m\n";
        assert_eq!(fast_rules(t), "        expr: rate(x[5s]) / rate(x[60s]) + rate(x[4320s])\n        for: 2s\n");
    }
}
