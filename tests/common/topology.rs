//! The distributed reference target of `deploy/local/topology.sh`: redis-server (optional), three
//! `mcp-canary target --redis … --instance target-N` processes and nginx (least_conn, no
//! stickiness), started with `up --detach` and stopped with `down` on drop.
#![allow(dead_code)]

use std::{path::PathBuf, process::Command};

/// A running topology and its URLs.
pub struct Topology {
    dir: tempfile::TempDir,
    pub balancer: String,
    /// MCP URLs of the instances, in order (`target-1`, `target-2`, ...).
    pub instances: Vec<String>,
    /// Instance names as announced (`target-1`, ...), in the order of `instances`.
    pub names: Vec<String>,
}

impl Topology {
    pub fn up(with_redis: bool) -> Topology {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec!["up", "--detach"];
        if !with_redis {
            args.push("--no-redis");
        }
        let output = Command::new("bash")
            .arg(script())
            .args(&args)
            .env("TOPOLOGY_DIR", dir.path())
            .env("MCP_CANARY_BIN", env!("CARGO_BIN_EXE_mcp-canary"))
            .output()
            .expect("run topology.sh (needs bash, python3, nginx, redis-server: scripts/test.sh installs them)");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "topology.sh up failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        let mut balancer = None;
        let (mut instances, mut names) = (Vec::new(), Vec::new());
        for line in stdout.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["balancer", url] => balancer = Some(url.to_string()),
                ["instance", name, url] => {
                    names.push(name.to_string());
                    instances.push(url.to_string());
                }
                _ => {}
            }
        }
        let balancer = balancer.unwrap_or_else(|| panic!("no balancer URL in {stdout}"));
        assert_eq!(instances.len(), 3, "{stdout}");
        Topology { dir, balancer, instances, names }
    }
}

impl Topology {
    /// A daemon config with one target, `dist`, on the balancer with the three instances: probes
    /// every `interval`, a 10-request affinity check and `broadcasts` delivery triggers per cycle.
    pub fn daemon_config(&self, interval: &str, broadcasts: u32) -> String {
        let instances: Vec<String> = self
            .names
            .iter()
            .zip(&self.instances)
            .map(|(name, url)| format!("{{ name = \"{name}\", url = \"{url}\" }}"))
            .collect();
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "2s"

[[targets]]
name = "dist"
url = "{balancer}"
interval = "{interval}"
jitter = 0.0
timeout = "2s"
protocol = "2025-11-25"
affinity_requests = 10
delivery_broadcasts = {broadcasts}
instances = [{instances}]

[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}

[targets.notification]
tool = "notify"
arguments = {{ nonce = "{{nonce}}", route = "broadcast" }}
method = "notifications/message"
timeout = "2s"
"#,
            balancer = self.balancer,
            instances = instances.join(", "),
        )
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("down").env("TOPOLOGY_DIR", self.dir.path()).output();
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/local/topology.sh")
}
