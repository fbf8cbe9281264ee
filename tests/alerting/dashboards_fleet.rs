//! The fleet dashboard against the real thing: two canary daemons (HA replicas, same config)
//! probe four targets: a healthy reference target, the same target behind a static bearer token
//! that is a JWT expiring in 48 h, the reference target protected by a real authorization server
//! (OAuth access token), and a closed port (failing). Debian's Prometheus scrapes both daemons
//! with the repository's recording rules, and a second Prometheus scrapes them natively (native
//! histograms: the latency queries through their native form). Every panel query of the dashboards
//! `promql::DASHBOARDS_CHECKED_ELSEWHERE` gives this test must execute and return data; the
//! table, ordered the way its sort transformation says, puts the failing target first; the stat
//! panels count each target once although two replicas export it.

use crate::common;
use crate::promql;
use crate::stack;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use common::{closed_addr, start_daemon, start_target};
use serde_json::Value;
use stack::{query, query_vector, start_prometheus};

const FILE: &str = "fleet.json";

fn dashboard(file: &str) -> Value {
    let path = promql::repo().join("grafana/dashboards").join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The fleet table: its panel JSON.
fn table() -> Value {
    let json = dashboard(FILE);
    let tables: Vec<&Value> = json["panels"].as_array().unwrap().iter().filter(|p| p["type"] == "table").collect();
    assert_eq!(tables.len(), 1, "{FILE}: one table");
    tables[0].clone()
}

/// The query of the table with `ref_id`, as Prometheus takes it.
fn table_query(table: &Value, ref_id: &str) -> String {
    let t = table["targets"].as_array().unwrap().iter().find(|t| t["refId"] == ref_id);
    let expr = t.unwrap_or_else(|| panic!("{FILE}: no table query {ref_id}"))["expr"].as_str().unwrap();
    promql::grafana_to_promql(expr)
}

/// The table's sort: (refId of the query whose value orders the rows, descending).
fn table_sort(table: &Value) -> (String, bool) {
    let t = table["transformations"].as_array().unwrap();
    let sort = t.iter().find(|t| t["id"] == "sortBy").unwrap_or_else(|| panic!("{FILE}: no sortBy transformation"));
    let join = t.iter().position(|t| t["id"] == "joinByField").expect("the queries joined by field");
    assert_eq!(t[join]["options"]["byField"], "target", "{FILE}: rows are not joined by target");
    let by = &sort["options"]["sort"][0];
    let field = by["field"].as_str().unwrap();
    // Grafana names the value of each query of a multi-query table `Value #<refId>`.
    let ref_id =
        field.strip_prefix("Value #").unwrap_or_else(|| panic!("{FILE}: sorted by {field}, not a query value"));
    (ref_id.to_string(), by["desc"] == true)
}

/// The value of the stat panel titled `title` (its single query) now.
async fn stat(prom: &str, title: &str) -> Result<f64, String> {
    let json = dashboard(FILE);
    let panel = json["panels"].as_array().unwrap().iter().find(|p| p["title"] == title && p["type"] == "stat");
    let panel = panel.unwrap_or_else(|| panic!("{FILE}: no stat panel {title:?}"));
    let expr = promql::grafana_to_promql(panel["targets"][0]["expr"].as_str().unwrap());
    let v = query_vector(prom, &expr).await?;
    match v.as_slice() {
        [(_, value)] => Ok(*value),
        _ => Err(format!("{title}: {} series, not one", v.len())),
    }
}

/// `target` -> value of one table query; fails on a series without `target` or a target twice.
async fn by_target(prom: &str, expr: &str) -> Result<BTreeMap<String, (BTreeMap<String, String>, f64)>, String> {
    let mut out = BTreeMap::new();
    for (labels, v) in query_vector(prom, expr).await? {
        let t = labels.get("target").cloned().ok_or_else(|| format!("a series without target: {labels:?}"))?;
        if out.insert(t.clone(), (labels, v)).is_some() {
            return Err(format!("target {t} twice (replicas not aggregated) in {expr}"));
        }
    }
    Ok(out)
}

/// A static bearer token that is a JWT with `exp` (unsigned: the canary only reads its expiry;
/// the unprotected reference target ignores it).
fn jwt(exp: u64) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.c2ln", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&format!(r#"{{"exp":{exp}}}"#)))
}

