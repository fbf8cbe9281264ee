//! What the bench binaries share: `mcp-canary` child processes killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

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
