use std::collections::BTreeMap;

use super::*;
use crate::profile::longevity::{LongevityParams, LongevityResults, MemorySummary};
use crate::profile::matrix::{CapabilityProfile, CellReport, Check, ResponseMode, VersionProbe};
use crate::profile::report::{LoadResults, REPORT_FORMAT, RunParams, ThresholdOrigin};
use crate::profile::stats::{Latency, Slots};
use crate::profile::timeline::TimelinePoint;

const HOSTILE: &str = "<script>alert(1)</script>";

fn summary(count: u64, errors: u64) -> OpSummary {
    OpSummary {
        count,
        errors,
        errors_by_type: [(HOSTILE.to_string(), errors)].into(),
        error_rate: errors as f64 / count.max(1) as f64,
        latency: Latency { p50_ms: 3.0, p95_ms: 9.0, p99_ms: 15.0, max_ms: 40.0, ..Latency::default() },
        ..OpSummary::default()
    }
}

/// A run of `hours` with `points` timeline points, memory growing slowly after warm-up.
fn run(profile: &str, target: &str, hours: f64, points: usize) -> RunReport {
    let interval_s = hours * 3600.0 / points as f64;
    let points = (0..points)
        .filter(|i| i % 97 != 5)
        .map(|i| {
            let t = i as f64 * interval_s;
            TimelinePoint {
                t_s: t,
                requests: 1000 + (i as u64 * 37) % 200,
                errors: (i as u64 * 13) % 7,
                errors_by_type: [(HOSTILE.to_string(), (i as u64 * 13) % 7), ("timeout".to_string(), 1)].into(),
                p50_ms: Some(3.0 + (i % 10) as f64 * 0.1),
                p95_ms: Some(9.0 + (i % 17) as f64),
                p99_ms: Some(20.0 + (i % 23) as f64),
                in_flight_max: 4,
                sessions_max: 50,
                deliveries: 0,
                delivery_p95_ms: None,
                target_memory_bytes: Some(200_000_000 + (t * 50.0) as u64 + (i as u64 % 5) * 1_000_000),
                daemon_memory_bytes: Some(40_000_000 + (i as u64 % 3) * 100_000),
            }
        })
        .collect();
    RunReport {
        format: REPORT_FORMAT,
        profile: profile.into(),
        target: target.into(),
        started_at: 1_780_000_000.0,
        ended_at: 1_780_000_000.0 + hours * 3600.0,
        elapsed_s: hours * 3600.0,
        aborted: true,
        abort_reason: Some(HOSTILE.into()),
        load: Some(LoadResults {
            params: RunParams {
                preset: None,
                clients: 50,
                rpm: 60_000.0,
                duration_s: hours * 3600.0,
                ramp_up_s: 0.0,
                ramp_down_s: 0.0,
                max_requests: None,
                max_in_flight: 100,
                mix: vec![],
            },
            slots: Slots::default(),
            total: summary(1_000_000, 20),
            operations: [(HOSTILE.to_string(), summary(10, 1))].into(),
            connect: summary(50, 0),
            replicas: BTreeMap::new(),
            memory: None,
        }),
        notify: None,
        longevity: (profile == "longevity").then(|| LongevityResults {
            params: LongevityParams {
                session_lifetime_s: 600.0,
                churn: 0.1,
                snapshot_interval_s: 10.0,
                slope_window_s: 3600.0,
                warmup_s: 1800.0,
                memory_source: Some(HOSTILE.into()),
            },
            sessions_ended_clean: 10,
            sessions_ended_unclean: 0,
            sessions_ended_sessionless: 0,
            target_memory: Some(MemorySummary {
                samples: 8640,
                slope_bytes_per_hour: Some(180_000.0),
                ..MemorySummary::default()
            }),
            daemon_memory: MemorySummary::default(),
            sample_errors: BTreeMap::new(),
        }),
        timeline: Some(Timeline { interval_s, points }),
        thresholds: vec![ThresholdResult::judge(format!("p95<{HOSTILE}"), 0.009, 100, |_| false)],
        thresholds_origin: ThresholdOrigin::Given,
        verdict: "fail".into(),
        verdict_reason: Some(HOSTILE.into()),
        client_cpu_seconds: None,
    }
}

fn html(report: &Report, baseline: Option<&RunReport>) -> String {
    render(&Rendering { report, baseline, report_path: None, html_path: None })
}

/// Nothing in the page would be fetched when it is opened.
fn assert_self_contained(page: &str) {
    let lower = page.to_ascii_lowercase();
    for bad in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "url(",
        "@import",
        "<link",
        "<script",
        "<iframe",
        "<img",
    ] {
        assert!(!lower.contains(bad), "page contains {bad}");
    }
    // The only URL in an attribute is the SVG namespace (a name, never fetched).
    let urls = lower.matches("=\"http").count();
    assert_eq!(urls, lower.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(), "a URL in an attribute");
}

