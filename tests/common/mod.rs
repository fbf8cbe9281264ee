//! Shared helpers for the integration tests: child processes with kill-on-drop guards and
//! bounded readiness waits, free loopback ports, and a Prometheus text scrape parser.
#![allow(dead_code)]

pub mod compat;
pub mod faulty;
pub mod peers;
pub mod redis_server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test: the one cargo built with the tests, or `TEST_MCP_CANARY_BIN` (e.g. a
/// release build, for the memory figures of docs/reliability.md; not `MCP_CANARY_...`, a prefix
/// the daemon reads as config).
pub fn bin() -> PathBuf {
    std::env::var_os("TEST_MCP_CANARY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mcp-canary")))
}

/// `serve --config PATH` on a config it must refuse: asserts it exits non-zero (within 20 s)
/// without ever listening, and returns its stderr.
pub async fn serve_refused(path: &std::path::Path) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(bin()).args(["serve", "--config"]).arg(path).output(),
    )
    .await
    .expect("serve exits on a bad config")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "serve started:\n{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "the daemon must not start");
    stderr
}

/// The JSON run reports in a results directory (the daemon writes one per run).
pub fn reports(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect()
}

/// A directory for child logs, kept after the run so failures can be read.
pub fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-logs");
    std::fs::create_dir_all(&dir).expect("create log dir");
    dir
}

/// A child process that is killed when the guard drops.
pub struct Proc {
    pub child: Child,
    /// The URL the process announced on stdout (e.g. `http://127.0.0.1:PORT`).
    pub announced: String,
    pub log: PathBuf,
}

impl Proc {
    /// Start `mcp-canary ARGS...`, wait (bounded) for a stdout line containing `marker`, and
    /// return the rest of that line after the marker.
    pub async fn start(name: &str, args: &[&str], envs: &[(&str, &str)], marker: &str) -> Proc {
        Self::start_via(name, Command::new(bin()), args, envs, marker).await
    }

    /// As [`Proc::start`], with `cmd` (the binary, or a wrapper that execs it) run with `args`.
    pub async fn start_via(name: &str, cmd: Command, args: &[&str], envs: &[(&str, &str)], marker: &str) -> Proc {
        Self::start_within(name, cmd, args, envs, marker, Duration::from_secs(30)).await
    }

