//! Injectors besides the proxy: configured commands (run without a shell, with a timeout),
//! SIGKILL of a local PID, Redis `CLIENT PAUSE` over one connection, and the reference target's
//! session expiry.

use std::time::Duration;

use redis::IntoConnectionInfo;
use tokio::process::Command;

use super::runner::ChaosRedis;

/// Split a command line into argv the way a POSIX shell would quote it, without running a shell.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let argv = shlex::split(line).ok_or_else(|| format!("{line:?}: unbalanced quotes"))?;
    if argv.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(argv)
}

/// Run `argv` (no shell, stdin/stdout/stderr detached) and wait at most `timeout` for it to exit
/// with status 0; a command still running then is killed.
pub async fn run_command(argv: &[String], timeout: Duration) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{program}: cannot start: {e}"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("{program} exited with {status}")),
        Ok(Err(e)) => Err(format!("{program}: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!("{program} still running after {}", humantime::format_duration(timeout)))
        }
    }
}

/// SIGKILL a local process.
pub fn kill_pid(pid: u32) -> Result<(), String> {
    let raw = i32::try_from(pid).map_err(|_| format!("PID {pid} out of range"))?;
    let pid_t = rustix::process::Pid::from_raw(raw).ok_or_else(|| format!("PID {pid} is not a process"))?;
    rustix::process::kill_process(pid_t, rustix::process::Signal::KILL).map_err(|e| format!("SIGKILL {pid}: {e}"))
}

/// The PID a pid file holds (decimal, surrounding whitespace allowed).
pub fn read_pid_file(path: &std::path::Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("PID file {}: {e}", path.display()))?;
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(format!("PID file {}: {:?} is not a process id", path.display(), text.trim())),
    }
}

/// One Redis connection opened before the faults (so the pause itself never needs a new one).
pub struct RedisPauser {
    conn: redis::aio::MultiplexedConnection,
}

impl RedisPauser {
    pub async fn connect(target: &ChaosRedis, timeout: Duration) -> Result<Self, String> {
        let mut info = target.url.as_str().into_connection_info().map_err(|e| format!("redis: {e}"))?;
        if let Some(password) = &target.password {
            let settings = info.redis_settings().clone().set_password(password.expose());
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(|e| format!("redis: {e}"))?;
        let conn = tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "redis: connect timed out".to_string())?
            .map_err(|e| format!("redis: {e}"))?;
        Ok(Self { conn })
    }

    /// `CLIENT PAUSE <ms> ALL`: Redis holds every client's commands for `d`.
    pub async fn pause(&self, d: Duration, timeout: Duration) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("CLIENT").arg("PAUSE").arg(d.as_millis() as u64).arg("ALL").clone();
        tokio::time::timeout(timeout, cmd.query_async::<()>(&mut conn))
            .await
            .map_err(|_| "CLIENT PAUSE timed out".to_string())?
            .map_err(|e| format!("CLIENT PAUSE: {e}"))
    }
}

/// An admin endpoint of the reference target next to its MCP endpoint: POST `body`, or GET
/// when `body` is `None`; the JSON answer.
async fn admin(
    http: &reqwest::Client,
    mcp_url: &url::Url,
    path: &str,
    body: Option<serde_json::Value>,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let mut url = mcp_url.clone();
    url.set_path(path);
    url.set_query(None);
    let request = match body {
        Some(b) => http.post(url).json(&b),
        None => http.get(url),
    };
    let r = request.timeout(timeout).send().await.map_err(|e| format!("{path}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("{path}: HTTP {}", r.status().as_u16()));
    }
    r.json().await.map_err(|e| format!("{path}: {e}"))
}

/// The reference target's `/admin/expire-sessions`.
pub async fn expire_sessions(http: &reqwest::Client, mcp_url: &url::Url, timeout: Duration) -> Result<(), String> {
    admin(http, mcp_url, "/admin/expire-sessions", Some(serde_json::json!({})), timeout).await.map(|_| ())
}

/// Start a restart of the reference target: remember its `error_rate` knob, answer every MCP
/// POST with 500, expire every session. Returns the knob's value to restore.
pub async fn begin_restart(http: &reqwest::Client, mcp_url: &url::Url, timeout: Duration) -> Result<f64, String> {
    let knobs = admin(http, mcp_url, "/admin/knobs", None, timeout).await?;
    let previous = knobs.get("error_rate").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    admin(http, mcp_url, "/admin/knobs", Some(serde_json::json!({"error_rate": 1.0})), timeout).await?;
    expire_sessions(http, mcp_url, timeout).await?;
    Ok(previous)
}

/// End a restart: the `error_rate` knob back to `previous`.
pub async fn end_restart(
    http: &reqwest::Client,
    mcp_url: &url::Url,
    previous: f64,
    timeout: Duration,
) -> Result<(), String> {
    admin(http, mcp_url, "/admin/knobs", Some(serde_json::json!({"error_rate": previous})), timeout).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_without_a_shell() {
        assert_eq!(split_command("systemctl kill 'my unit'").unwrap(), ["systemctl", "kill", "my unit"]);
        assert!(split_command("a 'b").unwrap_err().contains("unbalanced"));
        assert!(split_command("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn pid_files_hold_one_process_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pid");
        std::fs::write(&path, "4242\n").unwrap();
        assert_eq!(read_pid_file(&path), Ok(4242));
        for bad in ["", "1", "-3", "12 13", "x"] {
            std::fs::write(&path, bad).unwrap();
            assert!(read_pid_file(&path).unwrap_err().contains("is not a process id"), "{bad:?}");
        }
        assert!(read_pid_file(&dir.path().join("none")).unwrap_err().starts_with("PID file "));
    }

    #[tokio::test]
    async fn commands_report_failure_and_timeout() {
        let t = Duration::from_secs(5);
        run_command(&["true".into()], t).await.unwrap();
        assert!(run_command(&["false".into()], t).await.unwrap_err().contains("exited"));
        let slow = run_command(&["sleep".into(), "5".into()], Duration::from_millis(200)).await.unwrap_err();
        assert!(slow.contains("still running"), "{slow}");
        assert!(run_command(&["/nonexistent/x".into()], t).await.unwrap_err().contains("cannot start"));
    }
}
