//! The daemon against an MCP server nobody on this team wrote: the official TypeScript
//! "everything" server from the npm registry.

use crate::common;

use std::time::Duration;

use common::{Scrape, scrape, scrape_until, start_daemon, start_everything};

fn successes(s: &Scrape, target: &str, method: &str) -> f64 {
    s.value("mcp_canary_operations_total", &[("target", target), ("mcp_method_name", method), ("outcome", "success")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_probes_the_everything_server() {
    let server = start_everything().await;
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[[targets]]
name = "everything"
url = "{url}"
interval = "1s"
timeout = "1s"
[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}

[[targets]]
name = "everything-warm"
url = "{url}"
interval = "1s"
timeout = "1s"
session = "persistent"
[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}
"#,
        url = server.url
    );
    let (daemon, _dir, base) = start_daemon("daemon-everything", &config, &[]).await;
    let (first, ok) = scrape_until(&base, Duration::from_secs(40), |s| {
        ["everything", "everything-warm"].iter().all(|t| s.value("mcp_canary_probes_total", &[("target", t)]) >= 3.0)
    })
    .await;
    assert!(ok, "cycles did not complete:\n{}\n{}", first.text, daemon.log_text());

    for t in ["everything", "everything-warm"] {
        assert_eq!(first.value("mcp_canary_probe_success", &[("target", t)]), 1.0, "{t}:\n{}", daemon.log_text());
        assert_eq!(first.value("mcp_canary_probes_total", &[("target", t), ("outcome", "failure")]), 0.0, "{t}");
        let info =
            first.matching("mcp_canary_server_info", &[("target", t)]).find(|s| s.value == 1.0).expect("server info");
        assert!(info.labels["server_name"].contains("everything"), "{:?}", info.labels);
        assert!(first.value("mcp_canary_server_items", &[("target", t), ("kind", "tools")]) >= 5.0);
        assert!(first.value("mcp_canary_server_items", &[("target", t), ("kind", "resources")]) >= 1.0);
        assert!(first.value("mcp_canary_server_items", &[("target", t), ("kind", "prompts")]) >= 1.0);
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = scrape(&base).await;
    let methods =
        ["tools/list", "tools/call", "resources/list", "resources/read", "prompts/list", "prompts/get", "ping"];
    for method in methods.iter().chain(["initialize", "session/delete"].iter()) {
        assert!(
            successes(&later, "everything", method) > successes(&first, "everything", method),
            "everything {method} did not increase"
        );
    }
    for method in methods {
        assert!(
            successes(&later, "everything-warm", method) > successes(&first, "everything-warm", method),
            "everything-warm {method} did not increase"
        );
    }
    assert_eq!(successes(&later, "everything-warm", "initialize"), 1.0, "warm session was re-established");
}