    /// As [`Proc::start_via`], waiting at most `within` for the marker: for children slower to
    /// start than the binary (a node server importing its packages cold).
    pub async fn start_within(
        name: &str,
        mut cmd: Command,
        args: &[&str],
        envs: &[(&str, &str)],
        marker: &str,
        within: Duration,
    ) -> Proc {
        // Tests of one crate share the process: a sequence number keeps their logs apart.
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = log_dir().join(format!("{name}-{}-{seq}.log", std::process::id()));
        let stderr = std::fs::File::create(&log).expect("create log file");
        cmd.args(args)
            .env("RUST_LOG", std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout piped");
        let mut lines = BufReader::new(stdout).lines();
        let announced = tokio::time::timeout(within, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(idx) = line.find(marker) {
                    return Some(line[idx + marker.len()..].trim().to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            panic!(
                "{name} did not announce {marker:?} within {within:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Proc { child, announced, log }
    }

    /// The daemon's log so far (for assertion messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send SIGTERM and wait (bounded) for the exit status code.
    pub async fn terminate(&mut self, within: Duration) -> Option<i32> {
        let pid = self.child.id()?;
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        tokio::time::timeout(within, self.child.wait()).await.ok()?.ok()?.code()
    }
}

/// Start the reference target on a free loopback port; returns the guard and its MCP URL.
pub async fn start_target(extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["target", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let proc = Proc::start("target", &args, &[], "listening on ").await;
    let url = proc.announced.clone();
    (proc, url)
}

/// Write `config` to a temp file and start `mcp-canary serve` on it; returns the guard and the
/// daemon's base URL. The config must use `listen = "127.0.0.1:0"`.
pub async fn start_daemon(name: &str, config: &str, envs: &[(&str, &str)]) -> (Proc, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("canary.toml");
    std::fs::write(&path, config).expect("write config");
    let proc =
        Proc::start(name, &["serve", "--config", path.to_str().unwrap()], envs, "mcp-canary listening on ").await;
    let url = proc.announced.clone();
    (proc, dir, url)
}

/// [`start_daemon`] under an open-file limit of `nofile` (soft and hard, so the daemon cannot
/// raise it): the shell's `ulimit -n`, then `exec` of the binary (same pid).
pub async fn start_daemon_nofile(name: &str, config: &str, nofile: u64) -> (Proc, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("canary.toml");
    std::fs::write(&path, config).expect("write config");
    let mut sh = Command::new("sh");
    sh.args(["-c", &format!("ulimit -n {nofile} && exec \"$0\" \"$@\"")]).arg(bin());
    let args = ["serve", "--config", path.to_str().unwrap()];
    let proc = Proc::start_via(name, sh, &args, &[], "mcp-canary listening on ").await;
    let url = proc.announced.clone();
    (proc, dir, url)
}

/// A daemon config with one reference target `ref` that allows heavy profiles (timeout 2 s),
/// caps of 50 sessions and 100 requests/s, reports in `results`, and `profiles` appended.
pub fn heavy_config(mcp_url: &str, results: &std::path::Path, profiles: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"
[[targets]]
name = "ref"
url = "{mcp_url}"
interval = "30s"
timeout = "2s"
allow_heavy = true
[heavy_profiles]
max_sessions = 50
max_request_rate = 100.0
results_dir = "{}"
{profiles}"#,
        results.display()
    )
}

/// A loopback port that was free a moment ago (for servers that only take a port number).
///
/// Taken below the kernel's ephemeral range (32768-60999 here): a port a test names before
/// something binds it (a Prometheus config written first) must not be handed meanwhile to
/// another test's `bind(0)` or outgoing connection, which draw from that range.
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = rand::random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

/// A loopback address nothing listens on.
pub fn closed_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap()
}

/// One parsed sample of a Prometheus text exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed `/metrics` scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let samples =
            text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(parse_sample).collect();
        Scrape { samples, text: text.to_string() }
    }

    /// Samples of `name` whose labels include every `(key, value)` in `filter`.
    pub fn matching<'a, 'f>(
        &'a self,
        name: &'f str,
        filter: &'f [(&'f str, &'f str)],
    ) -> impl Iterator<Item = &'a Sample> + use<'a, 'f> {
        self.samples.iter().filter(move |s| {
            s.name == name && filter.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Sum of the matching samples; `None` when no series matches.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
        let mut it = self.matching(name, filter).peekable();
        it.peek()?;
        Some(it.map(|s| s.value).sum())
    }

    /// Sum of the matching samples, 0 when none.
    pub fn value(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.sum(name, filter).unwrap_or(0.0)
    }

    /// Distinct metric names (histograms contribute their `_bucket`/`_sum`/`_count` names).
    pub fn names(&self) -> std::collections::BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match head.find('{') {
        Some(i) => (&head[..i], parse_labels(head[i + 1..].strip_suffix('}')?)?),
        None => (head, BTreeMap::new()),
    };
    Some(Sample { name: name.to_string(), labels, value })
}

fn parse_labels(mut s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    while !s.is_empty() {
        let eq = s.find('=')?;
        let key = s[..eq].trim_start_matches(',').to_string();
        let rest = s[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.insert(key, value);
        s = rest[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

/// GET `base/metrics` and parse it.
pub async fn scrape(base: &str) -> Scrape {
    let text = reqwest::get(format!("{base}/metrics")).await.expect("scrape").text().await.expect("scrape body");
    Scrape::parse(&text)
}

/// Scrape until `pred` holds or `within` passes; returns the last scrape and whether it held.
pub async fn scrape_until(base: &str, within: Duration, pred: impl Fn(&Scrape) -> bool) -> (Scrape, bool) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let s = scrape(base).await;
        if pred(&s) {
            return (s, true);
        }
        if tokio::time::Instant::now() >= deadline {
            return (s, false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// POST a JSON body to a reference target admin path (`/admin/...`).
pub async fn admin(mcp_url: &str, path: &str, body: serde_json::Value) {
    let base = mcp_url.trim_end_matches("/mcp");
    let resp = reqwest::Client::new().post(format!("{base}{path}")).json(&body).send().await.expect("admin request");
    assert!(resp.status().is_success(), "admin {path} answered {}", resp.status());
}

/// A node MCP server from the npm registry (installed by `scripts/install-test-servers.sh`).
pub struct NodeServer {
    _child: Child,
    pub url: String,
}

/// Start the official "everything" server with Streamable HTTP on a free loopback port.
pub async fn start_everything() -> NodeServer {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let entry = root.join(".cache/npm/everything/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.is_file(),
        "{} is missing: run scripts/install-test-servers.sh (scripts/test.sh does)",
        entry.display()
    );
    // Through the peers' launcher: it makes sure the port it picked is the server's.
    let node = PathBuf::from("node");
    let (child, url, _log) =
        peers::spawn_listening("everything", &node, &[entry, PathBuf::from("streamableHttp")], &[]).await;
    NodeServer { _child: child, url }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_escapes_and_special_values() {
        let s = Scrape::parse(
            "# HELP x y\nfoo_total{a=\"1\",b=\"x\\\"y,z\"} 3\nbar 1.5\nh_bucket{le=\"+Inf\"} 7\nn{a=\"\"} NaN\n",
        );
        assert_eq!(s.value("foo_total", &[("b", "x\"y,z")]), 3.0);
        assert_eq!(s.value("bar", &[]), 1.5);
        assert_eq!(s.value("h_bucket", &[("le", "+Inf")]), 7.0);
        assert!(s.sum("missing", &[]).is_none());
    }
}
