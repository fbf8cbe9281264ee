//! `[probe]` and `[modules.NAME]`: the blackbox-style `/probe?target=URL&module=NAME` endpoint.
//! A module is a target without name, URL and schedule: it is validated by the target's own
//! validation at load (with a placeholder URL) and applied to each requested URL, which must be
//! http(s), carry no credentials and match `allowed_targets` (the modules' headers and tokens go
//! nowhere else).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use url::Url;

use super::ConfigError;
use super::raw::{RawModule, RawProbeEndpoint};
use super::validate::{MAX_INTERVAL, TargetConfig, target_parts};
use crate::mcp::auth::{OAuthSettings, TokenSource};

/// The module `/probe` uses without `module=`; it exists even when not configured (a target's
/// defaults).
pub const DEFAULT_MODULE: &str = "default";
/// Longest probe: below the HTTP surface's 30 s bound on a request, so the answer is sent
/// before the connection is closed.
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(25);
/// Most probes at once (the HTTP surface holds at most 64 connections anyway).
pub const MAX_PROBE_CONCURRENT: usize = 64;
/// Most modules: each is validated (and may read secrets) at load.
pub const MAX_MODULES: usize = 100;
/// The URL a module is validated with; never connected to.
const PLACEHOLDER_URL: &str = "http://module.invalid/mcp";

/// The validated `[probe]` table with the modules it serves.
#[derive(Debug, Clone)]
pub struct ProbeEndpoint {
    allowed: GlobSet,
    /// The patterns as written (for logs and messages).
    pub allowed_targets: Vec<String>,
    pub max_concurrent: usize,
    pub scrape_timeout_offset: Duration,
    pub modules: BTreeMap<String, ModuleConfig>,
}

/// Why a requested target is not probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRefusal {
    /// Not an http(s) URL without credentials (a bad request).
    Invalid(&'static str),
    /// A URL no `allowed_targets` pattern matches (forbidden).
    NotAllowed,
}

impl ProbeEndpoint {
    /// The URL to probe, when `/probe` may connect to it: http or https, no user or password in
    /// it, and its normalised form (lowercase scheme and host, no default port, no fragment)
    /// matching a pattern of `allowed_targets`.
    pub fn check_target(&self, text: &str) -> Result<Url, TargetRefusal> {
        let mut url = Url::parse(text).map_err(|_| TargetRefusal::Invalid("target is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetRefusal::Invalid("target must be an http or https URL"));
        }
        // `http://allowed@elsewhere/` would otherwise read as an allowed host to a pattern.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetRefusal::Invalid("target must not carry a user or password"));
        }
        url.set_fragment(None);
        if self.allowed.is_match(url.as_str()) { Ok(url) } else { Err(TargetRefusal::NotAllowed) }
    }

    pub fn module(&self, name: &str) -> Option<&ModuleConfig> {
        self.modules.get(name)
    }
}

/// One validated module: a target's settings waiting for a URL.
#[derive(Debug, Clone)]
pub struct ModuleConfig {
    template: TargetConfig,
    oauth: Option<OAuthSettings>,
}

impl ModuleConfig {
    /// The whole probe's deadline (before Prometheus's scrape timeout shortens it).
    pub fn timeout(&self) -> Duration {
        self.template.timeout
    }

    /// The OAuth client of a protected server: the caller keeps a token source per URL.
    pub fn oauth(&self) -> Option<&OAuthSettings> {
        self.oauth.as_ref()
    }

    /// The target one `/probe` cycle runs: this module's settings against `url`, each request
    /// bounded by `timeout`, OAuth tokens from `auth`.
    pub fn target(&self, url: Url, timeout: Duration, auth: Option<Arc<TokenSource>>) -> TargetConfig {
        TargetConfig { url, timeout, auth, ..self.template.clone() }
    }
}

/// `[probe]` and `[modules]`: the modules are validated (errors named by key) even without
/// `[probe]`, and the endpoint is `None` (off) then.
pub(super) fn validate_probe(
    probe: Option<&RawProbeEndpoint>,
    modules: &BTreeMap<String, RawModule>,
    errors: &mut Vec<ConfigError>,
) -> Option<ProbeEndpoint> {
    let before = errors.len();
    if modules.len() > MAX_MODULES {
        errors.push(ConfigError::new("modules", format!("at most {MAX_MODULES} modules")));
    }
    let mut validated = BTreeMap::new();
    let default = (!modules.contains_key(DEFAULT_MODULE)).then(|| (DEFAULT_MODULE.to_string(), RawModule::default()));
    for (name, raw) in modules.iter().chain(default.as_ref().map(|(n, d)| (n, d))) {
        if let Some(module) = validate_module(name, raw, errors) {
            validated.insert(name.clone(), module);
        }
    }
    let probe = probe?;
    let allowed = allowed_targets(&probe.allowed_targets, errors);
    if probe.max_concurrent == 0 || probe.max_concurrent > MAX_PROBE_CONCURRENT {
        errors.push(ConfigError::new("probe.max_concurrent", format!("must be between 1 and {MAX_PROBE_CONCURRENT}")));
    }
    if probe.scrape_timeout_offset >= MAX_PROBE_TIMEOUT {
        errors.push(ConfigError::new(
            "probe.scrape_timeout_offset",
            format!("must be less than {}", humantime::format_duration(MAX_PROBE_TIMEOUT)),
        ));
    }
    (errors.len() == before).then(|| ProbeEndpoint {
        allowed: allowed.expect("no error: patterns"),
        allowed_targets: probe.allowed_targets.clone(),
        max_concurrent: probe.max_concurrent,
        scrape_timeout_offset: probe.scrape_timeout_offset,
        modules: validated,
    })
}

