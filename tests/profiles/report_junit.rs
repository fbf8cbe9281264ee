//! `--junit`, `--summary-md` and `$GITHUB_STEP_SUMMARY` on real short runs of every profile
//! (load, notify, matrix, chaos, longevity) against the reference target: each JUnit file is read
//! back by PyPI's junitparser (tests/report/junit_read.py), the way a CI system reads it, and its
//! cases must match the JSON report: a case per threshold (per matrix cell, per chaos scenario)
//! and a `verdict` case failing exactly when the run exits 99. `mcp-canary report` renders a
//! saved report the same way.
use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{bin, closed_addr};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A JUnit file as junitparser reads it: `{suites: [{name, tests, failures, skipped, cases}]}`.
fn junit(path: &Path) -> Value {
    let python = repo().join(".cache/py/junitparser/bin/python");
    assert!(python.is_file(), "{} missing: run scripts/install-test-servers.sh", python.display());
    let out = std::process::Command::new(python)
        .arg(repo().join("tests/report/junit_read.py"))
        .arg(path)
        .output()
        .expect("run junitparser");
    let xml = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        out.status.success(),
        "junitparser refused {}:\n{}\n{xml}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Run {
    code: i32,
    out: String,
    report: Value,
    junit: Value,
    summary: String,
}

impl Run {
    fn cases(&self) -> &Vec<Value> {
        let suites = self.junit["suites"].as_array().unwrap();
        assert_eq!(suites.len(), 1, "{}", self.junit);
        suites[0]["cases"].as_array().unwrap()
    }

    fn case(&self, name: &str) -> &Value {
        self.cases().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {name} in {}", self.junit))
    }

    fn outcomes(&self, outcome: &str) -> usize {
        self.cases().iter().filter(|c| c["outcome"] == outcome).count()
    }
}

