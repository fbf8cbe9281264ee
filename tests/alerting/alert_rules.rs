//! The shipped recording and alert rules are valid for the real promtool, pass their unit tests
//! (alerts/tests/*.yml), and every alert carries severity, summary, description and a runbook
//! that exists; the example Alertmanager config is valid for the real amtool.

use crate::promql;

use std::process::Command;

fn run(cmd: &str, args: &[&str], hint: &str) -> String {
    let out =
        Command::new(cmd).args(args).current_dir(promql::repo()).output().unwrap_or_else(|e| {
            panic!("{cmd} not found ({e}): install Debian's {hint} package (scripts/test.sh does)")
        });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd} {args:?} failed:\n{text}");
    text
}

fn rel(p: &std::path::Path) -> String {
    p.strip_prefix(promql::repo()).unwrap().to_string_lossy().to_string()
}

#[test]
fn promtool_checks_every_rule_file() {
    let files: Vec<String> = promql::rule_files().iter().map(|p| rel(p)).collect();
    assert!(files.len() >= 4, "{files:?}");
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(String::as_str));
    let text = run("promtool", &args, "prometheus");
    assert!(!text.contains("FAILED"), "{text}");
}

#[test]
fn promtool_unit_tests_pass() {
    let files: Vec<String> = promql::alert_test_files().iter().map(|p| rel(p)).collect();
    assert!(!files.is_empty());
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let text = run("promtool", &args, "prometheus");
    assert!(!text.contains("FAILED"), "{text}");
}

#[test]
fn every_alert_is_labelled_annotated_tested_and_has_a_runbook() {
    let tests: String =
        promql::alert_test_files().iter().map(|f| std::fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n");
    let mut count = 0;
    for f in promql::rule_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        // Split into one chunk per alert.
        for chunk in text.split("- alert: ").skip(1) {
            count += 1;
            let name = chunk.lines().next().unwrap().trim();
            let sev = promql::yaml_values(chunk, "severity");
            assert!(matches!(sev.first().map(String::as_str), Some("page" | "ticket")), "{name}: severity {sev:?}");
            assert_eq!(promql::yaml_values(chunk, "summary").len(), 1, "{name}: summary");
            let desc = promql::yaml_values(chunk, "description");
            let desc = desc.first().unwrap_or_else(|| panic!("{name}: no description"));
            assert!(desc.contains("$value"), "{name}: description must give the value");
            assert!(
                desc.contains("$labels.target")
                    || desc.contains("$labels.instance")
                    || desc.contains("$labels.job")
                    || desc.contains("job mcp-canary"),
                "{name}: description must name the target (or the canary, or its job of replicas)"
            );
            let runbook = promql::yaml_values(chunk, "runbook_url");
            assert_eq!(runbook, [format!("docs/runbooks/{name}.md")], "{name}");
            assert!(promql::repo().join(&runbook[0]).is_file(), "{name}: {} missing", runbook[0]);
            assert!(tests.contains(&format!("alertname: {name}\n")), "{name}: no promtool test in alerts/tests/");
        }
    }
    assert!(count >= 12, "{count} alerts");
}

#[test]
fn amtool_accepts_the_example_alertmanager_config() {
    let text = run("amtool", &["check-config", "deploy/alertmanager.yml"], "prometheus-alertmanager");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn fast_test_copies_of_the_rules_are_valid_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["check".to_string(), "rules".to_string()];
    for f in promql::rule_files() {
        let out = dir.path().join(f.file_name().unwrap());
        std::fs::write(&out, promql::fast_rules(&std::fs::read_to_string(&f).unwrap())).unwrap();
        args.push(out.to_string_lossy().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("promtool", &args, "prometheus");
}
