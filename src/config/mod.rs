//! Configuration: built-in defaults < TOML file < `MCP_CANARY_*` environment, then validation.

mod modules;
mod otlp;
mod profiles;
pub(crate) mod raw;
mod server;
mod validate;

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

pub use modules::{DEFAULT_MODULE, MAX_PROBE_TIMEOUT, ModuleConfig, ProbeEndpoint, TargetRefusal};
pub use otlp::{HistogramAggregation, OtlpConfig, OtlpProtocol, Temporality, apply_otel_env};
pub use profiles::{HeavyLimits, ProfileConfig, parse_schedule};
pub use raw::{
    OAuthFlags, RawConfig, RawCoordination, RawHeavyProfiles, RawInstance, RawModule, RawNotification, RawOAuth,
    RawOtlp, RawProbe, RawProbeEndpoint, RawProbeSettings, RawProfile, RawServer, RawTarget,
};
pub use server::{
    ClientAuth, HttpAuth, MAX_BCRYPT_COST, RawServerTls, ServerSecurity, TlsSettings, TlsVersion, validate_security,
};
pub use validate::{
    Config, CoordinationSpec, InstancesSpec, MAX_INSTANCES, MAX_REDIS_PATTERNS, NotificationSpec, ProbeSpec, RedisSpec,
    Replica, Secret, ServerConfig, SessionMode, TargetConfig, UNKNOWN_REPLICA, check_replica_name, validate,
};

/// One problem with the config, naming the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `targets[0].interval`.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: String) -> Self {
        Self { key: key.into(), message }
    }
}

/// Every problem found in one config.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "config key `{}`: {}", e.key, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Environment variable prefix; nested keys use `__` (`MCP_CANARY_SERVER__LISTEN`).
pub const ENV_PREFIX: &str = "MCP_CANARY_";

/// Read the file (and environment) into the raw layered config.
pub fn load_raw(path: Option<&Path>) -> Result<RawConfig, ConfigErrors> {
    let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
    if let Some(path) = path {
        if !path.is_file() {
            return Err(ConfigErrors(vec![ConfigError::new(
                "<file>",
                format!("cannot read config file {}", path.display()),
            )]));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
    let mut raw = figment.extract::<RawConfig>().map_err(figment_errors)?;
    apply_otel_env(&mut raw.otlp, |k| std::env::var(k).ok())?;
    Ok(raw)
}

/// `[otlp]` from the standard `OTEL_*` variables alone (the demo has no file); `None` when off.
pub fn otlp_from_env() -> Result<Option<OtlpConfig>, ConfigErrors> {
    let mut raw = RawOtlp::default();
    apply_otel_env(&mut raw, |k| std::env::var(k).ok())?;
    let mut errors = Vec::new();
    let config = otlp::validate_otlp(&raw, &mut errors);
    if errors.is_empty() { Ok(config) } else { Err(ConfigErrors(errors)) }
}

/// Load and validate in one step.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    validate(&load_raw(Some(path))?)
}

fn figment_errors(err: figment::Error) -> ConfigErrors {
    ConfigErrors(
        err.into_iter()
            .map(|e| {
                let mut path = e.path.clone();
                // Name the missing key itself, not only the table that lacks it.
                if let figment::error::Kind::MissingField(field) = &e.kind {
                    path.push(field.to_string());
                }
                let mut message = e.kind.to_string();
                // A table with flattened keys (the load mix) denies unknown ones after the fact,
                // as a bare message: name the key as figment does for every other table.
                if let figment::error::Kind::Message(m) = &e.kind {
                    if let Some(field) = m.strip_prefix("unknown field `").and_then(|r| r.strip_suffix('`')) {
                        path.push(field.to_string());
                        message = format!("unknown field: found `{field}`");
                    } else if let Some((field, rest)) =
                        m.strip_prefix(crate::spec::load::keyed::PREFIX).and_then(|r| r.split_once("`: "))
                    {
                        path.push(field.to_string());
                        message = rest.to_string();
                        // An unknown key one table below a flattened key (`[targets.oauth]`).
                        let inner = rest.strip_prefix("unknown field: found `").and_then(|r| r.split_once('`'));
                        if let Some((inner, _)) = inner {
                            path.push(inner.to_string());
                            message = format!("unknown field: found `{inner}`");
                        }
                    }
                }
                let key = key_path(&path);
                let mut message = redact_error(&key, &message);
                let source = e.metadata.as_ref().map(|m| m.name.to_string()).unwrap_or_default();
                if !source.is_empty() {
                    message.push_str(&format!(" (from {source})"));
                }
                ConfigError::new(if key.is_empty() { "<root>".to_string() } else { key }, message)
            })
            .collect(),
    )
}

/// `["targets", "0", "interval"]` -> `targets[0].interval`.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if segment.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

const MASK: &str = "<redacted>";

/// Words that mark a key (or a config line naming one) as holding a secret.
const SECRET_WORDS: [&str; 8] =
    ["token", "password", "secret", "authorization", "key", "cookie", "headers", "basic_auth"];

fn names_a_secret(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w)) || (lower.contains("://") && lower.contains('@'))
}

