//! The shipped Prometheus scrape config is valid for the real promtool.

use std::path::Path;
use std::process::Command;

#[test]
fn promtool_accepts_the_scrape_config() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/prometheus.yml");
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(&config)
        .output()
        .expect("promtool not found: install Debian's prometheus package (scripts/test.sh does)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool rejected {}:\n{text}", config.display());
    assert!(text.contains("SUCCESS"), "{text}");
}
