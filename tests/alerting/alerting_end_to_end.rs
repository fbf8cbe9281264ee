//! The shipped rules, alerts, Alertmanager config and dashboards against the real thing:
//! Debian's `prometheus` and `prometheus-alertmanager`, started here on free loopback ports with
//! 1 s scrape and evaluation intervals, scraping a daemon that probes the reference target at 1 s.
//!
//! Short windows: Prometheus loads test copies of the real rule files made by
//! `promql::fast_rules`, which turns every minute into a second (`[1h]` -> `[60s]`, `for: 3m` ->
//! `for: 3s`); names, thresholds and logic stay those of the shipped files. The Alertmanager
//! config is deploy/alertmanager.yml with the receivers pointed at this test's webhook and
//! group_wait/group_interval shortened.

use crate::common;
use crate::promql;
use crate::stack;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Proc, admin, free_port, scrape_until, start_daemon, start_target};
use mcp_canary::telemetry::catalogue::{CATALOGUE, PROCESS_METRICS};
use stack::{query, spawn, start_prometheus_jobs, wait_ready};

/// The daemon's config: two targets on the reference target, and one on the reference target
/// protected by a real authorization server (`protected`, the OAuth token panels and alerts).
fn daemon_config(mcp_url: &str, protected_url: &str) -> String {
    let target = |name: &str, session: &str| {
        format!(
            r#"
[[targets]]
name = "{name}"
url = "{mcp_url}"
interval = "1s"
timeout = "1s"
protocol = "2025-11-25"
session = "{session}"
[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}
resource = "canary://static/hello"
prompt = "greeting"
prompt_arguments = {{ name = "canary" }}
[targets.notification]
tool = "notify"
arguments = {{ nonce = "{{nonce}}" }}
method = "notifications/message"
timeout = "900ms"
"#
        )
    };
    let protected = format!(
        r#"
[[targets]]
name = "protected"
url = "{protected_url}"
interval = "1s"
timeout = "1s"
[targets.oauth]
client_id = "{}"
client_secret_env = "ALERTING_OAUTH_SECRET"
"#,
        crate::oidc::BASIC_CLIENT.id
    );
    format!("[server]\nlisten = \"127.0.0.1:0\"\n{}{}{protected}", target("ref", "fresh"), target("warm", "persistent"))
}

/// The environment `daemon_config` names.
const DAEMON_ENV: &[(&str, &str)] = &[("ALERTING_OAUTH_SECRET", crate::oidc::BASIC_CLIENT.secret)];

/// The reference target behind a real authorization server (the provider stops when dropped,
/// the target with `stop` or the test's runtime).
pub async fn protected_target() -> (crate::oidc::OidcProvider, tokio_util::sync::CancellationToken, String) {
    let provider = crate::oidc::OidcProvider::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let oauth = mcp_canary::reference::OAuthOptions {
        issuer: provider.issuer.clone(),
        scopes: vec!["mcp:read".into()],
        tool_scopes: Vec::new(),
        resource: None,
    };
    let options = mcp_canary::reference::TargetOptions { oauth: Some(oauth), ..Default::default() };
    let handle = mcp_canary::reference::spawn(listener, options, stop.clone()).await.expect("protected target");
    (provider, stop, handle.mcp_url())
}

/// Every metric name in a rule or dashboard expression: a catalogue metric (histograms with their
/// `_bucket`/`_count`/`_sum` series), a recording rule defined in the repository, or `up`.
fn used_names() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for f in promql::rule_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        for e in promql::yaml_values(&text, "expr") {
            for n in promql::metric_names(&e) {
                out.insert((n, f.file_name().unwrap().to_string_lossy().to_string()));
            }
        }
    }
    for (file, title, e) in promql::dashboard_queries() {
        for n in promql::metric_names(&promql::grafana_to_promql(&e)) {
            out.insert((n, format!("{file}: {title}")));
        }
    }
    out
}

