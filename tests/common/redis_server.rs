//! A `redis-server` (Debian's package) on a loopback port, killed on drop.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// On a free port, without a password.
    pub async fn start() -> RedisServer {
        Self::start_on(super::free_port(), None).await
    }

    /// On `port` (to restart on the same one), with `requirepass` when given.
    pub async fn start_on(port: u16, password: Option<&str>) -> RedisServer {
        let log = super::log_dir().join(format!("redis-{port}.log"));
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--logfile", log.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(p) = password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd.spawn().expect("spawn redis-server (apt-get install redis-server)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not listen on {port} within 10s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        RedisServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kill it now and wait for it to exit (bounded).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
