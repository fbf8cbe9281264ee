//! `--html` on every `run` profile and `mcp-canary report saved.json --html` (with a
//! `--baseline`), against the reference target: each page is self-contained, has its profile's
//! charts, and is looked at in headless Chromium (Debian `chromium`, driven by npm
//! `playwright-core` from `scripts/install-test-servers.sh`): no console or page error, no
//! request, every chart drew geometry; a screenshot is taken. `UPDATE_SCREENSHOTS=1` writes
//! them to `docs/screenshots/<profile>.png` (the README shows them).
use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Run `mcp-canary ARGS` to its end (bounded); returns the exit code and stdout+stderr.
async fn cli(args: &[&str], within: Duration) -> (i32, String) {
    let out = tokio::time::timeout(
        within,
        Command::new(common::bin()).args(args).env("RUST_LOG", "warn").stdin(Stdio::null()).kill_on_drop(true).output(),
    )
    .await
    .expect("mcp-canary ended within its bound")
    .expect("run mcp-canary");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// `run PROFILE ARGS --report DIR/PROFILE.json --html DIR/PROFILE.html`; asserts exit 0.
async fn run_profile(dir: &Path, profile: &str, args: &[&str]) -> (PathBuf, PathBuf) {
    let (json, html) = (dir.join(format!("{profile}.json")), dir.join(format!("{profile}.html")));
    let mut all = vec!["run", profile];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--report", json.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    let (code, out) = cli(&all, Duration::from_secs(90)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("wrote {}", html.display())), "{out}");
    (json, html)
}

/// The page fetches nothing and has these charts; returns its text.
fn assert_page(html: &Path, charts: &[&str]) -> String {
    let page = std::fs::read_to_string(html).expect("html written");
    let lower = page.to_ascii_lowercase();
    for bad in ["src=", "href=", "url(", "@import", "<link", "<script", "<img", "<iframe"] {
        assert!(!lower.contains(bad), "{} contains {bad}", html.display());
    }
    for id in charts {
        assert!(page.contains(&format!("id=\"chart-{id}\"")), "{} has no {id} chart", html.display());
    }
    assert!(page.len() < 3_000_000, "{} is {} bytes", html.display(), page.len());
    println!("{}: {} bytes", html.display(), page.len());
    page
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Open the page in headless Chromium: no console error, no request, every chart drew;
/// returns the screenshot's path (in `docs/screenshots/` with `UPDATE_SCREENSHOTS=1`).
async fn look_at(html: &Path, name: &str, docs: bool) -> PathBuf {
    let playwright = repo().join(".cache/npm/playwright");
    assert!(
        playwright.join("node_modules/playwright-core/package.json").exists(),
        "{} is missing: run scripts/install-test-servers.sh (scripts/test.sh does)",
        playwright.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: apt-get install chromium (scripts/test.sh does)");
    let png = if docs && std::env::var_os("UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        repo().join("docs/screenshots").join(format!("{name}.png"))
    } else {
        html.with_extension("png")
    };
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new("node")
            .arg(repo().join("tests/report/check-html.mjs"))
            .args([playwright.as_os_str(), html.as_os_str(), png.as_os_str()])
            .env("CHROMIUM", &chromium)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("browser check within 90 s")
    .expect("run node");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser check of {}: {text}", html.display());
    println!("{name}: {text}");
    let size = std::fs::metadata(&png).expect("screenshot written").len();
    assert!(size > 10_000, "{} is only {size} bytes", png.display());
    png
}

#[tokio::test]
async fn load_html_and_report_against_a_baseline() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--target", &url, "--clients", "6", "--rpm", "900", "--duration", "8s", "--ramp", "3s"];
    let (json, html) = run_profile(dir.path(), "load", &args).await;
    assert_page(&html, &["throughput", "latency", "errors", "population"]);
    look_at(&html, "load-run", false).await;

    // A second run, rendered against the first: both timelines overlaid, the comparison shown.
    let second = dir.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let (json2, _) = run_profile(&second, "load", &args).await;
    let against = dir.path().join("against.html");
    let (code, out) = cli(
        &["report", json2.to_str().unwrap(), "--baseline", json.to_str().unwrap(), "--html", against.to_str().unwrap()],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let page = assert_page(&against, &["throughput", "latency", "errors", "population"]);
    assert!(page.contains("Against the baseline") && page.contains("stroke-dasharray"), "no baseline overlay");
    assert!(page.contains("baseline requests/s"));
    look_at(&against, "load", true).await;

    // A baseline that cannot be read is named.
    let (code, out) = cli(
        &["report", json.to_str().unwrap(), "--baseline", "/nonexistent.json", "--html", "x.html"],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("/nonexistent.json"), "{out}");
}

#[tokio::test]
async fn notify_html() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let args =
        ["--target", &url, "--sessions", "10", "--batches", "6", "--broadcasts", "5", "--batch-interval", "500ms"];
    let (_, html) = run_profile(dir.path(), "notify", &args).await;
    assert_page(&html, &["deliveries", "delivery-latency"]);
    look_at(&html, "notify", true).await;
}

#[tokio::test]
async fn matrix_html() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (_, html) = run_profile(dir.path(), "matrix", &["--target", &url, "--settle", "100ms"]).await;
    let page = assert_page(&html, &["matrix"]);
    assert!(page.contains("<rect") && page.contains("works"), "no grid of cells");
    look_at(&html, "matrix", true).await;
}

#[tokio::test]
async fn chaos_html() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--target",
        &url,
        "--allow-chaos",
        "--scenario",
        "proxy-latency:300ms",
        "--fault",
        "3s",
        "--recovery",
        "3s",
        "--warmup",
        "2s",
        "--clients",
        "4",
        "--rpm",
        "240",
        "--slow-after",
        "200ms",
    ];
    let (_, html) = run_profile(dir.path(), "chaos", &args).await;
    let page = assert_page(&html, &["throughput", "latency", "errors"]);
    assert!(
        page.contains("fault window") && page.contains("recovery window") && page.contains(">detected</span>"),
        "no fault marks"
    );
    look_at(&html, "chaos", true).await;
}

