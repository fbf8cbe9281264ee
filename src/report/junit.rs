//! JUnit XML: one test case per threshold (per matrix cell, per chaos scenario), and one
//! `verdict` case that fails exactly when the run failed, so a CI system never shows green for a
//! red run (an aborted run, or one where nothing succeeded, fails no threshold). The XML is
//! written by `quick-junit` (nextest's), which escapes text and attributes and drops characters
//! XML cannot hold; server-derived text is also cut and cleaned by `printable` first.
//!
//! The mapping (docs/report-ci.md):
//! - a threshold: passed when it held; `<failure type="threshold">` with observed vs limit when
//!   it broke; `<failure type="no_data">` when nothing was measured (never a pass);
//! - a matrix cell: broken fails, not exercised is skipped, degraded passes with a note in its
//!   `system-out` (the matrix verdict fails only on a broken cell);
//! - a chaos scenario: fails when the fault was not injected or the target did not recover.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use crate::chaos::report::{ChaosReport, ScenarioReport};
use crate::driver::Report;
use crate::mcp::protocol::printable;
use crate::profile::matrix::{CellReport, CellResult, MatrixReport};
use crate::profile::report::{RunReport, ThresholdResult, ThresholdStatus};
use crate::profile::threshold::{Cmp, Threshold, format_seconds};

/// Longest server-derived text kept in a message (characters).
const MAX_TEXT: usize = 500;

/// The report as JUnit XML.
pub fn render(report: &Report) -> String {
    let suite = match report {
        Report::Run(r) => run_suite(r),
        Report::Matrix(r) => matrix_suite(r),
        Report::Chaos(r) => chaos_suite(r),
    };
    let mut junit = quick_junit::Report::new("mcp-canary");
    if let Some(time) = suite.time {
        junit.set_time(time);
    }
    junit.add_test_suite(suite);
    junit.to_string().unwrap_or_else(|e| {
        // Writing to a String does no I/O; should it fail anyway, the file still parses and is red.
        tracing::error!(error = %e, "JUnit XML could not be serialized");
        EMPTY.to_string()
    })
}

/// The fallback: one failing case (red rather than a green report of nothing).
const EMPTY: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<testsuites name=\"mcp-canary\" tests=\"1\" failures=\"1\" errors=\"0\">",
    "<testsuite name=\"mcp-canary\" tests=\"1\" failures=\"1\" errors=\"0\" skipped=\"0\">",
    "<testcase name=\"verdict\" classname=\"mcp-canary\">",
    "<failure type=\"verdict\" message=\"the JUnit report could not be serialized\"/>",
    "</testcase></testsuite></testsuites>\n"
);

/// A suite named after the profile and target, timed and stamped from the report.
fn suite(profile: &str, target: &str, started_at: f64, elapsed_s: f64) -> TestSuite {
    let mut suite = TestSuite::new(format!("mcp-canary {} {}", clean(profile), clean(target)));
    if elapsed_s.is_finite() && elapsed_s >= 0.0 {
        suite.set_time(Duration::from_secs_f64(elapsed_s));
    }
    if let Some(at) = chrono::DateTime::from_timestamp_millis((started_at * 1000.0) as i64) {
        suite.set_timestamp(at.fixed_offset());
    }
    suite.add_property(Property::new("profile", clean(profile)));
    suite.add_property(Property::new("target", clean(target)));
    suite
}

fn case(class: &str, name: &str, status: TestCaseStatus) -> TestCase {
    let mut case = TestCase::new(name, status);
    case.set_classname(class);
    case
}

fn failure(ty: &str, message: String) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_type(ty).set_message(message);
    status
}

/// Text from the report (a server's, a target's name): control characters as `?`, cut.
fn clean(s: &str) -> String {
    printable(s, MAX_TEXT)
}

fn run_suite(r: &RunReport) -> TestSuite {
    let mut s = suite(&r.profile, &r.target, r.started_at, r.elapsed_s);
    let class = format!("mcp-canary.{}", clean(&r.profile));
    s.add_test_cases(thresholds(&format!("{class}.thresholds"), &r.thresholds));
    let reason = r.abort_reason.as_deref().filter(|_| r.aborted).or(r.verdict_reason.as_deref());
    s.add_test_case(verdict(&class, r.passed(), reason, &r.thresholds));
    s
}

