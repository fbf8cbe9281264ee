//! A real Prometheus scrapes `/probe` with blackbox_exporter's relabelling (`__param_target` from
//! `__address__`, `instance` from the parameter, `__address__` the daemon's): the probed URL's
//! `probe_success` is 1 under its own `instance`, and a target outside the allow-list is a failed
//! scrape with no probe series.

use std::time::Duration;

use crate::common::{start_daemon, start_target};
use crate::stack::{query, start_prometheus_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_probe_with_blackbox_relabelling() {
    let (_target, mcp_url) = start_target(&[]).await;
    let port = url::Url::parse(&mcp_url).unwrap().port().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[probe]\nallowed_targets = [\"http://127.0.0.1:{port}/mcp\"]\n\
         [modules.ref.probe]\ntool = \"echo\"\ntool_arguments = {{ message = \"prometheus\" }}\n"
    );
    let (daemon, _dir, base) = start_daemon("probe-prometheus", &config, &[]).await;
    let daemon_addr = base.trim_start_matches("http://");
    let refused = format!("http://127.0.0.1:{port}/not-allowed");

    let work = tempfile::tempdir().unwrap();
    let scrape = format!(
        r#"scrape_configs:
  - job_name: mcp-probe
    scrape_interval: 2s
    scrape_timeout: 2s
    metrics_path: /probe
    params:
      module: [ref]
    static_configs:
      - targets: ["{mcp_url}", "{refused}"]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: "{daemon_addr}"
"#
    );
    let (_prometheus, prom) = start_prometheus_config(work.path(), &scrape).await;

    let passed = format!(r#"probe_success{{job="mcp-probe",instance="{mcp_url}"}} == 1"#);
    let step = format!(r#"probe_step_duration_seconds{{instance="{mcp_url}",step="tools/call"}} > 0"#);
    let refused_down = format!(r#"up{{instance="{refused}"}} == 0"#);
    let refused_probe = format!(r#"probe_success{{instance="{refused}"}}"#);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let ok = query(&prom, &passed).await == Ok(1)
            && query(&prom, &step).await == Ok(1)
            && query(&prom, &refused_down).await == Ok(1);
        if ok {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no probe_success 1 for {mcp_url} within 40 s: {passed} -> {:?}, {step} -> {:?}, {refused_down} -> {:?}\n{}",
            query(&prom, &passed).await,
            query(&prom, &step).await,
            query(&prom, &refused_down).await,
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(query(&prom, &refused_probe).await, Ok(0), "a refused target has no probe series");
}