fn daemon_config(mcp_url: &str, protected_url: &str, down_url: &str, token: &str) -> String {
    let target = |name: &str, url: &str, extra: &str| {
        format!("\n[[targets]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1s\"\ntimeout = \"1s\"\n{extra}")
    };
    let oauth = format!(
        "[targets.oauth]\nclient_id = \"{}\"\nclient_secret_env = \"FLEET_OAUTH_SECRET\"\n",
        crate::oidc::BASIC_CLIENT.id
    );
    [
        "[server]\nlisten = \"127.0.0.1:0\"\n".to_string(),
        target("healthy", mcp_url, ""),
        target("static-jwt", mcp_url, &format!("bearer_token = \"{token}\"\n")),
        target("protected", protected_url, &oauth),
        target("down", down_url, ""),
    ]
    .concat()
}

const TARGETS: [&str; 4] = ["down", "healthy", "protected", "static-jwt"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_ranks_the_failing_target_first_and_counts_each_target_once_with_two_replicas() {
    let (_target, mcp_url) = start_target(&[]).await;
    let (_provider, _stop, protected_url) = crate::alerting_end_to_end::protected_target().await;
    let down_url = format!("http://{}/mcp", closed_addr());
    let now = mcp_canary::clock::unix_seconds();
    let expires = now + 48.0 * 3600.0;
    let config = daemon_config(&mcp_url, &protected_url, &down_url, &jwt(expires as u64));
    let env = [("FLEET_OAUTH_SECRET", crate::oidc::BASIC_CLIENT.secret)];
    let (daemon_a, _dir_a, base_a) = start_daemon("dash-fleet-a", &config, &env).await;
    let (daemon_b, _dir_b, base_b) = start_daemon("dash-fleet-b", &config, &env).await;
    let logs = || format!("{}\n{}", daemon_a.log_text(), daemon_b.log_text());

    let work = tempfile::tempdir().unwrap();
    let scrape = [&base_a, &base_b].map(|b| b.trim_start_matches("http://").to_string());
    let recording: Vec<_> =
        promql::rule_files().into_iter().filter(|f| f.starts_with(promql::repo().join("prometheus"))).collect();
    assert!(recording.len() >= 2, "{recording:?}");
    let (_prom, prom) = start_prometheus(work.path(), &scrape, &recording, None).await;
    // The same daemons scraped natively (native histograms over protobuf, no `_bucket`), the
    // same rules (sli-native.yml records the latency SLIs there).
    let native_work = tempfile::tempdir().unwrap();
    let jobs = [("mcp-canary", scrape.to_vec())];
    let native_flag = ["--enable-feature=native-histograms"];
    let (_native, native) =
        stack::start_prometheus_flags(native_work.path(), &jobs, &recording, None, &native_flag).await;

    // Both replicas scraped for every target, and the figures settled: one target failing and
    // burning its budget (after the low-traffic guard's bad events), one credential expiring,
    // every panel with data. Bounded: the first probes, token and rule evaluations take seconds.
    let settled = || async {
        let raw = query(&prom, "mcp_canary_probe_success").await?;
        let failing = stat(&prom, "Targets failing now").await?;
        let burning = stat(&prom, "Targets burning budget fast").await?;
        let (_, broken) = stack::broken_panels(&prom, FILE, Duration::from_secs(60)).await;
        if raw == 8 && failing == 1.0 && burning == 1.0 && broken.is_empty() {
            Ok(())
        } else {
            Err(format!("{raw} raw series, {failing} failing, {burning} burning, broken:\n{}", broken.join("\n")))
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while let Err(e) = settled().await {
        assert!(tokio::time::Instant::now() < deadline, "the fleet did not settle within 90 s: {e}\n{}", logs());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // On the native Prometheus too: the same stats, every panel with data (the latency queries
    // through their native form: it has no classic buckets).
    let settled_native = || async {
        let buckets = query(&native, "mcp_client_operation_duration_seconds_bucket").await?;
        let failing = stat(&native, "Targets failing now").await?;
        let burning = stat(&native, "Targets burning budget fast").await?;
        let (_, broken) = stack::broken_panels(&native, FILE, Duration::from_secs(60)).await;
        if buckets == 0 && failing == 1.0 && burning == 1.0 && broken.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{buckets} bucket series, {failing} failing, {burning} burning, broken:\n{}",
                broken.join("\n")
            ))
        }
    };
    while let Err(e) = settled_native().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "native: the fleet did not settle within 90 s: {e}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let p95 = by_target(&native, &table_query(&table(), "F")).await.unwrap();
    assert!(p95.contains_key("healthy") && p95["healthy"].1 > 0.0, "native p95: {p95:?}");

    // Every panel query of the dashboards this test is listed for runs and returns data.
    let mut broken = Vec::new();
    for file in promql::dashboards_checked_by(file!()) {
        let (n, b) = stack::broken_panels(&prom, file, Duration::from_secs(60)).await;
        assert!(n >= 14, "{file}: {n} queries");
        broken.extend(b);
    }
    assert!(broken.is_empty(), "broken panels:\n{}", broken.join("\n"));

    // Two replicas export every target (8 series), the stats count targets once.
    assert_eq!(query(&prom, "mcp_canary_probe_success").await, Ok(8), "both replicas are scraped");
    assert_eq!(stat(&prom, "Targets").await, Ok(4.0));
    assert_eq!(stat(&prom, "Targets failing now").await, Ok(1.0));
    assert_eq!(stat(&prom, "Targets burning budget fast").await, Ok(1.0));
    let raw_expiring = "count(mcp_canary_auth_credential_expiry_timestamp_seconds - time() < 72 * 3600)";
    assert_eq!(query_vector(&prom, raw_expiring).await.unwrap()[0].1, 2.0, "one credential, two replicas");
    assert_eq!(stat(&prom, "Credentials expiring within 72 h").await, Ok(1.0));

    // Every table query gives one row per target at most (the replicas aggregated), and the row
    // keys are the configured targets.
    let table = table();
    let targets: BTreeSet<String> = TARGETS.iter().map(|t| t.to_string()).collect();
    for t in table["targets"].as_array().unwrap() {
        let expr = promql::grafana_to_promql(t["expr"].as_str().unwrap());
        let rows = by_target(&prom, &expr).await.unwrap_or_else(|e| panic!("query {}: {e}", t["refId"]));
        let keys: BTreeSet<String> = rows.keys().cloned().collect();
        assert!(keys.is_subset(&targets), "query {}: rows {keys:?}", t["refId"]);
    }

    // Worst first: rows ordered as the sort transformation orders them (by its query's value,
    // descending) begin with the failing target, and every other target ranks strictly lower.
    let (sort_ref, desc) = table_sort(&table);
    assert!(desc, "{FILE}: the table must sort its score descending (worst first)");
    let score = by_target(&prom, &table_query(&table, &sort_ref)).await.unwrap();
    assert_eq!(score.keys().map(String::as_str).collect::<Vec<_>>(), TARGETS, "a row per target");
    let mut rows: Vec<(&String, f64)> = score.iter().map(|(t, (_, v))| (t, *v)).collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(rows[0].0, "down", "worst first: {rows:?}");
    assert!(rows[1].1 < rows[0].1, "the failing target is not strictly worst: {rows:?}");

    // What the columns show: the failing target FAILING and burning, its last error class the
    // refused connection; the healthy ones OK with a negotiated revision; the JWT's time left
    // about 48 h; the OAuth token not expired.
    let column = |r: &str| table_query(&table, r);
    let last = by_target(&prom, &column("B")).await.unwrap();
    let last: BTreeMap<&str, f64> = last.iter().map(|(t, (_, v))| (t.as_str(), *v)).collect();
    assert_eq!(last, BTreeMap::from([("down", 0.0), ("healthy", 1.0), ("protected", 1.0), ("static-jwt", 1.0)]));
    let burn = by_target(&prom, &column("D")).await.unwrap();
    assert!(burn["down"].1 > 14.4, "burn rate of down: {burn:?}");
    let errors = by_target(&prom, &column("G")).await.unwrap();
    assert_eq!(errors["down"].0.get("error_type").map(String::as_str), Some("connect"), "{errors:?}");
    let at = errors["down"].1 / 1000.0;
    assert!(at > now - 5.0 && at <= mcp_canary::clock::unix_seconds() + 1.0, "last error at {at}, test began {now}");
    let protocol = by_target(&prom, &column("H")).await.unwrap();
    for t in ["healthy", "protected", "static-jwt"] {
        let v = protocol.get(t).and_then(|(l, _)| l.get("mcp_protocol_version")).cloned().unwrap_or_default();
        assert!(!v.is_empty() && v != "other", "{t}: protocol {v:?}");
    }
    assert!(!protocol.contains_key("down"), "a protocol for a target never connected: {protocol:?}");
    let token = by_target(&prom, &column("I")).await.unwrap();
    assert!(token["protected"].1 > 0.0, "{token:?}");
    let credential = by_target(&prom, &column("J")).await.unwrap();
    let left = credential["static-jwt"].1;
    assert!(left > 47.0 * 3600.0 && left <= 48.0 * 3600.0, "credential expires in {left} s");
    assert_eq!(credential.len(), 1, "{credential:?}");
}

#[test]
fn target_cells_link_to_the_per_target_dashboards() {
    let table = table();
    let overrides = table["fieldConfig"]["overrides"].as_array().unwrap();
    let rename = &table["transformations"].as_array().unwrap().iter().find(|t| t["id"] == "organize").unwrap()["options"]
        ["renameByName"];
    let shown = rename["target"].as_str().unwrap_or("target");
    let links: Vec<&str> = overrides
        .iter()
        .filter(|o| o["matcher"]["id"] == "byName" && o["matcher"]["options"] == shown)
        .flat_map(|o| o["properties"].as_array().unwrap())
        .filter(|p| p["id"] == "links")
        .flat_map(|p| p["value"].as_array().unwrap())
        .map(|l| l["url"].as_str().unwrap())
        .collect();
    assert!(links.len() >= 2, "the target cell links to the overview and SLO dashboards: {links:?}");
    // Each link opens a shipped dashboard by uid with the row's target in that dashboard's
    // `target` variable, keeping the data source and the time range.
    let dashboards: BTreeMap<String, Value> = promql::dashboard_files()
        .iter()
        .map(|f| {
            let json: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            (json["uid"].as_str().unwrap().to_string(), json)
        })
        .collect();
    let mut opened = BTreeSet::new();
    for url in links {
        let uid = url.strip_prefix("/d/").and_then(|u| u.split('/').next()).unwrap_or_else(|| panic!("{url}"));
        let target = dashboards.get(uid).unwrap_or_else(|| panic!("{url}: no dashboard with uid {uid}"));
        let vars: BTreeSet<&str> =
            target["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert!(vars.contains("target") && url.contains("var-target=${__value.raw}"), "{url}");
        assert!(vars.contains("datasource") && url.contains("${datasource:queryparam}"), "{url}");
        assert!(url.contains("${__url_time_range}"), "{url}");
        opened.insert(uid.to_string());
    }
    assert!(opened.contains("mcp-canary-overview") && opened.contains("mcp-canary-slo"), "{opened:?}");
}

#[test]
fn every_stat_and_table_query_aggregates_by_target() {
    // Two replicas export the same series with different `instance` labels: every fleet query
    // must aggregate them away (`by (target)` or a count of such), never show raw series.
    let json = dashboard(FILE);
    for p in json["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            assert!(
                expr.contains("by (target") || expr.starts_with("count("),
                "{} / {}: not aggregated by target: {expr}",
                p["title"],
                t["refId"]
            );
            assert_eq!(t["instant"], true, "{} / {}: the fleet view is instant", p["title"], t["refId"]);
        }
    }
}
