//! Config: the example documents every key and validates; bad files fail naming the key;
//! `check-config` masks secrets; the environment overrides the file.
//!
//! Its own test crate, not one of the area crates (tests/<area>/main.rs): one test sets
//! environment variables (`std::env::set_var`), which is only sound while no other thread of the
//! process reads the environment, and the tests of an area crate share one process.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config").join(kind)
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/mcp-canary.example.toml")
}

fn check_config(path: &Path, envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(common::bin());
    cmd.arg("check-config").arg(path);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run check-config");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Key paths of a TOML document, array indices dropped: `targets.probe.tool`.
fn key_paths(value: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                // Free-form maps (headers, tool arguments) are values, not keys of ours.
                let free_form = ["headers", "headers_from_env", "tool_arguments", "prompt_arguments", "arguments"];
                if free_form.iter().any(|f| path.ends_with(f)) {
                    out.insert(path);
                } else {
                    key_paths(v, &path, out);
                }
            }
        }
        toml::Value::Array(a) if a.iter().all(toml::Value::is_table) && !a.is_empty() => {
            for v in a {
                key_paths(v, prefix, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// The example with its secret file pointed at a real temp file, plus the env it names.
fn runnable_example(dir: &Path) -> PathBuf {
    let token_file = dir.join("token");
    std::fs::write(&token_file, "file-token-value\n").unwrap();
    let redis_file = dir.join("redis-password");
    std::fs::write(&redis_file, "file-redis-password-value\n").unwrap();
    let key_file = dir.join("oauth-key.pem");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("/run/secrets/mcp-token", token_file.to_str().unwrap())
        .replace("/run/secrets/redis-password", redis_file.to_str().unwrap())
        .replace("/run/secrets/mcp-canary-oauth-key.pem", key_file.to_str().unwrap());
    let path = dir.join("example.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const EXAMPLE_ENV: &[(&str, &str)] = &[
    ("EXAMPLE_MCP_API_KEY", "env-api-key-value"),
    ("EXAMPLE_MCP_TOKEN", "env-token-value"),
    ("EXAMPLE_REDIS_PASSWORD", "env-redis-password-value"),
    ("EXAMPLE_OAUTH_CLIENT_SECRET", "env-oauth-client-secret-value"),
];

#[test]
fn example_documents_every_key_the_config_has() {
    let text = std::fs::read_to_string(example()).unwrap();
    let documented: toml::Value = toml::from_str(&text).unwrap();
    let mut documented_keys = BTreeSet::new();
    key_paths(&documented, "", &mut documented_keys);

    // Every key the parser knows, as it renders a fully populated config.
    let raw = mcp_canary::config::load_raw(Some(&example())).expect("example parses");
    let rendered: toml::Value = toml::from_str(&toml::to_string(&raw).unwrap()).unwrap();
    let mut known_keys = BTreeSet::new();
    key_paths(&rendered, "", &mut known_keys);

    let undocumented: Vec<_> = known_keys.difference(&documented_keys).collect();
    assert!(undocumented.is_empty(), "keys missing from the example: {undocumented:?}");
    let unknown: Vec<_> = documented_keys.difference(&known_keys).collect();
    assert!(unknown.is_empty(), "example keys the parser drops: {unknown:?}");
    assert!(known_keys.len() > 20, "suspiciously few keys: {known_keys:?}");
}

#[test]
fn example_values_are_parsed_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = runnable_example(dir.path());
    let raw = mcp_canary::config::load_raw(Some(&path)).unwrap();
    assert_eq!(raw.server.listen, "127.0.0.1:9464");
    assert_eq!(raw.server.shutdown_grace, std::time::Duration::from_secs(10));
    let t = &raw.targets[0];
    assert_eq!(t.name, "local");
    assert_eq!(t.interval, std::time::Duration::from_secs(15));
    assert_eq!(t.jitter, 0.1);
    assert_eq!(t.settings.protocol, "auto");
    assert_eq!(t.settings.session, "fresh");
    assert_eq!(t.settings.max_response_bytes, 4_194_304);
    assert_eq!(t.settings.probe.tool.as_deref(), Some("echo"));
    assert_eq!(t.settings.probe.resource.as_deref(), Some("canary://static/hello"));
    let n = t.settings.notification.as_ref().unwrap();
    assert_eq!((n.tool.as_str(), n.method.as_str()), ("notify", "notifications/message"));
    assert_eq!(raw.targets[1].settings.session, "persistent");
    assert_eq!(raw.targets[1].settings.protocol, "2025-11-25");
    assert_eq!(raw.targets[1].interval, std::time::Duration::from_secs(30));
    // The timeout is left to validation (it follows a short interval).
    assert_eq!(raw.targets[2].settings.timeout, None);

    for (k, v) in EXAMPLE_ENV {
        // SAFETY: no other thread of this test binary reads these variables (why this file is a
        // crate of its own).
        unsafe { std::env::set_var(k, v) };
    }
    let config = mcp_canary::config::validate(&raw).expect("example validates");
    assert_eq!(config.targets.len(), 6);
    let by_key = config.targets[4].auth.as_ref().expect("target 4 signs client assertions");
    assert!(!format!("{by_key:?}").contains("PRIVATE KEY"), "Debug shows the key");
    let oauth = config.targets[3].auth.as_ref().expect("target 3 gets OAuth tokens");
    assert!(!format!("{oauth:?}").contains("env-oauth-client-secret-value"), "Debug shows the client secret");
    assert!(config.targets[3].headers.get("authorization").is_none(), "no static Authorization beside OAuth");
    assert_eq!(config.targets[2].timeout, std::time::Duration::from_secs(10), "default timeout");
    let auth = |i: usize| config.targets[i].headers.get("authorization").unwrap().to_str().unwrap().to_string();
    assert_eq!(auth(0), "Bearer env-token-value");
    assert_eq!(auth(1), "Bearer file-token-value");
    assert_eq!(auth(2), "Bearer example-token");
    assert_eq!(config.targets[0].headers.get("x-api-key").unwrap(), "env-api-key-value");
    assert!(config.targets[0].headers.get("authorization").unwrap().is_sensitive());
    let redis = config.targets[0].redis.as_ref().expect("target 0 inspects Redis");
    assert_eq!(redis.password.as_ref().map(|p| p.expose()), Some("env-redis-password-value"));
    assert_eq!(redis.key_patterns, ["mcp:session:*", "mcp:stream:*"]);
    assert_eq!((redis.interval, redis.scan_budget), (std::time::Duration::from_secs(15), 10_000));
    assert!(!format!("{config:?}").contains("env-redis-password-value"), "Debug shows the password");
    let redis = config.targets[1].redis.as_ref().unwrap();
    assert_eq!(redis.password.as_ref().map(|p| p.expose()), Some("file-redis-password-value"));
    assert!(config.targets[2].redis.is_none());
    let instances = config.targets[0].instances.as_ref().expect("target 0 lists instances");
    let names: Vec<&str> = instances.replicas.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["target-1", "target-2"]);
    assert_eq!(instances.replicas[1].url.as_str(), "http://127.0.0.1:8092/mcp");
    assert_eq!(
        (instances.header.as_str(), instances.affinity_requests, instances.delivery_broadcasts),
        ("mcp-canary-instance", 10, 1)
    );
    assert_eq!(instances.replica_label(Some("target-2")), "target-2");
    assert_eq!(instances.replica_label(Some("target-9")), "unknown");
    assert!(config.targets[1].instances.is_none());
    let probe = config.probe.as_ref().expect("the example serves /probe");
    assert_eq!((probe.max_concurrent, probe.scrape_timeout_offset), (16, std::time::Duration::from_millis(500)));
    assert!(probe.check_target("http://10.0.0.7/mcp").is_ok());
    assert!(probe.check_target("http://10.0.1.7/mcp").is_err());
    let module = probe.module("default").expect("the example's default module");
    let target = module.target(url::Url::parse("http://10.0.0.7/mcp").unwrap(), module.timeout(), None);
    assert_eq!(target.headers.get("authorization").unwrap(), "Bearer env-token-value");
    assert_eq!(target.headers.get("x-api-key").unwrap(), "env-api-key-value");
}

#[test]
fn check_config_accepts_the_example_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = runnable_example(dir.path());
    let (code, stdout, stderr) = check_config(&path, EXAMPLE_ENV);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("name = \"local\""), "{stdout}");
    for secret in [
        "example-collector-token",
        "example-token",
        "env-api-key-value",
        "env-token-value",
        "file-token-value",
        "env-redis-password-value",
        "file-redis-password-value",
        "env-oauth-client-secret-value",
        "\"sre\"",
    ] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} leaked:\n{stdout}\n{stderr}");
    }
    assert!(stdout.contains("<redacted>"));
}

