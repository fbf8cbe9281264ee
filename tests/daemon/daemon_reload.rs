//! Hot reload: `POST /-/reload`, SIGHUP and `--watch-config` change the running targets in place.
//! Unchanged targets keep their session, changed ones restart, removed ones close their session
//! and leave `/metrics`; a refused config leaves the running one and says why.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::faulty::FaultyProxy;
use common::{Proc, Scrape, scrape, scrape_until, start_target};

fn config(targets: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"
{targets}"#
    )
}

fn target(name: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
[[targets]]
name = "{name}"
url = "{url}"
interval = "2s"
timeout = "2s"
{extra}
"#
    )
}

const WARM: &str = "protocol = \"2025-11-25\"\nsession = \"persistent\"";

async fn start(name: &str, path: &Path, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["serve", "--config", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let proc = Proc::start(name, &args, &[], "mcp-canary listening on ").await;
    let base = proc.announced.clone();
    (proc, base)
}

async fn reload(base: &str) -> (u16, String) {
    let r = reqwest::Client::new().post(format!("{base}/-/reload")).send().await.expect("POST /-/reload");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

fn probes(s: &Scrape, target: &str) -> f64 {
    s.value("mcp_canary_probes_total", &[("target", target)])
}

fn has_series(s: &Scrape, target: &str) -> bool {
    s.samples.iter().any(|x| x.labels.get("target").map(String::as_str) == Some(target))
}

fn sessions(proxy: &FaultyProxy, http_method: &str) -> Vec<String> {
    proxy.seen().into_iter().filter(|s| s.http_method == http_method).filter_map(|s| s.session_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_restarts_and_removes_targets_in_place() {
    let (_target, mcp_url) = start_target(&[]).await;
    // Warm sessions behind proxies, so the test sees which session each target uses and its DELETE.
    let (keep_proxy, gone_proxy) = (FaultyProxy::start(&mcp_url).await, FaultyProxy::start(&mcp_url).await);
    keep_proxy.set_faults(false);
    gone_proxy.set_faults(false);
    let (keep_url, gone_url) = (keep_proxy.url("any"), gone_proxy.url("any"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("canary.toml");
    let v1 = target("keep", &keep_url, WARM) + &target("gone", &gone_url, WARM) + &target("changed", &mcp_url, "");
    std::fs::write(&path, config(&v1)).unwrap();
    let (mut daemon, base) = start("daemon-reload", &path, &[]).await;
    let (first, ok) = scrape_until(&base, Duration::from_secs(30), |s| {
        ["keep", "gone", "changed"].iter().all(|t| probes(s, t) >= 1.0)
    })
    .await;
    assert!(ok, "not every target probed:\n{}", daemon.log_text());
    assert_eq!(first.value("mcp_canary_config_last_reload_successful", &[]), 1.0);
    assert!(first.value("mcp_canary_config_last_reload_success_timestamp_seconds", &[]) > 1.7e9);
    let keep_session = sessions(&keep_proxy, "POST").first().cloned().expect("keep's warm session id");
    let gone_session = sessions(&gone_proxy, "POST").first().cloned().expect("gone's warm session id");

    let (status, body) =
        reqwest::Client::new().get(format!("{base}/-/reload")).send().await.map(|r| (r.status().as_u16(), ())).unwrap();
    assert_eq!((status, body), (405, ()), "a reload is a POST (or PUT), never a GET");

    let v2 =
        target("keep", &keep_url, WARM) + &target("changed", &mcp_url, "jitter = 0.2") + &target("added", &mcp_url, "");
    std::fs::write(&path, config(&v2)).unwrap();
    let (status, body) = reload(&base).await;
    assert_eq!(status, 200, "{body}\n{}", daemon.log_text());
    for part in ["3 targets", "added added", "changed (restarted) changed", "removed gone", "1 unchanged"] {
        assert!(body.contains(part), "{part:?} missing from the answer: {body}");
    }

    // The removed target closes its session and its series leave /metrics.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sessions(&gone_proxy, "DELETE").contains(&gone_session) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sessions(&gone_proxy, "DELETE").contains(&gone_session), "gone's session was not deleted");
    let keep_before = probes(&scrape(&base).await, "keep");
    let (after, ok) = scrape_until(&base, Duration::from_secs(20), |s| {
        probes(s, "added") >= 1.0
            && probes(s, "changed") > probes(&first, "changed")
            && probes(s, "keep") >= keep_before + 2.0
    })
    .await;
    assert!(ok, "targets not probed after the reload:\n{}", daemon.log_text());
    assert!(!has_series(&after, "gone"), "a removed target's series are still exported");
    assert!(after.value("mcp_canary_probe_success", &[("target", "added")]) == 1.0);
    assert_eq!(after.value("mcp_canary_targets", &[]), 3.0);
    assert_eq!(after.value("mcp_canary_config_reloads_total", &[("outcome", "success")]), 1.0);
    assert_eq!(after.value("mcp_canary_config_reloads_total", &[("outcome", "failure")]), 0.0);

    // The unchanged target kept its session through the reload: no DELETE, no second session.
    assert!(!sessions(&keep_proxy, "DELETE").contains(&keep_session), "keep's session was closed");
    let keep_ids: std::collections::BTreeSet<_> = sessions(&keep_proxy, "POST").into_iter().collect();
    assert_eq!(keep_ids.len(), 1, "keep opened a new session: {keep_ids:?}");
    let gone_posts = gone_proxy.seen().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(gone_proxy.seen().len(), gone_posts, "the removed target is still probed");

    // Back under the same name: probed again, its series back.
    std::fs::write(&path, config(&(v2 + &target("gone", &gone_url, WARM)))).unwrap();
    let (status, body) = reload(&base).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("added gone"), "{body}");
    let (_, ok) = scrape_until(&base, Duration::from_secs(20), |s| {
        s.value("mcp_canary_probes_total", &[("target", "gone"), ("outcome", "success")]) > probes(&first, "gone")
    })
    .await;
    assert!(ok, "gone not probed again:\n{}", daemon.log_text());
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0), "{}", daemon.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_keeps_the_running_config_and_sighup_and_the_watch_reload() {
    let (_target, mcp_url) = start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("canary.toml");
    std::fs::write(&path, config(&target("one", &mcp_url, ""))).unwrap();
    let (mut daemon, base) = start("daemon-reload-refused", &path, &["--watch-config", "--watch-interval", "1s"]).await;
    let (_, ok) = scrape_until(&base, Duration::from_secs(20), |s| probes(s, "one") >= 1.0).await;
    assert!(ok, "no first cycle:\n{}", daemon.log_text());

    // A bad key: refused with the key named, the old config keeps probing.
    let bad = config(&(target("one", &mcp_url, "") + &target("two", &mcp_url, "jitter = 7.0")));
    std::fs::write(&path, &bad).unwrap();
    let (status, body) = reload(&base).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("targets[1].jitter"), "the answer names the key: {body}");
    let (s, ok) = scrape_until(&base, Duration::from_secs(10), |s| {
        s.value("mcp_canary_config_last_reload_successful", &[]) == 0.0
    })
    .await;
    assert!(ok, "last_reload_successful did not drop to 0");
    // The watch saw the same bad file change too; it may or may not have tried before the POST.
    assert!(s.value("mcp_canary_config_reloads_total", &[("outcome", "failure")]) >= 1.0);
    assert!(!has_series(&s, "two"));
    let before = probes(&s, "one");
    let (_, ok) = scrape_until(&base, Duration::from_secs(10), |s| probes(s, "one") >= before + 2.0).await;
    assert!(ok, "the running config stopped after a refused reload:\n{}", daemon.log_text());
    assert!(daemon.log_text().contains("targets[1].jitter"), "the log names the key:\n{}", daemon.log_text());

    // The watch picks up a fixed file by itself.
    std::fs::write(&path, config(&(target("one", &mcp_url, "") + &target("two", &mcp_url, "")))).unwrap();
    let (_, ok) = scrape_until(&base, Duration::from_secs(15), |s| {
        probes(s, "two") >= 1.0 && s.value("mcp_canary_config_last_reload_successful", &[]) == 1.0
    })
    .await;
    assert!(ok, "--watch-config did not reload:\n{}", daemon.log_text());

    // SIGHUP reloads too (the file is unchanged, so nothing restarts).
    let successes = |s: &Scrape| s.value("mcp_canary_config_reloads_total", &[("outcome", "success")]);
    let before = successes(&scrape(&base).await);
    let pid = daemon.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let (_, ok) = scrape_until(&base, Duration::from_secs(10), |s| successes(s) == before + 1.0).await;
    assert!(ok, "SIGHUP did not reload:\n{}", daemon.log_text());
    let nothing_changed = "2 targets: added none; changed (restarted) none; removed none; 2 unchanged";
    assert!(daemon.log_text().contains(nothing_changed), "{}", daemon.log_text());
    assert!(daemon.child.try_wait().unwrap().is_none(), "SIGHUP ended the daemon");
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0), "{}", daemon.log_text());
}

/// `/probe` follows the reloaded `[probe]` table: a target refused before is probed after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_allow_list_follows_a_reload() {
    let (_target, mcp_url) = start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("canary.toml");
    let with_allowed = |pattern: &str| {
        config(&target("one", &mcp_url, "")) + &format!("\n[probe]\nallowed_targets = [\"{pattern}\"]\n")
    };
    std::fs::write(&path, with_allowed("http://192.0.2.1/*")).unwrap();
    let (mut daemon, base) = start("daemon-reload-probe", &path, &[]).await;
    let probe = || async {
        let r = reqwest::get(format!("{base}/probe?target={}", url_escape(&mcp_url))).await.expect("GET /probe");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    };
    assert_eq!(probe().await.0, 403, "outside the first allow-list");
    std::fs::write(&path, with_allowed(&mcp_url)).unwrap();
    let (status, body) = reload(&base).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = probe().await;
    assert_eq!(status, 200, "{body}\n{}", daemon.log_text());
    assert!(body.lines().any(|l| l == "probe_success 1"), "{body}");
    assert_eq!(daemon.terminate(Duration::from_secs(15)).await, Some(0), "{}", daemon.log_text());
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `--watch-interval` is bounded (a zero period would spin) and needs `--watch-config`.
#[test]
fn watch_interval_is_bounded() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::bin()).args(args).output().expect("run mcp-canary");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, err) = run(&["serve", "--config", "x.toml", "--watch-config", "--watch-interval", "0s"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("must be between 1s and 1h"), "{err}");
    let (code, err) = run(&["serve", "--config", "x.toml", "--watch-interval", "5s"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--watch-config"), "{err}");
}