/// A parse error without the secrets it may quote: the TOML parser shows the offending source
/// line (`4 | bearer_token = "hunter2`), and a type error quotes the value it found
/// (``found `hunter2` ``). A quoted line naming a secret (or a URL with credentials) keeps its key
/// only; a found value of a secret key is masked.
fn redact_error(key: &str, message: &str) -> String {
    let secret_key = names_a_secret(key);
    message
        .lines()
        .map(|line| {
            // Source lines look like `  4 | text`.
            let quoted = line.split_once(" | ").filter(|(n, _)| {
                let n = n.trim();
                !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
            });
            match quoted {
                Some((n, text)) if names_a_secret(text) => match text.split_once('=') {
                    Some((k, _)) => format!("{n} | {}= {MASK}", k),
                    None => format!("{n} | {MASK}"),
                },
                _ if secret_key => mask_found_values(line),
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// ``found `value` `` -> ``found `<redacted>` ``.
fn mask_found_values(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("found `") {
        let (head, tail) = rest.split_at(at + "found `".len());
        out.push_str(head);
        match tail.find('`') {
            Some(end) => {
                out.push_str(MASK);
                rest = &tail[end..];
            }
            None => {
                out.push_str(MASK);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text that may be a URL with credentials, fit for an error message: the user-info of
/// `scheme://user:secret@host...` masked, even when the rest does not parse as a URL.
pub fn redact_userinfo(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else { return text.to_string() };
    let authority_start = scheme_end + 3;
    let rest = &text[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{MASK}{}", &text[..authority_start], &rest[at..]),
        None => text.to_string(),
    }
}

/// The effective config as TOML with every secret value replaced.
pub fn render_masked(raw: &RawConfig) -> String {
    let mut raw = raw.clone();
    // Both tables hold the shared probe settings: their headers and inline token are masked.
    let mask_settings = |s: &mut raw::RawProbeSettings| {
        for v in s.headers.values_mut() {
            *v = MASK.into();
        }
        if s.bearer_token.is_some() {
            s.bearer_token = Some(MASK.into());
        }
    };
    for t in &mut raw.targets {
        mask_settings(&mut t.settings);
        if let Some(redis) = &mut t.redis {
            *redis = mask_url_password(redis);
        }
        if url::Url::parse(&t.url).is_ok() {
            t.url = mask_url_password(&t.url);
        }
        for instance in &mut t.instances {
            if url::Url::parse(&instance.url).is_ok() {
                instance.url = mask_url_password(&instance.url);
            }
        }
    }
    for m in raw.modules.values_mut() {
        mask_settings(&mut m.settings);
    }
    for load in raw.profiles.iter_mut().filter_map(|p| p.load.as_mut()) {
        for entry in &mut load.memory_urls {
            *entry = match entry.split_once('=') {
                // `NAME=URL`: a name never holds "://".
                Some((name, url)) if !name.contains(':') => format!("{name}={}", mask_url_password(url)),
                _ => mask_url_password(entry),
            };
        }
    }
    for v in raw.otlp.headers.values_mut() {
        *v = MASK.into();
    }
    if let Some(c) = &mut raw.coordination {
        c.redis = mask_url_password(&c.redis);
    }
    // bcrypt hashes can be attacked offline: shown like passwords.
    for v in raw.server.basic_auth_users.values_mut() {
        *v = MASK.into();
    }
    toml::to_string_pretty(&raw).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
}

/// `redis://user:secret@host` -> `redis://user:<redacted>@host`; text that is not a URL is
/// masked whole (it may still hold a secret).
fn mask_url_password(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut u) => {
            if u.password().is_some() && u.set_password(Some(MASK)).is_err() {
                return MASK.into();
            }
            u.to_string()
        }
        Err(_) => MASK.into(),
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_url_passwords_are_masked() {
        assert_eq!(mask_url_password("redis://:hunter2@127.0.0.1:6379/0"), "redis://:%3Credacted%3E@127.0.0.1:6379/0");
        assert_eq!(mask_url_password("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(mask_url_password("not a url hunter2"), MASK);
    }

    #[test]
    fn credentials_in_target_instance_and_memory_urls_are_masked() {
        let raw: RawConfig = toml::from_str(
            r#"
            [[targets]]
            name = "t"
            url = "http://user:hunter2@127.0.0.1:1/mcp"
            instances = [{ name = "a", url = "http://u:hunter3@127.0.0.1:2/mcp" }]
            [[profiles]]
            name = "p"
            profile = "load"
            targets = ["t"]
            schedule = "0 * * * *"
            [profiles.load]
            memory_urls = ["a=http://u:hunter4@127.0.0.1:2/metrics", "http://u:hunter5@127.0.0.1:3/metrics"]
            "#,
        )
        .expect("config");
        let text = render_masked(&raw);
        for secret in ["hunter2", "hunter3", "hunter4", "hunter5"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("a=http://u:%3Credacted%3E@127.0.0.1:2/metrics"), "{text}");
        assert!(text.contains("http://user:%3Credacted%3E@127.0.0.1:1/mcp"), "{text}");
    }

    #[test]
    fn basic_auth_hashes_are_masked() {
        let raw: RawConfig = toml::from_str(
            "[server]\nlisten = \"127.0.0.1:1\"\nshutdown_grace = \"1s\"\nbearer_token_file = \"/run/token\"\n\
             [server.basic_auth_users]\nprometheus = \"$2b$04$hunter2hunter2hunter2u\"\n",
        )
        .expect("config");
        let text = render_masked(&raw);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("prometheus = \"<redacted>\""), "{text}");
        assert!(text.contains("/run/token"), "a path is no secret: {text}");
    }

    #[test]
    fn parse_errors_quote_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            "[[targets]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/mcp\"\nbearer_token = \"hunter2\n",
            "[[targets]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/mcp\"\nheaders = { X-Api-Key = \"hunter2 }\n",
            "[[targets]]\nname = \"x\"\nurl = \"http://u:hunter2@127.0.0.1:1/mcp\n",
            "[[targets]]\nname = \"x\"\nurl = \"http://127.0.0.1:1/mcp\"\nbearer_token = [\"hunter2\"]\n",
        ];
        for (i, text) in cases.iter().enumerate() {
            let path = dir.path().join(format!("{i}.toml"));
            std::fs::write(&path, text).unwrap();
            let e = load_raw(Some(&path)).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "case {i}: {e}");
            assert!(e.contains("config key"), "case {i}: {e}");
        }
        assert_eq!(redact_error("targets[0].name", "found `web`"), "found `web`", "not a secret");
        assert_eq!(
            mask_found_values("invalid type: found `5`, expected a string"),
            "invalid type: found `<redacted>`, expected a string"
        );
    }

    #[test]
    fn user_info_is_masked_even_in_broken_urls() {
        assert_eq!(redact_userinfo("http://user:pw@[::1:80/mcp"), "http://<redacted>@[::1:80/mcp");
        assert_eq!(redact_userinfo("http://127.0.0.1/a@b"), "http://127.0.0.1/a@b");
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }

    #[test]
    fn key_paths_read_like_toml() {
        let p = |v: &[&str]| key_path(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&["targets", "0", "interval"]), "targets[0].interval");
        assert_eq!(p(&["server", "listen"]), "server.listen");
    }
}