fn matrix_suite(r: &MatrixReport) -> TestSuite {
    let elapsed = (r.ended_at - r.started_at).max(0.0);
    let mut s = suite(&r.profile, &r.target, r.started_at, elapsed);
    s.add_property(Property::new("server", format!("{} {}", clean(&r.server_name), clean(&r.server_version))));
    let class = format!("mcp-canary.{}", clean(&r.profile));
    s.add_test_cases(r.cells.iter().map(|c| cell(&format!("{class}.cells"), c)));
    let broken = r.cells.iter().filter(|c| c.result == CellResult::Broken).count();
    let reason = (broken > 0).then(|| format!("{broken} cell(s) broken"));
    s.add_test_case(verdict(&class, r.passed(), reason.as_deref(), &[]));
    s
}

fn chaos_suite(r: &ChaosReport) -> TestSuite {
    let mut s = suite(&r.profile, &r.target, r.started_at, r.elapsed_s);
    let class = format!("mcp-canary.{}", clean(&r.profile));
    s.add_test_cases(r.scenarios.iter().map(|sc| scenario(&format!("{class}.scenarios"), sc)));
    s.add_test_cases(thresholds(&format!("{class}.thresholds"), &r.thresholds));
    let not_injected: Vec<&str> = r.scenarios.iter().filter(|s| !s.injected).map(|s| s.name.as_str()).collect();
    let reason = if r.aborted {
        r.abort_reason.clone()
    } else if let Some(reason) = &r.verdict_reason {
        Some(reason.clone())
    } else if !not_injected.is_empty() {
        Some(format!("not injected: {}", not_injected.join(", ")))
    } else {
        None
    };
    s.add_test_case(verdict(&class, r.passed(), reason.as_deref(), &r.thresholds));
    s
}

/// The run's verdict as a case: fails exactly when the run failed (its exit status 99).
fn verdict(class: &str, passed: bool, reason: Option<&str>, thresholds: &[ThresholdResult]) -> TestCase {
    if passed {
        return case(class, "verdict", TestCaseStatus::success());
    }
    let failed: Vec<&str> = thresholds.iter().filter(|t| !t.passed).map(|t| t.threshold.as_str()).collect();
    let message = match (reason, failed.is_empty()) {
        (Some(reason), true) => format!("run failed: {}", clean(reason)),
        (Some(reason), false) => {
            format!("run failed: {}; thresholds not met: {}", clean(reason), clean(&failed.join(", ")))
        }
        (None, false) => format!("run failed: thresholds not met: {}", clean(&failed.join(", "))),
        (None, true) => "run failed".to_string(),
    };
    case(class, "verdict", failure("verdict", message))
}

fn thresholds<'a>(class: &'a str, results: &'a [ThresholdResult]) -> impl Iterator<Item = TestCase> + 'a {
    results.iter().map(move |t| {
        let text = describe(t);
        let status = match t.status {
            ThresholdStatus::Pass if t.passed => TestCaseStatus::success(),
            ThresholdStatus::NoData => failure("no_data", format!("no data: {text}")),
            _ => failure("threshold", text.clone()),
        };
        let mut c = case(class, &clean(&t.threshold), status);
        if t.passed {
            c.set_system_out(text);
        }
        c
    })
}

/// `p95 = 72.4ms, limit < 50ms over 1,200 samples`: observed vs limit in the threshold's unit.
pub fn describe(t: &ThresholdResult) -> String {
    let samples = format!("{} sample{}", thousands(t.samples), if t.samples == 1 { "" } else { "s" });
    match Threshold::parse(&t.threshold) {
        Ok(th) => {
            let name = match &th.scope {
                Some(scope) => format!("{}:{}", clean(scope), th.stat_name()),
                None => th.stat_name(),
            };
            let observed = if t.samples == 0 { "n/a".to_string() } else { th.format_value(t.observed) };
            format!("{name} = {observed}, limit {} {} over {samples}", cmp(th.cmp), th.format_value(th.limit))
        }
        // A report edited by hand, or written by a later version: the raw figures.
        Err(_) => format!("{} observed {} over {samples}", clean(&t.threshold), t.observed),
    }
}

fn cmp(c: Cmp) -> &'static str {
    match c {
        Cmp::Lt => "<",
        Cmp::Le => "<=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
        Cmp::Eq => "==",
    }
}

/// `1200` as `1,200`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A cell's name: `capabilities/response_mode/protocol_version`.
pub fn cell_name(c: &CellReport) -> String {
    format!("{}/{}/{}", c.capabilities.as_str(), c.response_mode.as_str(), clean(&c.protocol_version))
}

