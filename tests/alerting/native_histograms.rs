//! A large fleet's scrape kept small: Debian's Prometheus with native histograms on
//! (`--enable-feature=native-histograms`, which makes it ask for the protobuf exposition first)
//! scrapes a daemon; the latency histogram arrives as native histograms: `histogram_quantile`
//! over the histogram itself (no `le`) answers, and no `_bucket` series exists. Counters, gauges
//! and the info family arrive too. A scraper that does not ask keeps the classic text.
//!
//! The native SLI rules (prometheus/rules/sli-native.yml, generated from sli.yml by
//! scripts/gen-native-rules.py): in step with sli.yml, valid for promtool, and on a native scrape
//! they record the same SLI series, with the same values, as sli.yml on a classic scrape of the
//! same daemon (two Prometheus side by side).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common::{admin, start_daemon, start_target};
use crate::promql;
use crate::stack::{query, query_vector, start_prometheus_flags};

const P95: &str =
    "histogram_quantile(0.95, rate(mcp_client_operation_duration_seconds{mcp_method_name=\"tools/call\"}[1m]))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_native_histograms_over_protobuf() {
    let (_target, mcp_url) = start_target(&[]).await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[targets]]\nname = \"ref\"\nurl = \"{mcp_url}\"\ninterval = \"1s\"\n\
         [targets.probe]\ntool = \"echo\"\ntool_arguments = {{ message = \"canary\" }}\n"
    );
    let (_daemon, _dir, base) = start_daemon("native", &config, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let host = base.trim_start_matches("http://").to_string();
    let (_prom, prom) = start_prometheus_flags(
        work.path(),
        &[("mcp-canary", vec![host])],
        &[],
        None,
        &["--enable-feature=native-histograms"],
    )
    .await;

    // Bounded: a rate over native histograms needs two scrapes with probes between them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let p95 = loop {
        if let Ok(v) = query_vector(&prom, P95).await
            && let [(labels, value)] = v.as_slice()
            && value.is_finite()
        {
            break (labels.clone(), *value);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no native histogram p95 within 40 s: {:?}",
            query_vector(&prom, P95).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(p95.0.get("target").map(String::as_str), Some("ref"), "{p95:?}");
    assert!(p95.1 > 0.0 && p95.1 < 5.0, "p95 of echo on loopback: {p95:?}");
    assert_eq!(query(&prom, "mcp_client_operation_duration_seconds_bucket").await, Ok(0), "classic buckets stored");
    assert_eq!(query(&prom, "mcp_client_operation_duration_seconds_count").await, Ok(0), "classic _count stored");
    assert_eq!(query(&prom, "mcp_canary_probes_total{target=\"ref\",outcome=\"success\"}").await, Ok(1));
    assert_eq!(query(&prom, "mcp_canary_probe_success{target=\"ref\"} == 1").await, Ok(1));
    assert_eq!(query(&prom, "mcp_canary_server_info{target=\"ref\"}").await, Ok(1), "the info family");
    assert_eq!(query(&prom, "process_resident_memory_bytes > 0").await, Ok(1));

    // A classic scraper (no Accept) still gets the text with buckets.
    let plain = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert!(plain.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = plain.text().await.unwrap();
    assert!(text.contains("mcp_client_operation_duration_seconds_bucket{target=\"ref\""), "{text}");
}

const NATIVE_RULES: &str = "prometheus/rules/sli-native.yml";
const CLASSIC_RULES: &str = "prometheus/rules/sli.yml";

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .current_dir(promql::repo())
        .output()
        .unwrap_or_else(|e| panic!("{what} not found ({e}): scripts/test.sh installs it from Debian"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

fn recorded(rel: &str) -> BTreeSet<String> {
    promql::yaml_values(&std::fs::read_to_string(promql::repo().join(rel)).unwrap(), "record").into_iter().collect()
}

#[test]
fn native_rules_are_generated_from_the_classic_ones_and_valid() {
    // In step: regenerating from sli.yml gives the committed file byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sli-native.yml");
    run(Command::new("python3").arg("scripts/gen-native-rules.py").arg(&out), "python3");
    let committed = std::fs::read_to_string(promql::repo().join(NATIVE_RULES)).unwrap();
    assert!(
        std::fs::read_to_string(&out).unwrap() == committed,
        "{NATIVE_RULES} is not what scripts/gen-native-rules.py makes of {CLASSIC_RULES}: run the script and commit"
    );
    // Every classic rule that reads a histogram's `_bucket`/`_count` has its native rule of the
    // same name, and the native file records no name the classic file does not.
    let classic_text = std::fs::read_to_string(promql::repo().join(CLASSIC_RULES)).unwrap();
    let histogram_rules: BTreeSet<String> = classic_text
        .split("- record: ")
        .skip(1)
        .filter(|r| r.contains("_bucket{") || r.contains("_count{"))
        .map(|r| r.lines().next().unwrap().trim().to_string())
        .collect();
    assert!(histogram_rules.len() >= 7, "{histogram_rules:?}");
    assert_eq!(recorded(NATIVE_RULES), histogram_rules);
    assert!(!committed.contains("_bucket") && !committed.contains("_count{"), "{committed}");
    let text = run(Command::new("promtool").args(["check", "rules", NATIVE_RULES]), "promtool");
    assert!(text.contains("SUCCESS") && !text.contains("FAILED"), "{text}");
}

/// The latency SLO threshold of the rules (0.5 s) and a knob latency above it.
const SLOW_MS: u64 = 600;

/// The series of an instant query keyed by (target, mcp_method_name).
async fn by_series(prom: &str, expr: &str) -> BTreeMap<(String, String), f64> {
    let v = query_vector(prom, expr).await.unwrap_or_else(|e| panic!("{prom}: {expr}: {e}"));
    v.into_iter()
        .map(|(l, value)| {
            let key = |k: &str| l.get(k).cloned().unwrap_or_default();
            ((key("target"), key("mcp_method_name")), value)
        })
        .collect()
}

/// Health of every rule Prometheus evaluates: "name: error" for each that is not ok.
async fn unhealthy_rules(prom: &str) -> Vec<String> {
    let body: serde_json::Value = reqwest::get(format!("{prom}/api/v1/rules")).await.unwrap().json().await.unwrap();
    let mut out = Vec::new();
    for g in body["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            if r["health"] != "ok" {
                out.push(format!("{}: {} {}", r["name"], r["health"], r["lastError"]));
            }
        }
    }
    out
}

/// Two Prometheus side by side scrape one daemon probing three reference targets: `fast`
/// (loopback latency, every operation good), `slow` (every request delayed 0.6 s: every operation
/// bad) and `mixed` (slow for a few seconds, then fast). The classic one (text, `_bucket`) and
/// the native one (`--enable-feature=native-histograms`, protobuf) both load every file of
/// prometheus/rules/ (sli.yml and sli-native.yml together) and alerts/slo.yml.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_sli_rules_agree_with_the_classic_ones_on_the_same_daemon() {
    let (_fast, fast_url) = start_target(&[]).await;
    let (_slow, slow_url) = start_target(&[]).await;
    let (_mixed, mixed_url) = start_target(&[]).await;
    admin(&slow_url, "/admin/knobs", serde_json::json!({"latency_ms": SLOW_MS})).await;
    let target = |name: &str, url: &str| {
        format!(
            "[[targets]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"5s\"\ntimeout = \"5s\"\n\
             [targets.probe]\ntool = \"echo\"\ntool_arguments = {{ message = \"canary\" }}\n"
        )
    };
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}{}{}",
        target("fast", &fast_url),
        target("slow", &slow_url),
        target("mixed", &mixed_url)
    );
    let (daemon, _dir, base) = start_daemon("native-sli", &config, &[]).await;
    let host = base.trim_start_matches("http://").to_string();
    let mut rules: Vec<PathBuf> =
        promql::rule_files().into_iter().filter(|f| f.starts_with(promql::repo().join("prometheus"))).collect();
    assert!(rules.contains(&promql::repo().join(NATIVE_RULES)), "{rules:?}");
    rules.push(promql::repo().join("alerts/slo.yml"));
    let jobs = [("mcp-canary", vec![host])];
    let (classic_work, native_work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_c, classic) = start_prometheus_flags(classic_work.path(), &jobs, &rules, None, &[]).await;
    let (_n, native) =
        start_prometheus_flags(native_work.path(), &jobs, &rules, None, &["--enable-feature=native-histograms"]).await;

    let within = |secs: u64| tokio::time::Instant::now() + Duration::from_secs(secs);
    let wait = |what: String, deadline: tokio::time::Instant| {
        assert!(tokio::time::Instant::now() < deadline, "{what}\n{}", daemon.log_text());
        tokio::time::sleep(Duration::from_millis(500))
    };
    // Both have scraped `mixed` twice (a rate), then `mixed` turns slow for a few seconds.
    let deadline = within(40);
    let mixed = "count(rate(mcp_client_operation_duration_seconds_count{target=\"mixed\"}[1m]) > 0) \
                 or count(histogram_count(rate(mcp_client_operation_duration_seconds{target=\"mixed\"}[1m])) > 0)";
    loop {
        let (c, n) = (query(&classic, mixed).await, query(&native, mixed).await);
        if c == Ok(1) && n == Ok(1) {
            break;
        }
        wait(format!("mixed not scraped by both: classic {c:?}, native {n:?}"), deadline).await;
    }
    admin(&mixed_url, "/admin/knobs", serde_json::json!({"latency_ms": SLOW_MS})).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    admin(&mixed_url, "/admin/knobs", serde_json::json!({"latency_ms": 0})).await;

    // The scrape really is native on one and classic on the other.
    assert_eq!(query(&native, "mcp_client_operation_duration_seconds_bucket").await, Ok(0), "native stored buckets");
    assert_eq!(query(&native, "mcp_client_operation_duration_seconds_count").await, Ok(0), "native stored _count");
    assert_eq!(
        query(&classic, "mcp_client_operation_duration_seconds").await,
        Ok(0),
        "classic stored a native histogram"
    );

    // Settled: every latency SLI of both, `mixed` between its slow and fast phases on both.
    let good = "mcp_canary:operation_latency_good:ratio_rate5m";
    let deadline = within(60);
    loop {
        let (c, n) = (by_series(&classic, good).await, by_series(&native, good).await);
        let mixed_ok = |m: &BTreeMap<(String, String), f64>| {
            let v: Vec<f64> = m.iter().filter(|((t, _), _)| t == "mixed").map(|(_, v)| *v).collect();
            v.iter().any(|v| *v > 0.0 && *v < 1.0)
        };
        let targets = |m: &BTreeMap<(String, String), f64>| m.keys().map(|(t, _)| t.clone()).collect::<BTreeSet<_>>();
        if targets(&c).len() == 3 && targets(&n).len() == 3 && mixed_ok(&c) && mixed_ok(&n) {
            break;
        }
        wait(format!("latency SLIs not settled:\nclassic {c:?}\nnative {n:?}"), deadline).await;
    }
    // A few more evaluations with every phase behind, then compare.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Every SLI series recorded from the latency histogram, the success ratios (counters, the same
    // rules on both) and the latency bad events of the alerts' guard: same series on both,
    // values in [0, 1] (counts >= 0). Tolerance: the two scrape and evaluate at different
    // instants (up to 1 s apart, about one probe), and each misses the observations before its
    // first sample of a series: ratios that are 0 or 1 by construction (`fast`, `slow`) must be
    // equal (up to float rounding: the native fraction sums scaled buckets); `mixed` within 0.1;
    // bad-event counts (extrapolated increases) within 25 %.
    let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] {
        for (name, is_ratio) in [
            (format!("mcp_canary:operation_latency_good:ratio_rate{w}"), true),
            (format!("mcp_canary:operation_success:ratio_rate{w}"), true),
            (format!("mcp_canary:operation_latency_bad:increase{w}"), false),
        ] {
            if !is_ratio && !["1h", "6h", "1d", "3d"].contains(&w) {
                continue;
            }
            let (c, n) = (by_series(&classic, &name).await, by_series(&native, &name).await);
            assert!(!c.is_empty(), "classic recorded no {name}");
            assert_eq!(
                c.keys().collect::<Vec<_>>(),
                n.keys().collect::<Vec<_>>(),
                "{name}: classic {c:?} native {n:?}"
            );
            for (key, cv) in &c {
                let nv = n[key];
                let (target, method) = key;
                let here = format!("{name}{{target={target},mcp_method_name={method}}}: classic {cv}, native {nv}");
                assert!(cv.is_finite() && nv.is_finite(), "{here}");
                if is_ratio {
                    assert!((0.0..=1.0).contains(cv) && (0.0..=1.0).contains(&nv), "{here}");
                    match target.as_str() {
                        "mixed" if name.contains("latency") => assert!((cv - nv).abs() <= 0.1, "{here}"),
                        "fast" | "mixed" => assert!(near(*cv, 1.0) && near(nv, 1.0), "{here}"),
                        _ if name.contains("latency") => assert!(near(*cv, 0.0) && near(nv, 0.0), "{here}"),
                        _ => assert!(near(*cv, 1.0) && near(nv, 1.0), "{here}"),
                    }
                } else {
                    assert!(*cv >= 0.0 && nv >= 0.0, "{here}");
                    // `fast` has none; `mixed` none in a method no probe ran while it was slow.
                    assert!(target != "fast" || near(*cv, 0.0), "{here}");
                    assert!(target != "slow" || *cv > 0.0, "{here}");
                    if near(*cv, 0.0) {
                        assert!(near(nv, 0.0), "{here}");
                    } else {
                        assert!((cv - nv).abs() <= 0.25 * cv, "{here}");
                    }
                }
            }
        }
    }
    // On the native Prometheus, every rule evaluates without error (the classic latency rules
    // select nothing there, the native ones nothing on the classic one) and the alerts too.
    assert_eq!(unhealthy_rules(&native).await, Vec::<String>::new(), "native");
    assert_eq!(unhealthy_rules(&classic).await, Vec::<String>::new(), "classic");
}
