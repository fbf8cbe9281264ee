//! The CI examples (deploy/ci/): the GitHub Actions workflow and the GitLab CI job pass the
//! schemas PyPI check-jsonschema vendors (`vendor.github-workflows`, `vendor.gitlab-ci`: offline),
//! and a broken copy of each does not; every `mcp-canary run` command line in them is accepted by
//! the real binary (its flags and typed values: the binary parses them and stops at `--help`),
//! its thresholds parse and its preset exists; the files it writes are the ones the jobs upload
//! and publish as JUnit. So the examples cannot rot as the CLI changes.

use crate::promql;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mcp_canary::profile::threshold::Threshold;
use serde_json::Value;

const GITHUB: &str = "deploy/ci/github-actions.yml";
const GITLAB: &str = "deploy/ci/gitlab-ci.yml";

fn venv_bin(name: &str) -> PathBuf {
    let path = promql::repo().join(".cache/py/check-jsonschema/bin").join(name);
    assert!(path.is_file(), "{} missing: run scripts/install-test-servers.sh", path.display());
    path
}

/// `check-jsonschema --builtin-schema SCHEMA FILE`: success and its output.
fn check(schema: &str, file: &Path) -> (bool, String) {
    let out = Command::new(venv_bin("check-jsonschema"))
        .args(["--builtin-schema", schema])
        .arg(file)
        .current_dir(promql::repo())
        .stdin(Stdio::null())
        .output()
        .expect("run check-jsonschema");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A YAML file as JSON, read by the ruamel.yaml of the check-jsonschema virtualenv (YAML 1.2:
/// GitHub's `on:` stays a string).
fn yaml(path: &str) -> Value {
    let script = "import json, sys\nfrom ruamel.yaml import YAML\n\
                  json.dump(YAML(typ='safe').load(open(sys.argv[1])), sys.stdout, default=str)";
    let out = Command::new(venv_bin("python"))
        .args(["-c", script, path])
        .current_dir(promql::repo())
        .output()
        .expect("run python");
    assert!(out.status.success(), "{path}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Every `mcp-canary run ...` command of a CI file, continuation lines joined, split as a shell
/// would (`$VAR`s stay as written).
fn run_commands(doc: &Value) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    strings(doc, &mut all);
    let mut commands = Vec::new();
    for s in all {
        let joined = s.replace("\\\n", " ");
        for line in joined.lines().map(str::trim).filter(|l| l.starts_with("mcp-canary run ")) {
            commands.push(shlex::split(line).unwrap_or_else(|| panic!("not a shell line: {line}")));
        }
    }
    commands
}

/// The value after `flag` in a command.
fn flag<'a>(cmd: &'a [String], name: &str) -> Vec<&'a str> {
    cmd.windows(2).filter(|w| w[0] == name).map(|w| w[1].as_str()).collect()
}

/// The command is accepted by the binary: with `$VAR`s replaced by sample values and `--help`
/// appended, clap parses every flag and typed value before printing help (exit 0); an unknown
/// flag or a bad value exits 2.
fn assert_accepted(file: &str, cmd: &[String]) {
    let args: Vec<String> = cmd[1..]
        .iter()
        .map(|a| if a.starts_with('$') { "https://staging.example.com/mcp".to_string() } else { a.clone() })
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-canary")).args(&args).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "{file}: `{}` refused by the binary:\n{}",
        cmd.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    for t in flag(cmd, "--threshold") {
        Threshold::parse(t).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    for p in flag(cmd, "--preset") {
        assert!(["light", "moderate", "heavy"].contains(&p), "{file}: no preset {p}");
    }
    for needed in ["--target", "--report", "--html", "--junit", "--summary-md"] {
        assert_eq!(flag(cmd, needed).len(), 1, "{file}: `{}` lacks {needed}", cmd.join(" "));
    }
}

#[test]
fn the_github_actions_workflow_is_valid_and_uploads_what_it_runs() {
    let path = promql::repo().join(GITHUB);
    let (ok, out) = check("vendor.github-workflows", &path);
    assert!(ok, "{GITHUB}: {out}");
    // The schema check is real: a job without runs-on fails it.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, std::fs::read_to_string(&path).unwrap().replace("runs-on:", "runs_on:")).unwrap();
    assert!(!check("vendor.github-workflows", &broken).0, "a broken workflow passed");

    let doc = yaml(GITHUB);
    let commands = run_commands(&doc);
    assert_eq!(commands.len(), 1, "{commands:?}");
    let cmd = &commands[0];
    assert_accepted(GITHUB, cmd);

    let steps = doc["jobs"]["load"]["steps"].as_array().unwrap();
    let step = |uses: &str| {
        steps
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(uses)))
            .unwrap_or_else(|| panic!("{GITHUB}: no {uses} step"))
    };
    let upload = step("actions/upload-artifact@");
    assert_eq!(upload["if"], "always()", "uploads even when the run fails: {upload}");
    let paths = upload["with"]["path"].as_str().unwrap();
    for f in ["--report", "--html", "--junit"] {
        let file = flag(cmd, f)[0];
        assert!(paths.lines().any(|l| l.trim() == file), "{GITHUB}: {file} ({f}) not uploaded: {paths}");
    }
    let junit = step("mikepenz/action-junit-report@");
    assert_eq!(junit["if"], "always()", "{junit}");
    assert_eq!(junit["with"]["report_paths"].as_str(), Some(flag(cmd, "--junit")[0]), "{junit}");
    // The job fails through the run's exit status: the run step may not swallow it.
    let run_step = steps.iter().find(|s| s["run"].as_str().is_some_and(|r| r.contains("mcp-canary run "))).unwrap();
    assert!(run_step.get("continue-on-error").is_none() && !run_step["run"].as_str().unwrap().contains("|| true"));
}

#[test]
fn the_gitlab_ci_job_is_valid_and_keeps_its_reports() {
    let path = promql::repo().join(GITLAB);
    let (ok, out) = check("vendor.gitlab-ci", &path);
    assert!(ok, "{GITLAB}: {out}");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, std::fs::read_to_string(&path).unwrap().replace("when: always", "when: sometimes"))
        .unwrap();
    assert!(!check("vendor.gitlab-ci", &broken).0, "a broken job passed");

    let doc = yaml(GITLAB);
    let commands = run_commands(&doc);
    assert_eq!(commands.len(), 1, "{commands:?}");
    let cmd = &commands[0];
    assert_accepted(GITLAB, cmd);

    let artifacts = &doc["mcp-canary-load"]["artifacts"];
    assert_eq!(artifacts["when"], "always", "{artifacts}");
    assert_eq!(artifacts["reports"]["junit"].as_str(), Some(flag(cmd, "--junit")[0]), "{artifacts}");
    let kept: Vec<&str> = artifacts["paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    for f in ["--report", "--html", "--junit", "--summary-md"] {
        let file = flag(cmd, f)[0];
        assert!(kept.iter().any(|k| file.starts_with(k.trim_end_matches('/'))), "{GITLAB}: {file} not kept: {kept:?}");
    }
    let script = doc["mcp-canary-load"]["script"].as_array().unwrap();
    assert!(!script.iter().any(|l| l.as_str().unwrap().contains("|| true")), "the job must fail on a breach");
}
