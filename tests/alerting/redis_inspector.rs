//! The Redis inspector against a real `redis-server` (Debian's package): key counts, NUMSUB and
//! memory follow sessions being created and removed; `redis_up` drops when Redis dies and returns
//! when it restarts on the same port while `/metrics` keeps answering; a wrong password reads
//! `redis_up 0` with `error_type="auth"` and never appears in the log.

use crate::common;
use crate::promql;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{Scrape, free_port, scrape, scrape_until, start_daemon, start_target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One RESP command over a raw connection; returns the raw reply (bounded read).
async fn resp(conn: &mut TcpStream, args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    conn.write_all(out.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.expect("redis reply").unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn config(redis_url: &str, mcp_url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "2s"
[[targets]]
name = "ref"
url = "{mcp_url}"
interval = "30s"
timeout = "5s"
redis = "{redis_url}"
redis_interval = "1s"
redis_timeout = "500ms"
{extra}
"#
    )
}

fn keys(s: &Scrape, pattern: &str) -> f64 {
    s.value("mcp_canary_redis_keys", &[("target", "ref"), ("pattern", pattern)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_inspection_follows_sessions_and_outages() {
    let (_target, mcp_url) = start_target(&[]).await;
    let port = free_port();
    let redis = RedisServer::start_on(port, None).await;
    let (mut daemon, _dir, base) = start_daemon("daemon-redis", &config(&redis.url(), &mcp_url, ""), &[]).await;
    let up = |s: &Scrape| s.sum("mcp_canary_redis_up", &[("target", "ref")]);

    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| up(s) == Some(1.0)).await;
    assert!(ok, "redis_up never 1:\n{}\n{}", s.text, daemon.log_text());
    // Every metric alerts/inspectors.yml uses is on this live scrape (tests/alerting/alerting_end_to_end.rs
    // leaves that file to this test: its daemon has no redis target).
    let names = s.names();
    let missing: Vec<_> = promql::rule_file_metric_names("alerts/inspectors.yml")
        .into_iter()
        .filter(|n| !names.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "used by alerts/inspectors.yml but not exported: {missing:?}\n{}", s.text);
    assert_eq!(keys(&s, "mcp:session:*"), 0.0);
    assert_eq!(s.value("mcp_canary_redis_keys_exact", &[("target", "ref"), ("pattern", "mcp:session:*")]), 1.0);
    assert!(s.value("mcp_canary_redis_ping_duration_seconds_count", &[("target", "ref")]) >= 1.0);
    assert_eq!(s.value("mcp_canary_redis_maxmemory_policy", &[("target", "ref"), ("policy", "noeviction")]), 1.0);
    let memory_before = s.value("mcp_canary_redis_memory_used_bytes", &[("target", "ref")]);
    assert!(memory_before > 0.0);

    // 300 session keys of 2 KB each, and a subscriber on three session stream channels.
    let mut admin = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let value = "x".repeat(2048);
    for i in 0..300 {
        let reply = resp(&mut admin, &["SET", &format!("mcp:session:{i}"), &value]).await;
        assert!(reply.starts_with("+OK"), "{reply}");
    }
    let mut subscriber = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let reply = resp(&mut subscriber, &["SUBSCRIBE", "mcp:stream:a", "mcp:stream:b", "mcp:stream:c"]).await;
    assert!(reply.contains("subscribe"), "{reply}");

    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| {
        keys(s, "mcp:session:*") == 300.0
            && s.value("mcp_canary_redis_pattern_subscribers", &[("target", "ref"), ("pattern", "mcp:stream:*")]) == 3.0
    })
    .await;
    assert!(ok, "keys and NUMSUB did not follow:\n{}", s.text);
    assert_eq!(s.value("mcp_canary_redis_pattern_channels", &[("target", "ref"), ("pattern", "mcp:stream:*")]), 3.0);
    assert_eq!(keys(&s, "mcp:stream:*"), 0.0, "channels are not keys");
    assert!(s.value("mcp_canary_redis_pubsub_channels", &[("target", "ref")]) >= 3.0);
    let memory_full = s.value("mcp_canary_redis_memory_used_bytes", &[("target", "ref")]);
    assert!(memory_full > memory_before + 300.0 * 2048.0, "memory {memory_before} -> {memory_full}");

    // Remove them again.
    drop(subscriber);
    for i in 0..300 {
        resp(&mut admin, &["DEL", &format!("mcp:session:{i}")]).await;
    }
    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| {
        keys(s, "mcp:session:*") == 0.0
            && s.value("mcp_canary_redis_pattern_subscribers", &[("target", "ref"), ("pattern", "mcp:stream:*")]) == 0.0
            && s.value("mcp_canary_redis_memory_used_bytes", &[("target", "ref")]) < memory_full - 300.0 * 2048.0
    })
    .await;
    assert!(ok, "keys, NUMSUB and memory did not drop:\n{}", s.text);
    drop(admin);

    // Kill Redis: redis_up 0 with a connect error, /metrics keeps answering.
    redis.stop().await;
    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| up(s) == Some(0.0)).await;
    assert!(ok, "redis_up did not drop:\n{}", s.text);
    let errors =
        |s: &Scrape, class: &str| s.value("mcp_canary_redis_errors_total", &[("target", "ref"), ("error_type", class)]);
    assert!(errors(&s, "connect") + errors(&s, "timeout") >= 1.0, "{}", s.text);
    for _ in 0..3 {
        let s = scrape(&base).await;
        assert_eq!(up(&s), Some(0.0));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Restart on the same port: back to 1.
    let redis = RedisServer::start_on(port, None).await;
    let (s, ok) = scrape_until(&base, Duration::from_secs(20), |s| up(s) == Some(1.0)).await;
    assert!(ok, "redis_up did not return:\n{}\n{}", s.text, daemon.log_text());

    let code = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "exit status; log:\n{}", daemon.log_text());
    redis.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_an_auth_error_and_never_logged() {
    let (_target, mcp_url) = start_target(&[]).await;
    let redis = RedisServer::start_on(free_port(), Some("right-redis-password")).await;
    let secret_dir = tempfile::tempdir().unwrap();
    let pw_file = secret_dir.path().join("pw");
    std::fs::write(&pw_file, "wrong-redis-password-4711\n").unwrap();
    let extra = format!("redis_password_file = \"{}\"\nredis_scan_budget = 1", pw_file.display());
    let (mut daemon, _dir, base) =
        start_daemon("daemon-redis-auth", &config(&redis.url(), &mcp_url, &extra), &[("TEST_RUST_LOG", "debug")]).await;
    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| {
        s.value("mcp_canary_redis_errors_total", &[("target", "ref"), ("error_type", "auth")]) >= 2.0
    })
    .await;
    assert!(ok, "no auth errors:\n{}\n{}", s.text, daemon.log_text());
    assert_eq!(s.sum("mcp_canary_redis_up", &[("target", "ref")]), Some(0.0));
    let code = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));
    let log = daemon.log_text();
    assert!(log.contains("Redis unreachable"), "{log}");
    assert!(!log.contains("wrong-redis-password-4711"), "password leaked:\n{log}");

    // The right password works; a budget of 1 over 200 keys gives a lower bound flagged as not
    // exact; check-config never prints the password.
    let mut admin = TcpStream::connect(("127.0.0.1", redis.port)).await.unwrap();
    assert!(resp(&mut admin, &["AUTH", "right-redis-password"]).await.starts_with("+OK"));
    for i in 0..200 {
        resp(&mut admin, &["SET", &format!("mcp:session:{i}"), "1"]).await;
    }
    std::fs::write(&pw_file, "right-redis-password\n").unwrap();
    let (mut daemon, dir, base) =
        start_daemon("daemon-redis-auth-ok", &config(&redis.url(), &mcp_url, &extra), &[]).await;
    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| {
        s.sum("mcp_canary_redis_up", &[("target", "ref")]) == Some(1.0)
    })
    .await;
    assert!(ok, "right password not accepted:\n{}\n{}", s.text, daemon.log_text());
    let session = [("target", "ref"), ("pattern", "mcp:session:*")];
    assert_eq!(s.sum("mcp_canary_redis_keys_exact", &session), Some(0.0), "{}", s.text);
    assert!(s.value("mcp_canary_redis_keys", &session) < 200.0, "{}", s.text);
    daemon.terminate(Duration::from_secs(10)).await;
    assert!(!daemon.log_text().contains("right-redis-password"));
    let out = std::process::Command::new(common::bin())
        .arg("check-config")
        .arg(dir.path().join("canary.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("redis_password_file"), "{printed}");
    assert!(!printed.contains("right-redis-password"), "{printed}");
    redis.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_silence_are_classified_not_stuck() {
    let (_target, mcp_url) = start_target(&[]).await;
    // One listener answers every connection with garbage, the other accepts and never answers.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (garbage_addr, silent_addr) = (garbage.local_addr().unwrap(), silent.local_addr().unwrap());
    let servers = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            tokio::select! {
                Ok((mut c, _)) = garbage.accept() => {
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\n\r\n<html>").await;
                    held.push(c);
                }
                Ok((c, _)) = silent.accept() => held.push(c),
            }
        }
    });
    let config = format!(
        "{}\n[[targets]]\nname = \"silent\"\nurl = \"{mcp_url}\"\ninterval = \"30s\"\nredis = \"redis://{silent_addr}/0\"\nredis_interval = \"1s\"\nredis_timeout = \"300ms\"\n",
        config(&format!("redis://{garbage_addr}/0"), &mcp_url, "")
    );
    let (mut daemon, _dir, base) = start_daemon("daemon-redis-garbage", &config, &[]).await;
    let errors = |s: &Scrape, t: &str, class: &str| {
        s.value("mcp_canary_redis_errors_total", &[("target", t), ("error_type", class)])
    };
    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| {
        errors(s, "ref", "protocol") >= 2.0 && errors(s, "silent", "timeout") >= 2.0
    })
    .await;
    assert!(ok, "not classified:\n{}\n{}", s.text, daemon.log_text());
    assert_eq!(s.sum("mcp_canary_redis_up", &[("target", "ref")]), Some(0.0));
    assert_eq!(s.sum("mcp_canary_redis_up", &[("target", "silent")]), Some(0.0));
    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0), "{}", daemon.log_text());
    servers.abort();
}