fn validate_module(name: &str, raw: &RawModule, errors: &mut Vec<ConfigError>) -> Option<ModuleConfig> {
    let path = format!("modules.{name}");
    let valid_name =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid_name {
        errors.push(ConfigError::new(&path, "a module name is 1-64 characters of [A-Za-z0-9._-]".into()));
    }
    if raw.settings.timeout.is_some_and(|t| t > MAX_PROBE_TIMEOUT) {
        errors.push(ConfigError::new(
            format!("{path}.timeout"),
            format!(
                "must be at most {} (the HTTP surface's bound on a request)",
                humantime::format_duration(MAX_PROBE_TIMEOUT)
            ),
        ));
        return None;
    }
    // The target's checks, keyed under the module; the interval only bounds the timeout there.
    let mut target = raw.to_target(if valid_name { name } else { "module" }, PLACEHOLDER_URL);
    target.interval = MAX_INTERVAL;
    let (template, oauth) = target_parts(&path, &target, errors)?;
    valid_name.then_some(ModuleConfig { template, oauth })
}

/// Patterns matched against the whole normalised URL; `*` and `?` stay within one path segment
/// (so `http://10.0.0.*/mcp` does not reach `http://10.0.0.1/other/mcp`).
fn allowed_targets(patterns: &[String], errors: &mut Vec<ConfigError>) -> Option<GlobSet> {
    let before = errors.len();
    if patterns.is_empty() {
        errors.push(ConfigError::new(
            "probe.allowed_targets",
            "list at least one URL pattern (e.g. \"http://10.0.0.*/mcp\"): /probe sends the modules' credentials \
             to these targets only"
                .into(),
        ));
    }
    let mut set = GlobSetBuilder::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let key = format!("probe.allowed_targets[{i}]");
        if !(pattern.starts_with("http://") || pattern.starts_with("https://")) {
            errors.push(ConfigError::new(&key, format!("{pattern:?} must start with http:// or https://")));
            continue;
        }
        match GlobBuilder::new(pattern).literal_separator(true).build() {
            Ok(glob) => {
                set.add(glob);
            }
            Err(e) => errors.push(ConfigError::new(&key, format!("not a glob pattern: {}", e.kind()))),
        }
    }
    if errors.len() != before {
        return None;
    }
    set.build().map_err(|e| errors.push(ConfigError::new("probe.allowed_targets", e.to_string()))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(patterns: &[&str]) -> Result<ProbeEndpoint, Vec<ConfigError>> {
        let probe = RawProbeEndpoint {
            allowed_targets: patterns.iter().map(|p| p.to_string()).collect(),
            max_concurrent: 16,
            scrape_timeout_offset: Duration::from_millis(500),
        };
        let mut errors = Vec::new();
        validate_probe(Some(&probe), &BTreeMap::new(), &mut errors).ok_or(errors)
    }

    fn keys(errors: &[ConfigError]) -> Vec<String> {
        errors.iter().map(|e| format!("{}: {}", e.key, e.message)).collect()
    }

    #[test]
    fn targets_match_whole_normalised_urls_within_a_segment() {
        let e = endpoint(&["http://10.0.0.*/mcp", "https://mcp.example.com/**"]).unwrap();
        assert!(e.check_target("http://10.0.0.7/mcp").is_ok());
        assert!(e.check_target("HTTP://10.0.0.7:80/mcp#x").is_ok(), "normalised: scheme, default port, fragment");
        assert!(e.check_target("https://mcp.example.com/a/b/mcp").is_ok());
        for refused in [
            "http://10.0.0.7/other/mcp",
            "http://10.0.0.7/mcp/x",
            "http://10.0.1.7/mcp",
            "https://10.0.0.7/mcp",
            "http://10.0.0.7/mcp?x=1",
            "https://mcp.example.com.evil.test/mcp",
        ] {
            assert_eq!(e.check_target(refused), Err(TargetRefusal::NotAllowed), "{refused}");
        }
    }

    #[test]
    fn only_http_urls_without_credentials_are_targets() {
        let e = endpoint(&["http://*/mcp", "*"]).unwrap_err();
        assert_eq!(keys(&e), ["probe.allowed_targets[1]: \"*\" must start with http:// or https://"]);
        let e = endpoint(&["http://*/mcp"]).unwrap();
        // The user-info trick: a pattern-looking user in front of another host.
        assert!(matches!(e.check_target("http://10.0.0.7@evil.test/mcp"), Err(TargetRefusal::Invalid(_))));
        assert!(matches!(e.check_target("http://u:p@10.0.0.7/mcp"), Err(TargetRefusal::Invalid(_))));
        assert!(matches!(e.check_target("file:///etc/passwd"), Err(TargetRefusal::Invalid(_))));
        assert!(matches!(e.check_target("not a url"), Err(TargetRefusal::Invalid(_))));
    }

    #[test]
    fn patterns_and_limits_are_checked_by_key() {
        assert!(keys(&endpoint(&[]).unwrap_err())[0].starts_with("probe.allowed_targets: list at least one"));
        assert!(
            keys(&endpoint(&["http://[a/mcp"]).unwrap_err())[0].starts_with("probe.allowed_targets[0]: not a glob")
        );
        let mut errors = Vec::new();
        let probe = RawProbeEndpoint {
            allowed_targets: vec!["http://*/mcp".into()],
            max_concurrent: 0,
            scrape_timeout_offset: Duration::from_secs(30),
        };
        assert!(validate_probe(Some(&probe), &BTreeMap::new(), &mut errors).is_none());
        let e = keys(&errors);
        assert!(e[0].starts_with("probe.max_concurrent: must be between 1 and 64"), "{e:?}");
        assert!(e[1].starts_with("probe.scrape_timeout_offset:"), "{e:?}");
    }

    #[test]
    fn modules_are_validated_as_targets_under_their_key() {
        let raw: BTreeMap<String, RawModule> = toml::from_str(
            r#"
            [fast]
            timeout = "2s"
            protocol = "2025-11-25"
            bearer_token = "tok"
            [bad]
            protocol = "1999"
            session = "sometimes"
            [slow]
            timeout = "1m"
            ["bad name"]
            "#,
        )
        .unwrap();
        let mut errors = Vec::new();
        assert!(validate_probe(None, &raw, &mut errors).is_none(), "no [probe]: off");
        let e = keys(&errors);
        assert!(e.iter().any(|e| e.starts_with("modules.bad.protocol: unknown protocol")), "{e:?}");
        assert!(e.iter().any(|e| e.starts_with("modules.bad.session: unknown session")), "{e:?}");
        assert!(e.iter().any(|e| e.starts_with("modules.slow.timeout: must be at most 25s")), "{e:?}");
        assert!(e.iter().any(|e| e.starts_with("modules.bad name: a module name")), "{e:?}");
        assert_eq!(e.len(), 4, "{e:?}");

        let fast: BTreeMap<String, RawModule> = [("fast".to_string(), raw["fast"].clone())].into_iter().collect();
        let probe = RawProbeEndpoint {
            allowed_targets: vec!["http://127.0.0.1:*/mcp".into()],
            max_concurrent: 2,
            scrape_timeout_offset: Duration::from_millis(500),
        };
        let mut errors = Vec::new();
        let e = validate_probe(Some(&probe), &fast, &mut errors).expect("valid");
        let default = e.module(DEFAULT_MODULE).expect("default always exists");
        assert_eq!(default.timeout(), Duration::from_secs(10));
        let module = e.module("fast").unwrap();
        let url = e.check_target("http://127.0.0.1:9/mcp").unwrap();
        let target = module.target(url.clone(), Duration::from_secs(1), None);
        assert_eq!((target.url, target.timeout), (url, Duration::from_secs(1)));
        assert_eq!(target.headers.get("authorization").unwrap(), "Bearer tok");
        assert!(e.module("nope").is_none());
    }

    #[test]
    fn a_module_with_oauth_keeps_its_settings_for_each_url() {
        let raw: BTreeMap<String, RawModule> = toml::from_str(
            r#"
            [protected.oauth]
            client_id = "canary"
            client_secret_env = "PATH"
            "#,
        )
        .unwrap();
        let mut errors = Vec::new();
        let probe = RawProbeEndpoint {
            allowed_targets: vec!["https://*/mcp".into()],
            max_concurrent: 2,
            scrape_timeout_offset: Duration::from_millis(500),
        };
        let e = validate_probe(Some(&probe), &raw, &mut errors).unwrap_or_else(|| panic!("{:?}", keys(&errors)));
        assert_eq!(e.module("protected").unwrap().oauth().unwrap().client_id, "canary");
        assert!(e.module(DEFAULT_MODULE).unwrap().oauth().is_none());
    }
}
