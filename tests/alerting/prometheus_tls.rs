//! A real Prometheus scrapes the daemon behind TLS and basic auth, as in production:
//! `scheme: https`, `tls_config.ca_file`, `basic_auth`. The job with the right password is up;
//! one with a wrong password, and one over plain HTTP, are down.

use std::time::Duration;

use crate::common::{closed_addr, start_daemon};
use crate::stack::{query_vector, spawn, wait_ready};
use crate::tls::Pki;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_over_tls_with_basic_auth() {
    let pki = Pki::new();
    let hash = bcrypt::hash("scrape-password", 6).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n{}\
         [server.basic_auth_users]\nprometheus = \"{hash}\"\n\
         [[targets]]\nname = \"down\"\nurl = \"http://{}/mcp\"\ninterval = \"30s\"\ntimeout = \"1s\"\n",
        pki.server_tls(""),
        closed_addr()
    );
    let (mut daemon, _dir, base) = start_daemon("prometheus-tls", &config, &[]).await;
    let target = base.trim_start_matches("https://").to_string();

    let work = tempfile::tempdir().unwrap();
    let job = |name: &str, scheme: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: {scheme}\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      \
             username: prometheus\n      password: {password}\n    static_configs:\n      - targets: [\"{target}\"]\n",
            pki.path("ca.pem")
        )
    };
    let prometheus_yml = work.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}{}",
            job("secured", "https", "scrape-password"),
            job("wrong-password", "https", "guess"),
            job("plain", "http", "scrape-password"),
        ),
    )
    .unwrap();
    let port = crate::common::free_port();
    let _prometheus = spawn(
        "prometheus-tls",
        "prometheus",
        &[
            format!("--config.file={}", prometheus_yml.display()),
            format!("--storage.tsdb.path={}", work.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
    );
    let prom = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{prom}/-/ready"), Duration::from_secs(20)).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let up = loop {
        let up: Vec<(String, f64)> = query_vector(&prom, "up")
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(labels, value)| (labels["job"].clone(), value))
            .collect();
        if up.len() == 3 || tokio::time::Instant::now() >= deadline {
            break up;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let of = |job: &str| up.iter().find(|(j, _)| j == job).map(|(_, v)| *v);
    assert_eq!(of("secured"), Some(1.0), "up: {up:?}\n{}", daemon.log_text());
    assert_eq!(of("wrong-password"), Some(0.0), "up: {up:?}");
    assert_eq!(of("plain"), Some(0.0), "up: {up:?}");

    // The series scraped are the daemon's, and the wrong password's refusals are among them.
    let expr = "mcp_canary_http_requests_refused_total{job=\"secured\",reason=\"bad_credentials\"} >= 1";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while query_vector(&prom, expr).await.unwrap_or_default().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "refusals of the wrong password not scraped");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0), "{}", daemon.log_text());
}
