//! What the bench binaries share: `mcp-canary` child processes killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed (and reaped) on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `mcp-canary ARGS...` and wait for the stdout line containing `marker`; returns the
/// guard and the rest of that line.
pub fn spawn(args: &[&str], marker: &str) -> (Guard, String) {
    spawn_bin(env!("CARGO_BIN_EXE_mcp-canary"), args, marker)
}

/// [`spawn`] of another `mcp-canary` binary (an earlier build, for a before/after pair).
pub fn spawn_bin(bin: &str, args: &[&str], marker: &str) -> (Guard, String) {
    let mut child = Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mcp-canary");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let announced = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains(marker) => {
                break line[line.find(marker).unwrap() + marker.len()..].to_string();
            }
            Some(_) => continue,
            None => panic!("mcp-canary {args:?} exited before announcing {marker:?}"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Guard(child), announced.trim().to_string())
}

/// One GET over a fresh connection (HTTP/1.0, read to the end), without pulling an HTTP client
/// into the benches: status line, content type, body.
#[allow(dead_code, reason = "not every bench reads the daemon's HTTP surface")]
pub fn get(url: &str, accept: Option<&str>) -> (String, String, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).expect("connect daemon");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{accept}\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").expect("response head");
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status = head.lines().next().unwrap_or_default().to_string();
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    (status, content_type, out[split + 4..].to_vec())
}

/// The config of one target probing the reference target's `echo` tool every `interval`.
#[allow(dead_code, reason = "not every bench writes a daemon config")]
pub fn echo_target(name: &str, url: &str, interval: &str, timeout: &str) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\n\
         [targets.probe]\ntool = \"echo\"\ntool_arguments = {{ message = \"canary\" }}\n"
    )
}