#[tokio::test]
async fn longevity_html() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let metrics_url = format!("{}/metrics", url.trim_end_matches("/mcp"));
    let args = [
        "--target",
        &url,
        "--clients",
        "4",
        "--duration",
        "10s",
        "--rpm",
        "240",
        "--churn",
        "0.5",
        "--session-lifetime",
        "2s",
        "--snapshot-interval",
        "1s",
        "--slope-window",
        "4s",
        "--warmup",
        "3s",
        "--memory-url",
        &metrics_url,
    ];
    let (_, html) = run_profile(dir.path(), "longevity", &args).await;
    let page = assert_page(&html, &["memory-target", "memory-mcp-canary", "throughput", "latency"]);
    assert!(page.contains("fitted slope") && page.contains("warm-up"), "no fitted memory slope");
    look_at(&html, "longevity", true).await;
}

/// The daemon's scheduled runs: an HTML report beside each JSON one, and only the newest
/// `keep_runs` runs left in `results_dir` however long it runs.
#[tokio::test]
async fn daemon_writes_html_and_keeps_the_newest_runs() {
    let (_target, url) = common::start_target(&[]).await;
    let results = tempfile::tempdir().unwrap();
    let profiles = r#"keep_runs = 2
[[profiles]]
name = "often"
profile = "load"
targets = ["ref"]
schedule = "*/2 * * * * *"
[profiles.load]
clients = 1
rpm = 120.0
duration = "1s"
"#;
    let config = common::heavy_config(&url, results.path(), profiles);
    let (daemon, _dir, base) = common::start_daemon("daemon-report-html", &config, &[]).await;
    let files = |ext: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(results.path())
            .unwrap()
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        v.sort();
        v
    };
    // Four runs completed: two more than kept.
    let mut completed = 0.0;
    for _ in 0..80 {
        let text = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
        completed = text
            .lines()
            .filter(|l| l.starts_with("mcp_canary_profile_runs_completed_total{") && l.contains("profile=\"often\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if completed >= 4.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(completed >= 4.0, "4 runs within 20 s, saw {completed}:\n{}", daemon.log_text());
    // A run's files are written (JSON, HTML, then the pruning) after its completion is counted,
    // and the next run may end meanwhile: wait for a moment where each kept run has both files.
    let mut seen = (Vec::new(), Vec::new());
    for _ in 0..20 {
        seen = (files("json"), files("html"));
        let (json, html) = &seen;
        if !json.is_empty() && json.len() <= 2 && json.iter().all(|j| html.contains(&j.with_extension("html"))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (json, html) = seen;
    assert!(!json.is_empty() && json.len() <= 2, "keep_runs = 2 after {completed} runs: {json:?}");
    assert!(html.len() <= 2, "old HTML files removed too: {html:?}");
    for j in &json {
        let page = j.with_extension("html");
        assert!(html.contains(&page), "{} has no HTML beside it: {html:?}", j.display());
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(text.contains("<svg") && text.contains("often"), "{}", page.display());
    }
}