#[test]
fn report_strings_are_escaped_everywhere() {
    let r = Report::Run(Box::new(run("load", HOSTILE, 0.1, 60)));
    let page = html(&r, None);
    assert!(!page.contains(HOSTILE), "unescaped report text in the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_self_contained(&page);

    let m = MatrixReport {
        format: 1,
        profile: "matrix".into(),
        target: HOSTILE.into(),
        started_at: 0.0,
        ended_at: 1.0,
        server_name: HOSTILE.into(),
        server_version: HOSTILE.into(),
        versions: vec![VersionProbe { version: HOSTILE.into(), supported: true, detail: HOSTILE.into() }],
        cells: vec![CellReport {
            capabilities: CapabilityProfile::All,
            response_mode: ResponseMode::Sse,
            protocol_version: HOSTILE.into(),
            result: CellResult::Broken,
            checks: vec![Check { feature: HOSTILE.into(), result: CellResult::Broken, detail: HOSTILE.into() }],
            server_requests: vec![],
            server_capabilities: serde_json::Value::Null,
            elapsed_ms: 1.0,
        }],
        summary: [("broken".to_string(), 1)].into(),
        verdict: "fail".into(),
    };
    let page = html(&Report::Matrix(Box::new(m)), None);
    assert!(!page.contains(HOSTILE), "unescaped report text in the matrix page");
    assert!(page.contains("<rect"), "no grid drawn");
    assert_self_contained(&page);
}

#[test]
fn a_run_page_has_its_charts_and_tables() {
    let current = run("load", "http://127.0.0.1:1/mcp", 0.05, 120);
    let mut baseline = run("load", "http://127.0.0.1:1/mcp", 0.05, 120);
    if let Some(l) = baseline.load.as_mut() {
        l.total.latency.p95_ms = 1.0;
    }
    let page = html(&Report::Run(Box::new(current)), Some(&baseline));
    for id in [
        "chart-throughput",
        "chart-latency",
        "chart-errors",
        "chart-population",
        "id=\"operations\"",
        "id=\"thresholds\"",
        "id=\"regressions\"",
    ] {
        assert!(page.contains(id), "no {id}");
    }
    assert!(page.contains("stroke-dasharray"), "the baseline is not dashed");
    assert_self_contained(&page);
}

#[test]
fn a_24_hour_soak_renders_small() {
    let r = Report::Run(Box::new(run("longevity", "http://127.0.0.1:1/mcp", 24.0, 512)));
    let page = html(&r, None);
    assert!(
        page.contains("chart-memory-target")
            && page.contains("chart-memory-mcp-canary")
            && page.contains("fitted slope")
    );
    assert!(page.contains("time since start (h)"));
    assert_self_contained(&page);
    eprintln!("24-hour longevity report: {} bytes", page.len());
    if let Some(path) = std::env::var_os("MCP_CANARY_HTML_SAMPLE") {
        std::fs::write(path, &page).unwrap();
    }
    assert!(page.len() < 1_000_000, "24-hour report is {} bytes", page.len());
}

#[test]
fn escape_covers_markup_and_controls() {
    assert_eq!(escape("a<b>&\"'\u{1b}"), "a&lt;b&gt;&amp;&quot;&#39;?");
}

#[test]
fn a_chaos_page_shades_its_windows_and_escapes_scenarios() {
    use crate::chaos::report::{ChaosParams, ProberHealth, ScenarioReport};
    let scenario = ScenarioReport {
        name: HOSTILE.into(),
        kind: HOSTILE.into(),
        spec: HOSTILE.into(),
        fault_window_s: 10.0,
        recovery_window_s: 10.0,
        fault_started_s: Some(20.0),
        recovery_started_s: Some(30.0),
        injected: false,
        injection_errors: vec![HOSTILE.into()],
        detect_s: Some(1.5),
        detected_by: Some(HOSTILE.into()),
        recover_s: Some(2.0),
        recovered: true,
        fault: PhaseSummary::default(),
        recovery: PhaseSummary::default(),
    };
    let c = ChaosReport {
        format: 2,
        profile: "chaos".into(),
        target: HOSTILE.into(),
        started_at: 0.0,
        ended_at: 60.0,
        elapsed_s: 60.0,
        aborted: false,
        abort_reason: None,
        params: ChaosParams {
            sessions: 2,
            rpm: 60.0,
            warmup_s: 5.0,
            slow_after_ms: 1000.0,
            sustain: 5,
            notify_every_s: None,
            through_proxy: true,
        },
        baseline: PhaseSummary::default(),
        scenarios: vec![scenario],
        timeline: run("load", "t", 60.0 / 3600.0, 60).timeline,
        prober: ProberHealth::default(),
        thresholds: vec![],
        thresholds_origin: ThresholdOrigin::Default,
        verdict: "fail".into(),
        verdict_reason: Some(HOSTILE.into()),
        client_cpu_seconds: None,
    };
    let page = html(&Report::Chaos(Box::new(c)), None);
    assert!(!page.contains(HOSTILE), "unescaped report text in the chaos page");
    for key in [">fault window</span>", ">recovery window</span>", ">detected</span>", ">recovered</span>"] {
        assert!(page.contains(key), "no {key}");
    }
    assert_self_contained(&page);
}

#[test]
fn a_baseline_of_an_older_format_without_timeline_still_renders() {
    let mut baseline = run("load", "t", 0.01, 30);
    baseline.timeline = None;
    let page = html(&Report::Run(Box::new(run("load", "t", 0.01, 30))), Some(&baseline));
    assert!(page.contains("chart-throughput") && !page.contains("baseline requests/s"));
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever a server calls itself or its errors, the page gains no element from it: it
        /// has as many `<` as the page of the same text with the markup characters replaced.
        #[test]
        fn report_text_never_becomes_markup(text in "[<>&\"' a-zA-Z/=]{0,40}") {
            let page_of = |text: &str| {
                let mut r = run("load", text, 0.01, 20);
                r.abort_reason = Some(text.to_string());
                if let Some(tl) = r.timeline.as_mut() {
                    tl.points[0].errors_by_type.insert(text.to_string(), 1);
                }
                html(&Report::Run(Box::new(r)), None)
            };
            let plain: String = text.chars().map(|c| if "<>&\"'".contains(c) { 'x' } else { c }).collect();
            let (page, harmless) = (page_of(&text), page_of(&plain));
            prop_assert_eq!(page.matches('<').count(), harmless.matches('<').count(), "elements from {:?}", text);
            prop_assert!(!page.to_ascii_lowercase().contains("<script"));
        }
    }
}