/// The checks of a cell that came out `result`, as `feature: detail; ...`.
fn checks(c: &CellReport, result: CellResult) -> String {
    let parts: Vec<String> = c
        .checks
        .iter()
        .filter(|k| k.result == result)
        .map(|k| format!("{}: {}", clean(&k.feature), clean(&k.detail)))
        .collect();
    clean(&parts.join("; "))
}

fn cell(class: &str, c: &CellReport) -> TestCase {
    let status = match c.result {
        CellResult::Works | CellResult::Degraded => TestCaseStatus::success(),
        CellResult::NotExercised => {
            let mut s = TestCaseStatus::skipped();
            s.set_type("not_exercised").set_message(format!("not exercised: {}", checks(c, CellResult::NotExercised)));
            s
        }
        CellResult::Broken => failure("broken", format!("broken: {}", checks(c, CellResult::Broken))),
    };
    let mut case = case(class, &cell_name(c), status);
    if c.elapsed_ms.is_finite() && c.elapsed_ms >= 0.0 {
        case.set_time(Duration::from_secs_f64(c.elapsed_ms / 1000.0));
    }
    if c.result == CellResult::Degraded {
        case.set_system_out(format!("degraded: {}", checks(c, CellResult::Degraded)));
    }
    case
}

fn scenario(class: &str, s: &ScenarioReport) -> TestCase {
    let detect = s.detect_s.map_or("not detected".to_string(), |d| {
        format!("detected after {} by {}", format_seconds(d), clean(s.detected_by.as_deref().unwrap_or("?")))
    });
    let recover = match s.recover_s {
        Some(r) if s.recovered => format!("recovered after {}", format_seconds(r)),
        _ => format!("not recovered within the {} recovery window", format_seconds(s.recovery_window_s)),
    };
    let text = format!("{} ({}): {detect}, {recover}", clean(&s.kind), clean(&s.spec));
    let status = if !s.injected {
        let errors = clean(&s.injection_errors.join("; "));
        failure("not_injected", format!("fault not injected: {errors}"))
    } else if !s.recovered {
        failure("not_recovered", text.clone())
    } else {
        TestCaseStatus::success()
    };
    let mut case = case(class, &clean(&s.name), status);
    case.set_time(Duration::from_secs_f64((s.fault_window_s + s.recovery_window_s).max(0.0)));
    case.set_system_out(text);
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(expr: &str, status: ThresholdStatus, observed: f64, samples: u64) -> ThresholdResult {
        ThresholdResult { threshold: expr.into(), passed: status == ThresholdStatus::Pass, status, observed, samples }
    }

    #[test]
    fn threshold_text_is_observed_vs_limit_in_human_units() {
        let t = result("p95<50ms", ThresholdStatus::Fail, 0.0724, 1200);
        assert_eq!(describe(&t), "p95 = 72.4ms, limit < 50ms over 1,200 samples");
        let t = result("error_rate<0.1%", ThresholdStatus::Fail, 0.0125, 80);
        assert_eq!(describe(&t), "error_rate = 1.25%, limit < 0.1% over 80 samples");
        let t = result("kill:recovery_time<30s", ThresholdStatus::Pass, 2.5, 1);
        assert_eq!(describe(&t), "kill:recovery_time = 2.5s, limit < 30s over 1 sample");
        let t = result("delivery>=99%", ThresholdStatus::NoData, 0.0, 0);
        assert_eq!(describe(&t), "delivery = n/a, limit >= 99% over 0 samples");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn hostile_text_is_escaped_in_the_xml() {
        let hostile = "evil</testcase><testcase name=\"x\">&\u{1b}[31m\u{0}\n]]>";
        let t = result(&format!("{hostile}:p95<50ms"), ThresholdStatus::Fail, 0.1, 10);
        let s = ScenarioReport {
            name: hostile.into(),
            kind: "kill".into(),
            spec: hostile.into(),
            fault_window_s: 1.0,
            recovery_window_s: 1.0,
            fault_started_s: None,
            recovery_started_s: None,
            injected: false,
            injection_errors: vec![hostile.into()],
            detect_s: None,
            detected_by: None,
            recover_s: None,
            recovered: false,
            fault: Default::default(),
            recovery: Default::default(),
        };
        let mut suite = suite("load", hostile, 0.0, 1.0);
        suite.add_test_cases(thresholds("c", std::slice::from_ref(&t)));
        suite.add_test_case(scenario("c", &s));
        suite.add_test_case(verdict("c", false, Some(hostile), &[t]));
        let mut report = quick_junit::Report::new("mcp-canary");
        report.add_test_suite(suite);
        let xml = report.to_string().unwrap();
        assert!(!xml.contains("</testcase><testcase name=\"x\">"), "{xml}");
        assert!(!xml.contains('\u{0}') && !xml.contains('\u{1b}'), "{xml}");
        assert!(xml.contains("&lt;/testcase&gt;"), "{xml}");
        // Read back: the same cases, the hostile text intact as text.
        let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        let cases = &back.test_suites[0].test_cases;
        assert_eq!(cases.len(), 3);
        assert!(cases.iter().all(|c| matches!(c.status, TestCaseStatus::NonSuccess { .. })));
        assert!(cases[1].name.as_str().starts_with("evil</testcase>"), "{:?}", cases[1].name);
    }

    #[test]
    fn cells_and_scenarios_map_to_outcomes() {
        use crate::profile::matrix::{CapabilityProfile, Check, ResponseMode};
        let cell = |result: CellResult| CellReport {
            capabilities: CapabilityProfile::Roots,
            response_mode: ResponseMode::Sse,
            protocol_version: "2025-11-25".into(),
            result,
            checks: vec![Check { feature: "roots".into(), result, detail: "why".into() }],
            server_requests: vec![],
            server_capabilities: serde_json::json!({}),
            elapsed_ms: 12.0,
        };
        let kind = |c: &TestCase| match &c.status {
            TestCaseStatus::Success { .. } => "passed".to_string(),
            TestCaseStatus::NonSuccess { ty, message, .. } => {
                format!("{}: {}", ty.as_ref().unwrap().as_str(), message.as_ref().unwrap().as_str())
            }
            TestCaseStatus::Skipped { message, .. } => format!("skipped: {}", message.as_ref().unwrap().as_str()),
        };
        assert_eq!(kind(&super::cell("c", &cell(CellResult::Works))), "passed");
        assert_eq!(kind(&super::cell("c", &cell(CellResult::NotExercised))), "skipped: not exercised: roots: why");
        assert_eq!(kind(&super::cell("c", &cell(CellResult::Broken))), "broken: broken: roots: why");
        let degraded = super::cell("c", &cell(CellResult::Degraded));
        assert_eq!(kind(&degraded), "passed");
        assert_eq!(degraded.system_out.as_ref().unwrap().as_str(), "degraded: roots: why");
        assert_eq!(degraded.name.as_str(), "roots/sse/2025-11-25");

        let mut s = ScenarioReport {
            name: "kill".into(),
            kind: "kill".into(),
            spec: "kill".into(),
            fault_window_s: 2.0,
            recovery_window_s: 5.0,
            fault_started_s: None,
            recovery_started_s: None,
            injected: true,
            injection_errors: vec![],
            detect_s: Some(0.2),
            detected_by: Some("error".into()),
            recover_s: Some(1.5),
            recovered: true,
            fault: Default::default(),
            recovery: Default::default(),
        };
        assert_eq!(kind(&scenario("c", &s)), "passed");
        (s.recovered, s.recover_s) = (false, None);
        assert_eq!(
            kind(&scenario("c", &s)),
            "not_recovered: kill (kill): detected after 200ms by error, not recovered within the 5s recovery window"
        );
    }

    #[test]
    fn the_fallback_parses_as_one_failure() {
        let back = quick_junit::Report::deserialize_from_str(EMPTY).unwrap();
        let case = &back.test_suites[0].test_cases[0];
        assert!(matches!(case.status, TestCaseStatus::NonSuccess { .. }), "{case:?}");
    }

    #[test]
    fn a_failed_run_without_a_failed_threshold_still_fails_a_case() {
        let ok = result("p95<50ms", ThresholdStatus::Pass, 0.01, 100);
        let v = verdict("c", false, Some("nothing succeeded"), std::slice::from_ref(&ok));
        match v.status {
            TestCaseStatus::NonSuccess { message, .. } => {
                assert_eq!(message.unwrap().as_str(), "run failed: nothing succeeded")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(verdict("c", true, None, &[ok]).status, TestCaseStatus::Success { .. }));
    }
}