#[test]
fn check_config_masks_a_password_in_the_redis_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redis.toml");
    std::fs::write(
        &path,
        "[[targets]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/mcp\"\nredis = \"redis://:url-redis-secret@127.0.0.1:6379/0\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = check_config(&path, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("url-redis-secret") && !stderr.contains("url-redis-secret"), "{stdout}");
    assert!(stdout.contains("redis = \"redis://:%3Credacted%3E@127.0.0.1:6379/0\""), "{stdout}");
}

#[test]
fn good_fixtures_validate() {
    for entry in std::fs::read_dir(fixtures("good")).unwrap() {
        let path = entry.unwrap().path();
        let (code, _, stderr) = check_config(&path, &[]);
        assert_eq!(code, 0, "{}: {stderr}", path.display());
    }
}

#[test]
fn bad_fixtures_fail_naming_the_key() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures("bad")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let (code, stdout, stderr) = check_config(&path, &[]);
        assert_ne!(code, 0, "{} was accepted:\n{stdout}", path.display());
        assert!(stderr.contains(expected.trim()), "{}: expected {:?} in:\n{stderr}", path.display(), expected.trim());
        // A fixture's secrets are named hunter2: no error path may print one.
        assert!(!format!("{stdout}{stderr}").contains("hunter2"), "{}: a secret printed:\n{stderr}", path.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} bad fixtures");
}

#[test]
fn environment_overrides_the_file() {
    let path = fixtures("good").join("minimal.toml");
    let (code, stdout, stderr) = check_config(&path, &[("MCP_CANARY_SERVER__LISTEN", "127.0.0.1:19999")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("listen = \"127.0.0.1:19999\""), "{stdout}");
    let (code, _, stderr) = check_config(&path, &[("MCP_CANARY_SERVER__LISTEN", "nowhere")]);
    assert_ne!(code, 0);
    assert!(stderr.contains("server.listen"), "{stderr}");
}

#[test]
fn serve_refuses_to_start_on_a_bad_config() {
    let path = fixtures("bad").join("bad_protocol.toml");
    let out = Command::new(common::bin()).args(["serve", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("targets[0].protocol"), "{stderr}");
}
