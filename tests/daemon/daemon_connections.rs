//! The canary's own connections to a plain-http target: a target probed every second opens one
//! connection and reuses it cycle after cycle (fresh sessions included); a server that closes
//! its idle connections between cycles costs a new connection per cycle and no failed step.
//! The probes run on their own runtime, `server.probe_threads` threads of it.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{scrape_until, start_daemon, start_target};
use tokio::net::{TcpListener, TcpStream};

/// A TCP forwarder to `upstream` counting the connections it accepts; with `idle_close`, it
/// closes a client connection once it has been quiet that long (as servers with a keep-alive
/// timeout do).
async fn counting_proxy(upstream: String, idle_close: Option<Duration>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                match idle_close {
                    None => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    Some(idle) => forward_until_idle(&mut client, &mut server, idle).await,
                }
            });
        }
    });
    (format!("http://{addr}/mcp"), accepted)
}

/// Forward both ways until nothing has passed for `idle`, then close both sides.
async fn forward_until_idle(client: &mut TcpStream, server: &mut TcpStream, idle: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let (mut up, mut down) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
    loop {
        tokio::select! {
            n = cr.read(&mut up) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if sw.write_all(&up[..n]).await.is_err() { return },
            },
            n = sr.read(&mut down) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if cw.write_all(&down[..n]).await.is_err() { return },
            },
            () = tokio::time::sleep(idle) => return,
        }
    }
}

fn config(url: &str) -> String {
    config_with(url, "")
}

fn config_with(url: &str, server: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server}
[[targets]]
name = "kept"
url = "{url}"
interval = "1s"
timeout = "1s"
session = "fresh"
protocol = "2025-11-25"
[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}
"#
    )
}

/// Probe cycles and failed steps of target `kept` so far.
async fn cycles_and_failures(base: &str, cycles: f64) -> (f64, f64) {
    let (s, ok) = scrape_until(base, Duration::from_secs(30), |s| {
        s.sum("mcp_canary_probes_total", &[("target", "kept")]).unwrap_or(0.0) >= cycles
    })
    .await;
    assert!(ok, "fewer than {cycles} cycles in 30 s");
    let failed = s.sum("mcp_canary_operations_total", &[("target", "kept"), ("outcome", "failure")]).unwrap_or(0.0);
    (s.sum("mcp_canary_probes_total", &[("target", "kept")]).unwrap_or(0.0), failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_reuses_its_connection_across_cycles() {
    let (_target, mcp_url) = start_target(&[]).await;
    let upstream = mcp_url.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let (url, accepted) = counting_proxy(upstream, None).await;
    let (_daemon, _dir, base) = start_daemon("connections-kept", &config(&url), &[]).await;
    let (cycles, failed) = cycles_and_failures(&base, 5.0).await;
    assert_eq!(failed, 0.0, "failed steps");
    let opened = accepted.load(Ordering::SeqCst);
    // Each fresh session runs its steps one after another: one connection carries them all.
    assert!((1..=2).contains(&opened), "{opened} connections for {cycles} cycles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_replaces_connections_the_server_closed_while_idle() {
    let (_target, mcp_url) = start_target(&[]).await;
    let upstream = mcp_url.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let (url, accepted) = counting_proxy(upstream, Some(Duration::from_millis(300))).await;
    let (_daemon, _dir, base) = start_daemon("connections-closed", &config(&url), &[]).await;
    let (cycles, failed) = cycles_and_failures(&base, 5.0).await;
    assert_eq!(failed, 0.0, "a step failed on a connection the server had closed");
    let opened = accepted.load(Ordering::SeqCst) as f64;
    assert!(opened >= cycles - 1.0, "{opened} connections for {cycles} cycles: closed ones were not replaced");
}

/// Threads of the daemon named `prefix...` (a thread's name is cut to 15 bytes).
fn threads_named(pid: u32, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read the daemon's threads")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_run_on_probe_threads_threads() {
    let (_target, mcp_url) = start_target(&[]).await;
    for (threads, server) in [(1, ""), (3, "probe_threads = 3")] {
        let (daemon, _dir, base) = start_daemon("probe-threads", &config_with(&mcp_url, server), &[]).await;
        let (cycles, failed) = cycles_and_failures(&base, 2.0).await;
        assert_eq!(failed, 0.0, "failed steps in {cycles} cycles");
        let pid = daemon.child.id().expect("daemon running");
        assert_eq!(threads_named(pid, "mcp-canary-prob"), threads, "probe threads with {server:?}");
    }
}
