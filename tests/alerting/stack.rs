//! Debian's Prometheus (and Alertmanager) started by a test on free loopback ports, and the
//! HTTP API queries the dashboard and alerting tests make against it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::common::{free_port, log_dir};

/// A child process (prometheus, alertmanager) killed on drop, its output in the test log dir.
pub fn spawn(name: &str, cmd: &str, args: &[String]) -> Child {
    let log = log_dir().join(format!("{name}-{}.log", std::process::id()));
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(log.with_extension("err")).unwrap()))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd} not found ({e}): scripts/test.sh installs it from Debian"))
}

pub async fn wait_ready(url: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{url} not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A ready Prometheus scraping `targets` (host:port, job `mcp-canary`) every second with `rules`
/// loaded, its data in `work`; `alertmanager` (host:port) receives its alerts when given.
pub async fn start_prometheus(
    work: &Path,
    targets: &[String],
    rules: &[std::path::PathBuf],
    alertmanager: Option<&str>,
) -> (Child, String) {
    start_prometheus_jobs(work, &[("mcp-canary", targets.to_vec())], rules, alertmanager).await
}

/// `start_prometheus` with several scrape jobs: (job name, host:port targets).
pub async fn start_prometheus_jobs(
    work: &Path,
    jobs: &[(&str, Vec<String>)],
    rules: &[std::path::PathBuf],
    alertmanager: Option<&str>,
) -> (Child, String) {
    start_prometheus_flags(work, jobs, rules, alertmanager, &[]).await
}

/// `start_prometheus_jobs` with extra command-line flags (`--enable-feature=...`).
pub async fn start_prometheus_flags(
    work: &Path,
    jobs: &[(&str, Vec<String>)],
    rules: &[std::path::PathBuf],
    alertmanager: Option<&str>,
    flags: &[&str],
) -> (Child, String) {
    let rule_files: String = rules.iter().map(|r| format!("  - {}\n", r.display())).collect();
    let alerting = alertmanager
        .map(|am| format!("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{am}\"]\n"))
        .unwrap_or_default();
    let scrape: String = jobs
        .iter()
        .map(|(job, targets)| {
            let targets = targets.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
            format!("  - job_name: {job}\n    static_configs:\n      - targets: [{targets}]\n")
        })
        .collect();
    let config = format!("rule_files:\n{rule_files}{alerting}scrape_configs:\n{scrape}");
    start_prometheus_config_flags(work, &config, flags).await
}

/// A ready Prometheus evaluating and scraping every second with `config` (YAML after `global`:
/// rule files, alerting, scrape configs) as written, its data in `work`.
pub async fn start_prometheus_config(work: &Path, config: &str) -> (Child, String) {
    start_prometheus_config_flags(work, config, &[]).await
}

/// [`start_prometheus_config`] with extra command-line flags.
pub async fn start_prometheus_config_flags(work: &Path, config: &str, flags: &[&str]) -> (Child, String) {
    let path = work.join("prometheus.yml");
    std::fs::write(&path, format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{config}")).unwrap();
    let config = path;
    let port = free_port();
    let mut args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", work.join("prom-data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--rules.alert.resend-delay=1s".into(),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let child = spawn("prometheus", "prometheus", &args);
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{url}/-/ready"), Duration::from_secs(20)).await;
    (child, url)
}

/// The `data.result` array of a Prometheus API answer.
async fn api_result(url: url::Url) -> Result<Vec<serde_json::Value>, String> {
    let body: serde_json::Value =
        reqwest::get(url).await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{body}"));
    }
    Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
}

async fn api(url: url::Url) -> Result<usize, String> {
    api_result(url).await.map(|r| r.len())
}

/// An instant query's series now: (labels, value), the metric name among the labels when kept.
pub async fn query_vector(prom: &str, expr: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
    let url = url::Url::parse_with_params(&format!("{prom}/api/v1/query"), &[("query", expr)]).unwrap();
    let result = api_result(url).await?;
    result
        .iter()
        .map(|s| {
            let labels = s["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
            let value = s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
            value.map(|v| (labels, v)).ok_or_else(|| format!("{expr}: not an instant vector: {s}"))
        })
        .collect()
}

/// Series an instant query returns now.
pub async fn query(prom: &str, expr: &str) -> Result<usize, String> {
    api(url::Url::parse_with_params(&format!("{prom}/api/v1/query"), &[("query", expr)]).unwrap()).await
}

/// Series a range query returns over the last `range` at a 1 s step (what a Grafana time series
/// panel shows).
pub async fn query_range(prom: &str, expr: &str, range: Duration) -> Result<usize, String> {
    let end = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let start = format!("{:.3}", end - range.as_secs_f64());
    let end = format!("{end:.3}");
    let url = url::Url::parse_with_params(
        &format!("{prom}/api/v1/query_range"),
        &[("query", expr), ("start", &start), ("end", &end), ("step", "1")],
    )
    .unwrap();
    api(url).await
}

/// Run every panel query, annotation and variable of `dashboard` (instant or over the last
/// `range`, as Grafana would); returns how many ran and a line for each that failed or returned
/// no series.
pub async fn broken_panels(prom: &str, dashboard: &str, range: Duration) -> (usize, Vec<String>) {
    let queries = crate::promql::dashboard_panel_queries(dashboard);
    let mut broken = Vec::new();
    for (title, expr, instant) in &queries {
        let q = crate::promql::grafana_to_promql(expr);
        let result = if *instant { query(prom, &q).await } else { query_range(prom, &q, range).await };
        match result {
            Ok(0) => broken.push(format!("{dashboard} / {title}: no data for {q}")),
            Ok(_) => {}
            Err(e) => broken.push(format!("{dashboard} / {title}: {q} failed: {e}")),
        }
    }
    (queries.len(), broken)
}