fn in_catalogue(name: &str) -> bool {
    let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
    CATALOGUE.iter().any(|m| m.name == name || (m.name == base && !m.buckets.is_empty()))
        || PROCESS_METRICS.contains(&name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_used_by_rules_and_dashboards_is_catalogued_and_exported() {
    let used = used_names();
    let recorded = promql::recorded_names();
    assert!(used.len() > 10, "{used:?}");
    for (name, place) in &used {
        assert!(
            name == "up" || recorded.contains(name) || in_catalogue(name),
            "{place} uses {name}: not in the catalogue, not a recording rule, not `up`"
        );
    }
    let (_target, mcp_url) = start_target(&[]).await;
    let (_provider, _stop, protected_url) = protected_target().await;
    let (daemon, _dir, base) =
        start_daemon("alerting-names", &daemon_config(&mcp_url, &protected_url), DAEMON_ENV).await;
    // Rule files whose metrics this daemon cannot export are checked live by another test.
    let elsewhere: BTreeSet<String> = promql::LIVE_CHECKED_ELSEWHERE
        .iter()
        .map(|(file, test)| {
            let src = std::fs::read_to_string(promql::repo().join(test)).unwrap();
            let call = format!("rule_file_metric_names(\"{file}\")");
            assert!(src.contains(&call), "{test} must check {file} on a live scrape ({call})");
            Path::new(file).file_name().unwrap().to_string_lossy().to_string()
        })
        .collect();
    for (dashboard, test) in promql::DASHBOARDS_CHECKED_ELSEWHERE {
        let src = std::fs::read_to_string(promql::repo().join(test)).unwrap_or_else(|e| panic!("{test}: {e}"));
        let call = "dashboards_checked_by(file!())";
        assert!(src.contains(call), "{test} must check {dashboard} against a real Prometheus ({call})");
        assert!(promql::repo().join("grafana/dashboards").join(dashboard).exists(), "{dashboard}");
    }
    // Dashboards whose metric names a profile test checks on its own live scrape (their panels
    // are queried here, against the run this test starts).
    let names_elsewhere: BTreeSet<String> = promql::DASHBOARD_NAMES_CHECKED_ELSEWHERE
        .iter()
        .map(|(file, test)| {
            let src = std::fs::read_to_string(promql::repo().join(test)).unwrap();
            let call = format!("dashboard_metric_names(\"{file}\")");
            assert!(src.contains(&call), "{test} must check {file} on a live scrape ({call})");
            Path::new(file).file_name().unwrap().to_string_lossy().to_string()
        })
        .collect();
    // Dashboard places read "file: panel title".
    let dashboard_elsewhere = |place: &String| {
        place.split_once(": ").is_some_and(|(d, _)| promql::checked_elsewhere(d) || names_elsewhere.contains(d))
    };
    let raw: BTreeSet<&String> = used
        .iter()
        .filter(|(n, place)| n != "up" && !recorded.contains(n) && !elsewhere.contains(place))
        .filter(|(_, place)| !dashboard_elsewhere(place))
        .map(|(n, _)| n)
        .collect();
    // A histogram's own name (the native form, prometheus/rules/sli-native.yml) is on the text
    // scrape as its `_count` (tests/alerting/native_histograms.rs scrapes it natively).
    let exported = |names: &BTreeSet<&str>, n: &str| names.contains(n) || names.contains(format!("{n}_count").as_str());
    let (s, ok) = scrape_until(&base, Duration::from_secs(20), |s| {
        let names = s.names();
        raw.iter().all(|n| exported(&names, n))
    })
    .await;
    let names = s.names();
    let missing: Vec<_> = raw.iter().filter(|n| !exported(&names, n)).collect();
    assert!(ok, "used but not on a live scrape: {missing:?}\n{}", daemon.log_text());
}

/// One alert as the webhook received it.
#[derive(Debug, Clone)]
struct Alert {
    receiver: String,
    name: String,
    target: String,
    status: String,
    /// The canary replica that raised it.
    instance: String,
    /// Alertmanager's group: one group is one incident in the pager (its dedup key).
    group_key: String,
}

/// Every alert the webhook received.
type Received = Arc<Mutex<Vec<Alert>>>;

async fn start_webhook() -> (String, Received) {
    use axum::extract::{Path as AxPath, State};
    let got: Received = Arc::default();
    let app =
        axum::Router::new()
            .route(
                "/{receiver}",
                axum::routing::post(
                    |State(got): State<Received>,
                     AxPath(receiver): AxPath<String>,
                     body: axum::Json<serde_json::Value>| async move {
                        let group_key = body["groupKey"].as_str().unwrap_or("").to_string();
                        for a in body["alerts"].as_array().into_iter().flatten() {
                            let label = |k: &str| a["labels"][k].as_str().unwrap_or("").to_string();
                            got.lock().unwrap().push(Alert {
                                receiver: receiver.clone(),
                                name: label("alertname"),
                                target: label("target"),
                                status: a["status"].as_str().unwrap_or("").to_string(),
                                instance: label("instance"),
                                group_key: group_key.clone(),
                            });
                        }
                        "ok"
                    },
                ),
            )
            .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn wait_alert(got: &Received, receiver: &str, alert: &str, target: &str, status: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = got
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.receiver == receiver && a.name == alert && a.target == target && a.status == status);
        if seen {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{alert}{{target={target}}} {status} did not reach /{receiver} within {within:?}; got {:?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "deploy/alertmanager.yml no longer contains {from:?}");
    text.replace(from, to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_alerts_reach_alertmanager_and_resolve_and_every_panel_has_data() {
    let (webhook, got) = start_webhook().await;
    let (mut target, mcp_url) = start_target(&[]).await;
    let target_addr = mcp_url.trim_start_matches("http://").trim_end_matches("/mcp").to_string();
    let (_provider, _stop, protected_url) = protected_target().await;
    let (daemon, _dir, base) = start_daemon("alerting-e2e", &daemon_config(&mcp_url, &protected_url), DAEMON_ENV).await;
    // A second replica of the same config (HA): its alerts must join the first one's, never page twice.
    let (_replica, _replica_dir, replica_base) =
        start_daemon("alerting-e2e-replica", &daemon_config(&mcp_url, &protected_url), DAEMON_ENV).await;
    let work = tempfile::tempdir().unwrap();
    let w = |p: &str| work.path().join(p).to_string_lossy().to_string();

    // Alertmanager with the shipped routing and inhibition.
    let am_port = free_port();
    let am = std::fs::read_to_string(promql::repo().join("deploy/alertmanager.yml")).unwrap();
    let am = replace_once(&am, "http://127.0.0.1:5001", &webhook);
    let am = replace_once(&am, "group_wait: 30s", "group_wait: 1s");
    let am = replace_once(&am, "group_interval: 5m", "group_interval: 1s");
    std::fs::write(w("alertmanager.yml"), am).unwrap();
    let _am = spawn(
        "alertmanager",
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", w("alertmanager.yml")),
            format!("--storage.path={}", w("am-data")),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
    );

    // Prometheus with 60x faster copies of the shipped rules.
    std::fs::create_dir_all(w("rules")).unwrap();
    let mut rules = Vec::new();
    for f in promql::rule_files() {
        let out = Path::new(&w("rules")).join(f.file_name().unwrap());
        std::fs::write(&out, promql::fast_rules(&std::fs::read_to_string(&f).unwrap())).unwrap();
        rules.push(out);
    }
    let daemon_addr = base.trim_start_matches("http://").to_string();
    let am_addr = format!("127.0.0.1:{am_port}");
    // A longevity run joins later on this port (its dashboard needs a run's series); a job of its
    // own, so that the canary's `up` alerts do not see it.
    let soak_port = free_port();
    let replica_addr = replica_base.trim_start_matches("http://").to_string();
    let jobs = [("mcp-canary", vec![daemon_addr, replica_addr]), ("longevity", vec![format!("127.0.0.1:{soak_port}")])];
    let (_prom, prom) = start_prometheus_jobs(work.path(), &jobs, &rules, Some(&am_addr)).await;
    wait_ready(&format!("http://127.0.0.1:{am_port}/-/ready"), Duration::from_secs(20)).await;

    // Healthy for a while: data flows, nothing pages.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while query(&prom, "mcp_canary:operation_success:ratio_rate5m == 1").await.unwrap_or(0) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no SLI recorded within 30s\n{}", daemon.log_text());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(got.lock().unwrap().is_empty(), "alerts while healthy: {:?}", got.lock().unwrap());

    // A longevity run scraped from now on, for the longevity dashboard's panels: all sessions end
    // with DELETE (churn 0), so nothing leaks; it outlives the test and stops with it.
    let soak_listen = format!("127.0.0.1:{soak_port}");
    let target_metrics = format!("http://{target_addr}/metrics");
    let _soak = Proc::start(
        "alerting-longevity",
        &[
            "run",
            "longevity",
            "--target",
            &mcp_url,
            "--name",
            "soak",
            "--clients",
            "2",
            "--duration",
            "10m",
            "--rpm",
            "60",
            "--churn",
            "0",
            "--session-lifetime",
            "3s",
            "--memory-url",
            &target_metrics,
            "--snapshot-interval",
            "1s",
            "--slope-window",
            "30s",
            "--metrics-listen",
            &soak_listen,
            "--results-dir",
            &w("results"),
        ],
        &[],
        "metrics listening on ",
    )
    .await;

    // Errors: the availability page reaches the page receiver, then resolves once healed.
    admin(&mcp_url, "/admin/knobs", serde_json::json!({"error_rate": 1})).await;
    let page = "McpAvailabilityBudgetBurnPage";
    wait_alert(&got, "page", page, "ref", "firing", Duration::from_secs(45)).await;
    admin(&mcp_url, "/admin/knobs", serde_json::json!({"error_rate": 0})).await;
    wait_alert(&got, "page", page, "ref", "resolved", Duration::from_secs(75)).await;

    // Every dashboard query runs and returns data (failures, recoveries and notifications seen).
    let mut broken = Vec::new();
    for (file, title, expr) in promql::daemon_dashboard_queries() {
        let q = promql::grafana_to_promql(&expr);
        match query(&prom, &q).await {
            Ok(0) => broken.push(format!("{file} / {title}: no data for {q}")),
            Ok(_) => {}
            Err(e) => broken.push(format!("{file} / {title}: {q} failed: {e}")),
        }
    }
    assert!(broken.is_empty(), "broken panels:\n{}", broken.join("\n"));

    // Target down: kill it; McpTargetDown pages; bring it back on the same port; it resolves.
    target.child.kill().await.unwrap();
    wait_alert(&got, "page", "McpTargetDown", "ref", "firing", Duration::from_secs(45)).await;
    // Both replicas see it down; Alertmanager groups by [alertname, target], so both alerts are
    // one incident (one group key), not two pages.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let down = || -> Vec<Alert> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|a| a.name == "McpTargetDown" && a.target == "ref" && a.status == "firing")
            .cloned()
            .collect()
    };
    while down().iter().map(|a| a.instance.clone()).collect::<BTreeSet<_>>().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "only one replica's McpTargetDown arrived: {:?}", down());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let groups: BTreeSet<String> = down().into_iter().map(|a| a.group_key).collect();
    assert_eq!(groups.len(), 1, "two replicas' McpTargetDown paged as separate incidents: {groups:?}");
    let _target = Proc::start("target", &["target", "--listen", &target_addr], &[], "listening on ").await;
    wait_alert(&got, "page", "McpTargetDown", "ref", "resolved", Duration::from_secs(45)).await;
}