/// `mcp-canary run ARGS` with `--report`, `--junit`, `--summary-md` and `--html` in `dir` (named
/// `name.*`), `$GITHUB_STEP_SUMMARY` at `step`; bounded.
async fn run(dir: &Path, name: &str, step: &Path, args: &[&str]) -> Run {
    let file = |ext: &str| dir.join(format!("{name}.{ext}"));
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(bin())
            .arg("run")
            .args(args)
            .arg("--report")
            .arg(file("json"))
            .arg("--junit")
            .arg(file("xml"))
            .arg("--summary-md")
            .arg(file("md"))
            .arg("--html")
            .arg(file("html"))
            .env("GITHUB_STEP_SUMMARY", step)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the run ends within 90 s")
    .expect("run mcp-canary");
    let out_text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(file("json")).unwrap_or_else(|e| panic!("no report ({e}):\n{out_text}"));
    let summary = std::fs::read_to_string(file("md")).unwrap_or_else(|e| panic!("no summary ({e}):\n{out_text}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        report: serde_json::from_str(&report).unwrap(),
        junit: junit(&file("xml")),
        summary,
        out: out_text,
    }
}

/// What every profile's JUnit file and summary hold: a case per threshold, passed or failed as
/// the report says (`no_data` a failure too), with observed vs limit; a `verdict` case failing
/// exactly when the run exited 99; the suite's counts agreeing; the summary's verdict, its
/// thresholds table and its links.
fn assert_consistent(r: &Run, html: &str) {
    let report = &r.report;
    let passed = report["verdict"] == "pass";
    assert_eq!(r.code, if passed { 0 } else { 99 }, "{}", r.out);
    let verdict = r.case("verdict");
    assert_eq!(verdict["outcome"], if passed { "passed" } else { "failure" }, "{verdict}");
    let empty = vec![];
    let thresholds = report["thresholds"].as_array().unwrap_or(&empty);
    for t in thresholds {
        let case = r.case(t["threshold"].as_str().unwrap());
        let message = case["message"].as_str().or(case["system_out"].as_str()).unwrap_or_default();
        assert!(message.contains(", limit ") && message.contains(" sample"), "observed vs limit: {case}");
        match t["status"].as_str().unwrap() {
            "pass" => assert_eq!(case["outcome"], "passed", "{case}"),
            "fail" => {
                assert_eq!((case["outcome"].as_str(), case["type"].as_str()), (Some("failure"), Some("threshold")))
            }
            "no_data" => {
                assert_eq!((case["outcome"].as_str(), case["type"].as_str()), (Some("failure"), Some("no_data")))
            }
            other => panic!("status {other}"),
        }
    }
    let suite = &r.junit["suites"][0];
    assert_eq!(suite["tests"].as_u64().unwrap() as usize, r.cases().len(), "{suite}");
    assert_eq!(suite["failures"].as_u64().unwrap() as usize, r.outcomes("failure"), "{suite}");
    assert_eq!(suite["skipped"].as_u64().unwrap() as usize, r.outcomes("skipped"), "{suite}");
    assert_eq!(r.outcomes("error"), 0, "{suite}");

    let s = &r.summary;
    let profile = report["profile"].as_str().unwrap();
    assert!(s.starts_with(&format!("### mcp-canary {profile} against ")), "{s}");
    assert!(s.lines().next().unwrap().contains(if passed { "✅ pass" } else { "❌ fail: " }), "{s}");
    let rows =
        s.lines().filter(|l| l.ends_with("| ✅ pass |") || l.ends_with("| ❌ fail |") || l.ends_with("| ❌ no data |"));
    assert_eq!(rows.count(), thresholds.len(), "{s}");
    assert!(s.contains(&format!("[HTML report]({html})")), "{s}");
    assert!(s.contains("JSON report: "), "{s}");
}

#[tokio::test]
async fn load_runs_pass_and_breach_with_observed_vs_limit() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let step = dir.path().join("step-summary.md");
    let base = ["load", "--target", url.as_str(), "--duration", "2s", "--clients", "2", "--rpm", "120"];

    let mut args = base.to_vec();
    args.extend(["--threshold", "p99 < 5s", "--threshold", "error_rate < 1%"]);
    let ok = run(dir.path(), "pass", &step, &args).await;
    assert_consistent(&ok, "pass.html");
    assert_eq!(ok.code, 0, "{}", ok.out);
    assert_eq!((ok.cases().len(), ok.outcomes("passed")), (3, 3), "{}", ok.junit);
    assert!(ok.case("error_rate<1%")["system_out"].as_str().unwrap().starts_with("error_rate = 0%, limit < 1% over "));
    assert!(ok.summary.contains("| requests | error rate | throughput | p50 | p95 | p99 |"), "{}", ok.summary);

    let mut args = base.to_vec();
    args.extend(["--threshold", "p95 < 1us", "--threshold", "error_rate < 1%"]);
    let bad = run(dir.path(), "breach", &step, &args).await;
    assert_consistent(&bad, "breach.html");
    assert_eq!(bad.code, 99, "exit code unchanged on a breach: {}", bad.out);
    let breach = bad.case("p95<0.001ms");
    let message = breach["message"].as_str().unwrap();
    assert!(message.starts_with("p95 = ") && message.contains("ms, limit < 0.001ms over "), "{breach}");
    assert_eq!(bad.case("error_rate<1%")["outcome"], "passed");
    assert_eq!(bad.outcomes("failure"), 2, "the threshold and the verdict: {}", bad.junit);
    assert!(bad.summary.contains("❌ fail: thresholds not met: p95&lt;0.001ms (fail)"), "{}", bad.summary);

    // $GITHUB_STEP_SUMMARY got both runs' summaries, appended.
    let step_text = std::fs::read_to_string(&step).unwrap();
    assert_eq!(step_text.matches("### mcp-canary load against ").count(), 2, "{step_text}");
    assert!(step_text.contains(&ok.summary) && step_text.contains(&bad.summary), "{step_text}");

    // `mcp-canary report` renders the saved report to the same JUnit cases.
    let (xml, md) = (dir.path().join("again.xml"), dir.path().join("again.md"));
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(bin())
            .arg("report")
            .arg(dir.path().join("breach.json"))
            .arg("--junit")
            .arg(&xml)
            .arg("--summary-md")
            .arg(&md)
            .env_remove("GITHUB_STEP_SUMMARY")
            .output(),
    )
    .await
    .expect("report ends")
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let again = junit(&xml);
    assert_eq!(again["suites"][0]["cases"], bad.junit["suites"][0]["cases"]);
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("❌ fail: thresholds not met") && md.contains("JSON report: "), "{md}");
}

/// Nothing succeeded (nothing listens): the lenient threshold holds, the verdict case fails.
#[tokio::test]
async fn a_run_in_which_nothing_succeeded_fails_its_verdict_case() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/mcp", closed_addr());
    let step = dir.path().join("step.md");
    let args = ["load", "--target", url.as_str(), "--duration", "2s", "--clients", "2", "--threshold", "p99 < 60s"];
    let r = run(dir.path(), "dead", &step, &args).await;
    assert_consistent(&r, "dead.html");
    assert_eq!(r.code, 99, "{}", r.out);
    assert_eq!(r.case("p99<60s")["outcome"], "passed", "{}", r.junit);
    assert_eq!(r.case("verdict")["message"], "run failed: nothing succeeded", "{}", r.junit);
    assert!(r.summary.lines().next().unwrap().ends_with("❌ fail: nothing succeeded"), "{}", r.summary);
}

#[tokio::test]
async fn notify_run_has_its_delivery_case_and_figures() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let step = dir.path().join("step.md");
    let args = [
        "notify",
        "--target",
        url.as_str(),
        "--sessions",
        "5",
        "--batches",
        "2",
        "--broadcasts",
        "3",
        "--batch-interval",
        "200ms",
        "--threshold",
        "delivery >= 99%",
    ];
    let r = run(dir.path(), "notify", &step, &args).await;
    assert_consistent(&r, "notify.html");
    assert_eq!(r.code, 0, "{}", r.out);
    let delivery = r.case("delivery>=99%");
    assert!(delivery["system_out"].as_str().unwrap().starts_with("delivery = 100%, limit >= 99% over 30 samples"));
    assert!(r.summary.contains("| delivery | expected | received |") && r.summary.contains("| 100% | 30 | 30 |"));
}

#[tokio::test]
async fn matrix_run_has_a_case_per_cell() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let step = dir.path().join("step.md");
    let r = run(dir.path(), "matrix", &step, &["matrix", "--target", url.as_str(), "--settle", "100ms"]).await;
    assert_consistent(&r, "matrix.html");
    let cells = r.report["cells"].as_array().unwrap();
    assert_eq!(r.cases().len(), cells.len() + 1, "{}", r.junit);
    let mut by_result = std::collections::BTreeMap::<&str, usize>::new();
    for c in cells {
        let name = format!(
            "{}/{}/{}",
            c["capabilities"].as_str().unwrap(),
            c["response_mode"].as_str().unwrap(),
            c["protocol_version"].as_str().unwrap()
        );
        let case = r.case(&name);
        let result = c["result"].as_str().unwrap();
        *by_result.entry(result).or_default() += 1;
        let expected = match result {
            "works" | "degraded" => "passed",
            "not_exercised" => "skipped",
            "broken" => "failure",
            other => panic!("result {other}"),
        };
        assert_eq!(case["outcome"], expected, "{case} for {c}");
        if result == "degraded" {
            assert!(case["system_out"].as_str().unwrap().starts_with("degraded: "), "{case}");
        }
    }
    let count = |k: &str| by_result.get(k).copied().unwrap_or(0);
    let row =
        format!("| {} | {} | {} | {} |", count("works"), count("not_exercised"), count("degraded"), count("broken"));
    assert!(
        r.summary.contains("| works | not exercised | degraded | broken |") && r.summary.contains(&row),
        "{}",
        r.summary
    );
}

#[tokio::test]
async fn chaos_run_has_a_case_per_scenario_and_threshold() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let step = dir.path().join("step.md");
    let args = [
        "chaos",
        "--target",
        url.as_str(),
        "--allow-chaos",
        "--scenario",
        "expire-sessions",
        "--fault",
        "1s",
        "--recovery",
        "3s",
        "--warmup",
        "1s",
        "--clients",
        "3",
        "--rpm",
        "120",
    ];
    let r = run(dir.path(), "chaos", &step, &args).await;
    assert_consistent(&r, "chaos.html");
    let scenarios = r.report["scenarios"].as_array().unwrap();
    let thresholds = r.report["thresholds"].as_array().unwrap();
    assert_eq!(r.cases().len(), scenarios.len() + thresholds.len() + 1, "{}", r.junit);
    for s in scenarios {
        let case = r.cases().iter().find(|c| c["name"] == s["name"] && c["classname"] == "mcp-canary.chaos.scenarios");
        let case = case.unwrap_or_else(|| panic!("no case for {s} in {}", r.junit));
        let ok = s["injected"] == true && s["recovered"] == true;
        assert_eq!(case["outcome"], if ok { "passed" } else { "failure" }, "{case} for {s}");
        let out = case["system_out"].as_str().unwrap();
        assert!(out.contains("recovered after") || out.contains("not recovered within"), "{case}");
    }
    assert!(r.summary.contains("| scenario | injected | detected after | recovered after |"), "{}", r.summary);
    assert!(r.summary.contains("| expire-sessions | yes |"), "{}", r.summary);
}

/// Memory samples that all fail (nothing listens at `--memory-url`): the default
/// `memory_growth < 50%` has no data, a failing case of type `no_data`.
#[tokio::test]
async fn longevity_run_with_no_memory_data_fails_that_case() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let step = dir.path().join("step.md");
    let memory = format!("http://{}/metrics", closed_addr());
    let args = [
        "longevity",
        "--target",
        url.as_str(),
        "--clients",
        "2",
        "--duration",
        "3s",
        "--rpm",
        "60",
        "--session-lifetime",
        "1s",
        "--snapshot-interval",
        "1s",
        "--slope-window",
        "2s",
        "--memory-url",
        memory.as_str(),
    ];
    let r = run(dir.path(), "longevity", &step, &args).await;
    assert_consistent(&r, "longevity.html");
    assert_eq!(r.code, 99, "{}", r.out);
    let growth = r.case("memory_growth<50%");
    assert_eq!((growth["outcome"].as_str(), growth["type"].as_str()), (Some("failure"), Some("no_data")), "{growth}");
    assert!(r.summary.contains("Sessions ended: ") && r.summary.contains("| ❌ no data |"), "{}", r.summary);
}
