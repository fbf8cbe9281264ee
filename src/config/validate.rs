//! Raw -> validated config. Pure: reads env and files only for secrets named by the config.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

use super::raw::{RawConfig, RawNotification, RawProbe, RawTarget};
use super::{ConfigError, ConfigErrors};
use crate::mcp::{LATEST_PROTOCOL, ProtocolPreference, SESSION_PROTOCOLS};

/// The validated daemon config.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub targets: Vec<TargetConfig>,
    /// OTLP export; `None` when off.
    pub otlp: Option<super::OtlpConfig>,
    /// Global caps of heavy profiles and their results directory.
    pub heavy: super::HeavyLimits,
    /// Scheduled heavy profiles (planned against their targets by `driver::plan_scheduled`).
    pub profiles: Vec<super::ProfileConfig>,
    /// Changes whenever `[[profiles]]` or `[heavy_profiles]` change (see [`TargetConfig::revision`]).
    pub profiles_revision: u64,
    /// The lease replicas share `[[profiles]]` through; `None`: this daemon runs them alone.
    pub coordination: Option<CoordinationSpec>,
    /// The `/probe` endpoint and its modules; `None`: off (no `[probe]` table).
    pub probe: Option<super::ProbeEndpoint>,
}

/// `[coordination]`, validated.
#[derive(Debug, Clone)]
pub struct CoordinationSpec {
    /// `redis://host:port/db` without its password (safe to log).
    pub redis: Url,
    pub password: Option<Secret>,
    pub lease: Duration,
    pub lease_key: String,
    pub holder: String,
}

/// Bounds of `coordination.lease`: renewed every third of it, so a short lease costs Redis round
/// trips and a long one delays the takeover after a holder dies.
pub const MIN_LEASE: Duration = Duration::from_secs(3);
pub const MAX_LEASE: Duration = Duration::from_secs(300);

/// The daemon's own HTTP surface.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub shutdown_grace: Duration,
    /// Threads of the canary probes' own runtime.
    pub probe_threads: usize,
    /// TLS and credentials of the surface (`[server.tls]`, `basic_auth_users`, `bearer_token_file`).
    pub security: super::ServerSecurity,
}

/// Fresh session per cycle (cold path) or one long-lived session (warm path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    Fresh,
    Persistent,
}

/// One validated target.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub name: String,
    pub url: Url,
    pub interval: Duration,
    pub jitter: f64,
    pub timeout: Duration,
    pub protocol: ProtocolPreference,
    pub session: SessionMode,
    pub max_response_bytes: usize,
    /// Static headers and Authorization, values marked sensitive.
    pub headers: HeaderMap,
    pub probe: ProbeSpec,
    pub notification: Option<NotificationSpec>,
    /// The Redis behind this target, inspected on its own loop; `None`: not inspected.
    pub redis: Option<RedisSpec>,
    /// Heavy profiles may run against this target.
    pub allow_heavy: bool,
    /// The chaos profile may inject faults into this target.
    pub allow_chaos: bool,
    /// The replicas behind `url`; `None`: a single server.
    pub instances: Option<InstancesSpec>,
    /// When the static bearer token expires, if it is a JWT with `exp` (Unix seconds).
    pub credential_expiry: Option<f64>,
    /// OAuth access tokens for a protected server, shared by every client of this target (the
    /// canary, its replicas' probes, heavy profiles).
    pub auth: Option<std::sync::Arc<crate::mcp::auth::TokenSource>>,
    /// Changes whenever the target's table or a secret it reads changes: a reload keeps a target
    /// whose revision is the same (its sessions, schedule and tokens) and restarts the others.
    pub revision: u64,
}

impl TargetConfig {
    /// Client settings for this target's sessions.
    pub fn client_config(&self) -> crate::mcp::ClientConfig {
        crate::mcp::ClientConfig {
            headers: self.headers.clone(),
            protocol: self.protocol.clone(),
            request_timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
            auth: self.auth.clone(),
            ..crate::mcp::ClientConfig::new(self.url.clone())
        }
    }
}

/// A balanced target's replicas and the checks that need them.
#[derive(Debug, Clone)]
pub struct InstancesSpec {
    pub replicas: Vec<Replica>,
    /// Response header naming the serving replica.
    pub header: HeaderName,
    /// Sequential requests of the affinity check; 0: off.
    pub affinity_requests: u32,
    /// Triggers per cycle of the cross-instance delivery check; 0: off (also off without a
    /// notification trigger).
    pub delivery_broadcasts: u32,
}

impl InstancesSpec {
    /// The `replica` label for a served-by header value: a configured name, else `unknown`
    /// (the label stays bounded whatever the server sends).
    pub fn replica_label(&self, served_by: Option<&str>) -> &str {
        served_by
            .and_then(|v| self.replicas.iter().find(|r| r.name == v))
            .map(|r| r.name.as_str())
            .unwrap_or(UNKNOWN_REPLICA)
    }
}

/// One replica: its `replica` label and direct URL.
#[derive(Debug, Clone)]
pub struct Replica {
    pub name: String,
    pub url: Url,
}

/// At most this many instances per target (each is a `replica` label value).
pub const MAX_INSTANCES: usize = 16;
/// Longest probe (and Redis inspection) interval: a day. Longer ones are typos, and durations
/// near the clock's range overflow the scheduler's instants.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Longest wait for a notification of the round trip.
pub const MAX_NOTIFICATION_TIMEOUT: Duration = Duration::from_secs(600);
/// Most threads `server.probe_threads` may ask for (each idles on its own timer and I/O driver).
pub const MAX_PROBE_THREADS: usize = 64;

/// Longest `server.shutdown_grace`: a stop must not hang a deployment for longer.
pub const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(600);
/// A target's request timeout when `timeout` is not set and the interval is longer.
pub const DEFAULT_TARGET_TIMEOUT: Duration = Duration::from_secs(10);
/// The `replica` label of a response from no configured instance (or without the header).
pub const UNKNOWN_REPLICA: &str = "unknown";

pub use crate::mcp::Secret;

/// Redis inspection of one target.
#[derive(Debug, Clone)]
pub struct RedisSpec {
    /// `redis://host:port/db` with any password removed (safe to log).
    pub url: Url,
    /// From the URL, `redis_password_env` or `redis_password_file`.
    pub password: Option<Secret>,
    pub interval: Duration,
    pub timeout: Duration,
    /// `SCAN MATCH` / `PUBSUB CHANNELS` patterns; each becomes a `pattern` label value.
    pub key_patterns: Vec<String>,
    /// Most keys examined per pattern per sample (the sum of `SCAN COUNT` hints).
    pub scan_budget: u64,
}

/// At most this many key patterns per target (each is a label value).
pub const MAX_REDIS_PATTERNS: usize = 16;

/// What the default probe script calls; `None` steps are skipped as not configured.
#[derive(Debug, Clone, Default)]
pub struct ProbeSpec {
    pub tool: Option<(String, Value)>,
    pub resource: Option<String>,
    pub prompt: Option<(String, Value)>,
}

/// Notification round trip: call `tool` with `arguments` (`{nonce}` substituted), expect `method`.
#[derive(Debug, Clone)]
pub struct NotificationSpec {
    pub tool: String,
    pub arguments: Value,
    pub method: String,
    pub timeout: Duration,
}

/// Maximum number of targets: every target adds series, keep cardinality bounded.
pub const MAX_TARGETS: usize = 1000;

/// Validate every field, collecting all errors so one run shows them all.
pub fn validate(raw: &RawConfig) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let listen = raw
        .server
        .listen
        .parse::<SocketAddr>()
        .map_err(|e| errors.push(ConfigError::new("server.listen", format!("not a socket address (host:port): {e}"))))
        .ok();
    if raw.targets.len() > MAX_TARGETS {
        errors.push(ConfigError::new("targets", format!("at most {MAX_TARGETS} targets")));
    }
    // A daemon that only answers /probe (blackbox-style) needs no scheduled target.
    if raw.targets.is_empty() && raw.probe.is_none() {
        errors.push(ConfigError::new(
            "targets",
            "no target: add at least one [[targets]] table (or a [probe] table to serve /probe only)".into(),
        ));
    }
    if raw.server.shutdown_grace > MAX_SHUTDOWN_GRACE {
        errors.push(ConfigError::new(
            "server.shutdown_grace",
            format!("must be at most {}", humantime::format_duration(MAX_SHUTDOWN_GRACE)),
        ));
    }
    if !(1..=MAX_PROBE_THREADS).contains(&raw.server.probe_threads) {
        errors.push(ConfigError::new(
            "server.probe_threads",
            format!("must be 1 to {MAX_PROBE_THREADS}, got {}", raw.server.probe_threads),
        ));
    }
    let mut targets = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, t) in raw.targets.iter().enumerate() {
        let path = format!("targets[{i}]");
        if !names.insert(t.name.as_str()) {
            errors.push(ConfigError::new(format!("{path}.name"), format!("duplicate target name {:?}", t.name)));
        }
        if let Some(t) = validate_target(&path, t, &mut errors) {
            targets.push(t);
        }
    }
    let security = super::server::validate_security(&raw.server, &mut errors);
    let otlp = super::otlp::validate_otlp(&raw.otlp, &mut errors);
    let heavy = super::profiles::validate_limits(&raw.heavy_profiles, &mut errors);
    let profiles = super::profiles::validate_profiles(raw, &mut errors);
    let coordination = raw.coordination.as_ref().and_then(|c| coordination_spec(c, &mut errors));
    let probe = super::modules::validate_probe(raw.probe.as_ref(), &raw.modules, &mut errors);
    match (listen, heavy, errors.is_empty()) {
        (Some(listen), Some(heavy), true) => Ok(Config {
            server: ServerConfig {
                listen,
                shutdown_grace: raw.server.shutdown_grace,
                probe_threads: raw.server.probe_threads,
                security,
            },
            targets,
            otlp,
            heavy,
            profiles,
            profiles_revision: revision_of(&(&raw.profiles, &raw.heavy_profiles), &[]),
            coordination,
            probe,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

fn validate_target(path: &str, t: &RawTarget, errors: &mut Vec<ConfigError>) -> Option<TargetConfig> {
    let (target, oauth) = target_parts(path, t, errors)?;
    let auth = match oauth {
        Some(settings) => match crate::mcp::transport::http_client() {
            Ok(http) => {
                Some(std::sync::Arc::new(crate::mcp::auth::TokenSource::new(target.url.clone(), settings, http)))
            }
            Err(e) => {
                errors.push(ConfigError::new(format!("{path}.oauth"), format!("cannot build an HTTP client: {e}")));
                return None;
            }
        },
        None => None,
    };
    Some(TargetConfig { auth, ..target })
}

/// A target without its token source, and the OAuth settings to build one from (for the
/// target's URL; a `/probe` module builds one per requested URL).
pub(super) fn target_parts(
    path: &str,
    t: &RawTarget,
    errors: &mut Vec<ConfigError>,
) -> Option<(TargetConfig, Option<crate::mcp::auth::OAuthSettings>)> {
    let before = errors.len();
    let mut err = |field: &str, msg: String| errors.push(ConfigError::new(format!("{path}.{field}"), msg));
    if t.name.is_empty() || t.name.len() > 64 || !t.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        err("name", "must be 1-64 characters of [A-Za-z0-9._-] (it becomes the `target` label)".into());
    }
    let url = match Url::parse(&t.url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(u),
        Ok(u) => {
            err("url", format!("scheme must be http or https, not {:?}", u.scheme()));
            None
        }
        Err(e) => {
            err("url", format!("not a URL: {e}"));
            None
        }
    };
    if t.interval < Duration::from_secs(1) || t.interval > MAX_INTERVAL {
        err("interval", format!("must be between 1s and {}", humantime::format_duration(MAX_INTERVAL)));
    }
    if !(0.0..=1.0).contains(&t.jitter) || t.jitter.is_nan() {
        err("jitter", "must be a fraction of the interval between 0 and 1".into());
    }
    // Unset, the timeout follows a short interval down instead of refusing it.
    let timeout = t.settings.timeout.unwrap_or(DEFAULT_TARGET_TIMEOUT.min(t.interval));
    if timeout.is_zero() {
        err("timeout", "must be greater than 0".into());
    } else if timeout > t.interval {
        err("timeout", format!("must not exceed interval ({})", humantime::format_duration(t.interval)));
    }
    let protocol = match t.settings.protocol.as_str() {
        "auto" => Some(ProtocolPreference::Auto),
        v if v == LATEST_PROTOCOL || SESSION_PROTOCOLS.contains(&v) => Some(ProtocolPreference::Pinned(v.to_string())),
        v => {
            err(
                "protocol",
                format!(
                    "unknown protocol {v:?}; expected \"auto\", {LATEST_PROTOCOL:?} or one of {SESSION_PROTOCOLS:?}"
                ),
            );
            None
        }
    };
    let session = match t.settings.session.as_str() {
        "fresh" => Some(SessionMode::Fresh),
        "persistent" => Some(SessionMode::Persistent),
        v => {
            err("session", format!("unknown session mode {v:?}; expected \"fresh\" or \"persistent\""));
            None
        }
    };
    if t.settings.max_response_bytes < 1024 || t.settings.max_response_bytes > 1 << 30 {
        err("max_response_bytes", "must be between 1024 and 1073741824".into());
    }
    // Every secret value read below, for the revision.
    let mut secrets = Vec::new();
    let headers = build_headers(path, t, errors, &mut secrets);
    // A static bearer token that is a JWT tells when it expires (the 72 h credential alert).
    let credential_expiry =
        headers.as_ref().and_then(|(_, token)| token.as_ref()).and_then(crate::mcp::auth::jwt_expiry);
    let probe = probe_spec(&t.settings.probe);
    let notification = t.settings.notification.as_ref().map(notification_spec);
    if let Some(n) = &t.settings.notification {
        if n.method.is_empty() {
            errors.push(ConfigError::new(format!("{path}.notification.method"), "must not be empty".into()));
        }
        if n.timeout.is_zero() || n.timeout > MAX_NOTIFICATION_TIMEOUT {
            errors.push(ConfigError::new(
                format!("{path}.notification.timeout"),
                format!("must be greater than 0 and at most {}", humantime::format_duration(MAX_NOTIFICATION_TIMEOUT)),
            ));
        }
    }
    let redis = redis_spec(path, t, errors, &mut secrets);
    let instances = instances_spec(path, t, errors);
    let oauth = t.settings.oauth.as_ref().and_then(|o| oauth_settings(path, t, o, errors, &mut secrets));
    if errors.len() != before {
        return None;
    }
    let target = TargetConfig {
        name: t.name.clone(),
        url: url?,
        interval: t.interval,
        jitter: t.jitter,
        timeout,
        protocol: protocol?,
        session: session?,
        max_response_bytes: t.settings.max_response_bytes as usize,
        headers: headers?.0,
        probe,
        notification,
        redis,
        allow_heavy: t.allow_heavy,
        allow_chaos: t.allow_chaos,
        instances,
        credential_expiry,
        auth: None,
        revision: revision_of(t, &secrets),
    };
    Some((target, oauth))
}

/// A hash of a config table (as serialized) and the secrets it names, stable within a process.
fn revision_of(table: &impl serde::Serialize, secrets: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(table).unwrap_or_default().hash(&mut hasher);
    secrets.hash(&mut hasher);
    hasher.finish()
}

/// A secret from the first source given: `env` (the key and the variable: its value as set) or
/// `file` (the key and the path: its contents, trimmed). A source that cannot be read is reported
/// at its key; `None` then, or when neither is given. The value as read is pushed on `secrets`:
/// the target's revision hashes it, so a rotated secret file restarts the target on reload even
/// when its table is unchanged, without reading the file a second time.
fn secret_source(
    env: Option<(&str, &str)>,
    file: Option<(&str, &str)>,
    err: &mut dyn FnMut(&str, String),
    secrets: &mut Vec<String>,
) -> Option<String> {
    if let Some((key, var)) = env {
        let value = std::env::var(var).map_err(|_| err(key, format!("environment variable {var} is not set"))).ok()?;
        secrets.push(value.clone());
        return Some(value);
    }
    let (key, path) = file?;
    let contents = std::fs::read_to_string(path).map_err(|e| err(key, format!("cannot read {path}: {e}"))).ok()?;
    let value = contents.trim().to_string();
    secrets.push(contents);
    Some(value)
}

/// The client's credential: a secret from the environment or a file, or a private key file.
fn oauth_credential(
    o: &super::raw::RawOAuth,
    err: &mut impl FnMut(&str, String),
    secrets: &mut Vec<String>,
) -> Option<crate::mcp::auth::ClientCredential> {
    use crate::mcp::auth::{ClientCredential, SigningKey};
    if o.client_secret_env.is_some() || o.client_secret_file.is_some() {
        let env = o.client_secret_env.as_deref().map(|var| ("client_secret_env", var));
        let file = o.client_secret_file.as_deref().map(|path| ("client_secret_file", path));
        let secret = secret_source(env, file, err, secrets)?.trim().to_string();
        if secret.is_empty() {
            match (env, file) {
                (Some((key, var)), _) => err(key, format!("environment variable {var} is empty")),
                (None, Some((key, path))) => err(key, format!("{path} is empty")),
                (None, None) => {}
            }
            return None;
        }
        return Some(ClientCredential::Secret(Secret::new(secret)));
    }
    let file = o.private_key_file.as_ref()?;
    let pem = match std::fs::read(file) {
        Ok(pem) => {
            secrets.push(String::from_utf8_lossy(&pem).into_owned());
            pem
        }
        Err(e) => {
            err("private_key_file", format!("cannot read {file}: {e}"));
            return None;
        }
    };
    let alg = o.signing_alg.as_deref().unwrap_or("RS256");
    match SigningKey::from_pem(&pem, alg, o.key_id.clone()) {
        Ok(key) => Some(ClientCredential::PrivateKey(std::sync::Arc::new(key))),
        Err(e) if e.starts_with("unsupported") => {
            err("signing_alg", e);
            None
        }
        Err(e) => {
            err("private_key_file", format!("{file}: {e}"));
            None
        }
    }
}

/// `[targets.oauth]`: the client id, its credential (a secret from the environment or a file, or
/// a private key file), scopes and an optional authorization server.
fn oauth_settings(
    path: &str,
    t: &RawTarget,
    o: &super::raw::RawOAuth,
    errors: &mut Vec<ConfigError>,
    secrets: &mut Vec<String>,
) -> Option<crate::mcp::auth::OAuthSettings> {
    let before = errors.len();
    let mut err = |field: &str, msg: String| errors.push(ConfigError::new(format!("{path}.oauth.{field}"), msg));
    let dynamic = o.client_id.is_empty() && o.grant.as_deref() == Some("refresh_token");
    if o.client_id.trim().is_empty() && !dynamic {
        err(
            "client_id",
            "must not be empty (only grant = \"refresh_token\" may leave it out: auth login then registers a client)"
                .into(),
        );
    }
    if t.settings.bearer_token.is_some()
        || t.settings.bearer_token_env.is_some()
        || t.settings.bearer_token_file.is_some()
    {
        err("client_id", "a target takes either a bearer token or [targets.oauth], not both".into());
    }
    if t.settings
        .headers
        .keys()
        .chain(t.settings.headers_from_env.keys())
        .any(|k| k.eq_ignore_ascii_case("authorization"))
    {
        err("client_id", "an Authorization header and [targets.oauth] would both set Authorization".into());
    }
    let grant = match (o.grant.as_deref().unwrap_or("client_credentials"), &o.token_file) {
        ("client_credentials", None) => Some(crate::mcp::auth::Grant::ClientCredentials),
        ("client_credentials", Some(_)) => {
            err("token_file", "goes with grant = \"refresh_token\"".into());
            None
        }
        ("refresh_token", Some(file)) if !file.trim().is_empty() => {
            Some(crate::mcp::auth::Grant::RefreshToken { token_file: file.into() })
        }
        ("refresh_token", _) => {
            err("token_file", "grant = \"refresh_token\" needs the file `mcp-canary auth login` writes".into());
            None
        }
        (other, _) => {
            err("grant", format!("unknown grant {other:?}; expected \"client_credentials\" or \"refresh_token\""));
            None
        }
    };
    let public_allowed = matches!(grant, Some(crate::mcp::auth::Grant::RefreshToken { .. }));
    let sources = [o.client_secret_env.is_some(), o.client_secret_file.is_some(), o.private_key_file.is_some()];
    let credential = match sources.iter().filter(|s| **s).count() {
        0 if public_allowed => Some(crate::mcp::auth::ClientCredential::Public),
        0 => {
            err(
                "client_secret_env",
                "set client_secret_env, client_secret_file or private_key_file (a secret never sits in the file)"
                    .into(),
            );
            None
        }
        1 => oauth_credential(o, &mut err, secrets),
        _ => {
            err("client_secret_env", "set only one of client_secret_env, client_secret_file, private_key_file".into());
            None
        }
    };
    if o.private_key_file.is_none() && (o.signing_alg.is_some() || o.key_id.is_some()) {
        err("signing_alg", "signing_alg and key_id go with private_key_file".into());
    }
    for scope in &o.scopes {
        if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\') {
            err("scopes", format!("{scope:?} is not a scope token (no spaces, quotes or backslashes)"));
        }
    }
    let authorization_server = match &o.authorization_server {
        Some(s) => match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                err("authorization_server", "must be an http or https URL (the issuer)".into());
                None
            }
        },
        None => None,
    };
    let auth_method = match o.token_endpoint_auth_method.as_deref() {
        None => None,
        Some(name) => match crate::mcp::auth::ClientAuthMethod::parse(name) {
            Some(m) => Some(m),
            None => {
                err(
                    "token_endpoint_auth_method",
                    format!("unknown method {name:?}; expected \"client_secret_basic\" or \"client_secret_post\""),
                );
                None
            }
        },
    };
    (errors.len() == before).then(|| crate::mcp::auth::OAuthSettings {
        grant: grant.expect("no error: a grant"),
        auth_method,
        client_id: o.client_id.clone(),
        credential: credential.expect("no error: a credential"),
        scopes: o.scopes.clone(),
        authorization_server,
    })
}

/// A replica name usable as a `replica` label value.
pub fn check_replica_name(name: &str) -> Result<(), String> {
    let valid =
        !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid {
        Err("must be 1-32 characters of [A-Za-z0-9._-] (it becomes the `replica` label)".into())
    } else if name == UNKNOWN_REPLICA {
        Err(format!("{UNKNOWN_REPLICA:?} is reserved"))
    } else {
        Ok(())
    }
}

fn instances_spec(path: &str, t: &RawTarget, errors: &mut Vec<ConfigError>) -> Option<InstancesSpec> {
    let before = errors.len();
    let mut err = |field: String, msg: String| errors.push(ConfigError::new(format!("{path}.{field}"), msg));
    if t.instances.len() > MAX_INSTANCES {
        err("instances".into(), format!("at most {MAX_INSTANCES} instances (each is a `replica` label value)"));
    }
    let mut names = std::collections::HashSet::new();
    let mut replicas = Vec::new();
    for (i, inst) in t.instances.iter().enumerate() {
        if let Err(e) = check_replica_name(&inst.name) {
            err(format!("instances[{i}].name"), e);
        } else if !names.insert(inst.name.as_str()) {
            err(format!("instances[{i}].name"), format!("duplicate instance name {:?}", inst.name));
        }
        match Url::parse(&inst.url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                replicas.push(Replica { name: inst.name.clone(), url: u })
            }
            Ok(u) => err(format!("instances[{i}].url"), format!("scheme must be http or https, not {:?}", u.scheme())),
            Err(e) => err(format!("instances[{i}].url"), format!("not a URL: {e}")),
        }
    }
    let header = HeaderName::from_bytes(t.instance_header.as_bytes())
        .map_err(|_| err("instance_header".into(), format!("{:?} is not a valid header name", t.instance_header)))
        .ok();
    if t.affinity_requests > 100 {
        err("affinity_requests".into(), "must be between 0 and 100".into());
    }
    if t.delivery_broadcasts > 100 {
        err("delivery_broadcasts".into(), "must be between 0 and 100".into());
    }
    if errors.len() != before || replicas.is_empty() {
        return None;
    }
    Some(InstancesSpec {
        replicas,
        header: header?,
        affinity_requests: t.affinity_requests,
        delivery_broadcasts: t.delivery_broadcasts,
    })
}

/// A `redis://host:port/db` URL without its password, and the password from the URL,
/// `redis_password_env` or `redis_password_file` (at most one of them); errors at `redis` or the
/// password keys. The URL is never echoed: it may hold a password.
fn redis_url(
    raw_url: &str,
    password_env: Option<&str>,
    password_file: Option<&str>,
    err: &mut dyn FnMut(&str, String),
    secrets: &mut Vec<String>,
) -> (Option<Url>, Option<String>) {
    let mut url = match Url::parse(raw_url) {
        Ok(u) if u.scheme() == "redis" && u.host_str().is_some_and(|h| !h.is_empty()) => Some(u),
        Ok(u) if u.scheme() != "redis" => {
            err("redis", format!("scheme must be redis, not {:?}", u.scheme()));
            None
        }
        Ok(_) => {
            err("redis", "must name a host (redis://host:port/db)".into());
            None
        }
        Err(e) => {
            err("redis", format!("not a URL: {e}"));
            None
        }
    };
    if let Some(u) = &url {
        let db = u.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u16>().is_err() {
            err("redis", "the path must be a database number (redis://host:port/0)".into());
        }
    }
    let url_password = url.as_ref().and_then(|u| u.password()).map(|p| p.to_string());
    if let Some(u) = url.as_mut() {
        let _ = u.set_password(None);
    }
    let sources = [url_password.is_some(), password_env.is_some(), password_file.is_some()];
    if sources.iter().filter(|s| **s).count() > 1 {
        err(
            "redis_password_env",
            "set only one of a password in redis, redis_password_env, redis_password_file".into(),
        );
    }
    let password = if let Some(p) = url_password {
        Some(p)
    } else {
        secret_source(
            password_env.map(|var| ("redis_password_env", var)),
            password_file.map(|path| ("redis_password_file", path)),
            err,
            secrets,
        )
    };
    (url, password)
}

fn coordination_spec(c: &super::RawCoordination, errors: &mut Vec<ConfigError>) -> Option<CoordinationSpec> {
    let before = errors.len();
    let mut err = |field: &str, msg: String| errors.push(ConfigError::new(format!("coordination.{field}"), msg));
    // No revision hashes the coordination password: the secrets read are dropped.
    let (password_env, password_file) = (c.redis_password_env.as_deref(), c.redis_password_file.as_deref());
    let (url, password) = redis_url(&c.redis, password_env, password_file, &mut err, &mut Vec::new());
    if c.lease < MIN_LEASE || c.lease > MAX_LEASE {
        err(
            "lease",
            format!(
                "must be between {} and {}",
                humantime::format_duration(MIN_LEASE),
                humantime::format_duration(MAX_LEASE)
            ),
        );
    }
    if c.lease_key.is_empty() || c.lease_key.len() > 256 || c.lease_key.chars().any(char::is_control) {
        err("lease_key", "must be 1-256 printable characters".into());
    }
    let holder = c.holder.clone().unwrap_or_else(default_holder);
    if holder.is_empty() || holder.len() > 256 || holder.chars().any(char::is_control) {
        err("holder", "must be 1-256 printable characters".into());
    }
    if errors.len() != before {
        return None;
    }
    Some(CoordinationSpec {
        redis: url?,
        password: password.map(Secret::new),
        lease: c.lease,
        lease_key: c.lease_key.clone(),
        holder,
    })
}

/// `HOST-PID` (HOSTNAME is the pod name in Kubernetes).
fn default_holder() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "mcp-canary".into());
    format!("{host}-{}", std::process::id())
}

fn redis_spec(
    path: &str,
    t: &RawTarget,
    errors: &mut Vec<ConfigError>,
    secrets: &mut Vec<String>,
) -> Option<RedisSpec> {
    let mut err = |field: &str, msg: String| errors.push(ConfigError::new(format!("{path}.{field}"), msg));
    let Some(raw_url) = &t.redis else {
        if t.redis_password_env.is_some() || t.redis_password_file.is_some() {
            err("redis", "redis_password_env / redis_password_file are set but redis is not".into());
        }
        return None;
    };
    let (url, password) =
        redis_url(raw_url, t.redis_password_env.as_deref(), t.redis_password_file.as_deref(), &mut err, secrets);
    if t.redis_interval < Duration::from_secs(1) || t.redis_interval > MAX_INTERVAL {
        err("redis_interval", format!("must be between 1s and {}", humantime::format_duration(MAX_INTERVAL)));
    }
    if t.redis_timeout.is_zero() {
        err("redis_timeout", "must be greater than 0".into());
    } else if t.redis_timeout > t.redis_interval {
        err(
            "redis_timeout",
            format!("must not exceed redis_interval ({})", humantime::format_duration(t.redis_interval)),
        );
    }
    if t.redis_key_patterns.len() > MAX_REDIS_PATTERNS {
        err("redis_key_patterns", format!("at most {MAX_REDIS_PATTERNS} patterns (each is a label value)"));
    }
    let mut seen = std::collections::HashSet::new();
    for p in &t.redis_key_patterns {
        if p.is_empty() || p.len() > 128 || p.chars().any(|c| c.is_control()) {
            err("redis_key_patterns", format!("{p:?} must be 1-128 printable characters"));
        } else if !seen.insert(p.as_str()) {
            err("redis_key_patterns", format!("duplicate pattern {p:?}"));
        }
    }
    if !(1..=1_000_000).contains(&t.redis_scan_budget) {
        err("redis_scan_budget", "must be between 1 and 1000000".into());
    }
    Some(RedisSpec {
        url: url?,
        password: password.map(Secret::new),
        interval: t.redis_interval,
        timeout: t.redis_timeout,
        key_patterns: t.redis_key_patterns.clone(),
        scan_budget: t.redis_scan_budget,
    })
}

/// The target's request headers, and its static bearer token (which they carry) when it has one.
fn build_headers(
    path: &str,
    t: &RawTarget,
    errors: &mut Vec<ConfigError>,
    secrets: &mut Vec<String>,
) -> Option<(HeaderMap, Option<Secret>)> {
    let before = errors.len();
    let mut map = HeaderMap::new();
    let mut insert = |field: String, name: &str, value: &str, errors: &mut Vec<ConfigError>| {
        let name = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => n,
            Err(_) => return errors.push(ConfigError::new(field, format!("{name:?} is not a valid header name"))),
        };
        match HeaderValue::from_str(value) {
            Ok(mut v) => {
                v.set_sensitive(true);
                map.insert(name, v);
            }
            // Never echo the value: it may be a secret.
            Err(_) => errors.push(ConfigError::new(field, "value is not a valid header value".into())),
        }
    };
    for (name, value) in &t.settings.headers {
        insert(format!("{path}.headers.{name}"), name, value, errors);
    }
    for (name, var) in &t.settings.headers_from_env {
        let field = format!("{path}.headers_from_env.{name}");
        match std::env::var(var) {
            Ok(value) => {
                insert(field, name, &value, errors);
                secrets.push(value);
            }
            Err(_) => errors.push(ConfigError::new(field, format!("environment variable {var} is not set"))),
        }
    }
    let token_sources = [
        t.settings.bearer_token.is_some(),
        t.settings.bearer_token_env.is_some(),
        t.settings.bearer_token_file.is_some(),
    ];
    if token_sources.iter().filter(|s| **s).count() > 1 {
        errors.push(ConfigError::new(
            format!("{path}.bearer_token"),
            "set only one of bearer_token, bearer_token_env, bearer_token_file".into(),
        ));
    }
    let (token, source) = if let Some(token) = &t.settings.bearer_token {
        (Some(token.clone()), "bearer_token")
    } else {
        let env = t.settings.bearer_token_env.as_deref().map(|var| ("bearer_token_env", var));
        let file = t.settings.bearer_token_file.as_deref().map(|f| ("bearer_token_file", f));
        let source = env.or(file).map_or("bearer_token", |(key, _)| key);
        let token = secret_source(
            env,
            file,
            &mut |key, message| errors.push(ConfigError::new(format!("{path}.{key}"), message)),
            secrets,
        );
        (token, source)
    };
    // An empty token would send `Authorization: Bearer ` with nothing after it.
    let token = token.filter(|token| {
        let empty = token.trim().is_empty();
        if empty {
            errors.push(ConfigError::new(format!("{path}.{source}"), "the token is empty".into()));
        }
        !empty
    });
    if let Some(token) = &token {
        insert(format!("{path}.bearer_token"), AUTHORIZATION.as_str(), &format!("Bearer {token}"), errors);
    }
    (errors.len() == before).then_some((map, token.map(Secret::new)))
}

fn table_to_json(table: &Option<toml::Table>) -> Value {
    table.as_ref().and_then(|t| serde_json::to_value(t).ok()).unwrap_or_else(|| Value::Object(Default::default()))
}

fn probe_spec(p: &RawProbe) -> ProbeSpec {
    ProbeSpec {
        tool: p.tool.clone().map(|t| (t, table_to_json(&p.tool_arguments))),
        resource: p.resource.clone(),
        prompt: p.prompt.clone().map(|n| (n, table_to_json(&p.prompt_arguments))),
    }
}

fn notification_spec(n: &RawNotification) -> NotificationSpec {
    NotificationSpec {
        tool: n.tool.clone(),
        arguments: table_to_json(&n.arguments),
        method: n.method.clone(),
        timeout: n.timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawCoordination, RawInstance};

    fn coordination(redis: &str, lease: u64) -> RawCoordination {
        RawCoordination {
            redis: redis.into(),
            redis_password_env: None,
            redis_password_file: None,
            lease: Duration::from_secs(lease),
            lease_key: "k".into(),
            holder: None,
        }
    }

    #[test]
    fn coordination_is_checked_by_key_and_keeps_its_password_out_of_the_url() {
        let mut errors = Vec::new();
        let spec = coordination_spec(&coordination("redis://:pw@127.0.0.1:6379/0", 15), &mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(spec.redis.as_str(), "redis://127.0.0.1:6379/0");
        assert_eq!(spec.password.as_ref().map(Secret::expose), Some("pw"));
        assert!(spec.holder.ends_with(&format!("-{}", std::process::id())), "{}", spec.holder);
        let keys = |c: RawCoordination| {
            let mut errors = Vec::new();
            assert!(coordination_spec(&c, &mut errors).is_none());
            errors.into_iter().map(|e| e.key).collect::<Vec<_>>()
        };
        assert_eq!(keys(coordination("http://127.0.0.1/0", 15)), ["coordination.redis"]);
        assert_eq!(keys(coordination("redis://127.0.0.1/0", 1)), ["coordination.lease"]);
        assert_eq!(keys(coordination("redis://127.0.0.1/0", 301)), ["coordination.lease"]);
        let mut both = coordination("redis://:pw@127.0.0.1/0", 15);
        both.redis_password_env = Some("X".into());
        assert!(keys(both).contains(&"coordination.redis_password_env".to_string()));
        let mut key = coordination("redis://127.0.0.1/0", 15);
        key.lease_key = String::new();
        assert_eq!(keys(key), ["coordination.lease_key"]);
    }

    fn with_instances(n: usize) -> RawTarget {
        let mut t = RawTarget::new("t", "http://127.0.0.1:1/mcp");
        t.instances = (0..n)
            .map(|i| RawInstance { name: format!("r{i}"), url: format!("http://127.0.0.1:{}/mcp", 2 + i) })
            .collect();
        t
    }

    fn errors(t: &RawTarget) -> Vec<String> {
        let mut errors = Vec::new();
        instances_spec("targets[0]", t, &mut errors);
        errors.iter().map(|e| format!("{}: {}", e.key, e.message)).collect()
    }

    #[test]
    fn instances_are_bounded_and_named() {
        assert!(errors(&with_instances(MAX_INSTANCES)).is_empty());
        assert_eq!(errors(&with_instances(MAX_INSTANCES + 1))[0].split(':').next(), Some("targets[0].instances"));
        let mut t = with_instances(2);
        t.instances[1].name = "bad name".into();
        t.instance_header = "bad header".into();
        t.affinity_requests = 101;
        let e = errors(&t);
        assert!(e[0].starts_with("targets[0].instances[1].name: must be 1-32"), "{e:?}");
        assert!(e[1].starts_with("targets[0].instance_header:"), "{e:?}");
        assert!(e[2].starts_with("targets[0].affinity_requests:"), "{e:?}");
    }

    #[test]
    fn an_unset_timeout_follows_a_short_interval() {
        let config = |interval: u64, timeout: Option<u64>| {
            let mut t = RawTarget::new("t", "http://127.0.0.1:1/mcp");
            t.interval = Duration::from_secs(interval);
            t.settings.timeout = timeout.map(Duration::from_secs);
            validate(&RawConfig { targets: vec![t], ..Default::default() })
        };
        assert_eq!(config(2, None).unwrap().targets[0].timeout, Duration::from_secs(2));
        assert_eq!(config(60, None).unwrap().targets[0].timeout, DEFAULT_TARGET_TIMEOUT);
        let e = config(2, Some(10)).unwrap_err().to_string();
        assert!(e.contains("targets[0].timeout") && e.contains("must not exceed interval"), "{e}");
    }

    #[test]
    fn a_rotated_secret_file_changes_the_revision() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        let revision = || {
            let mut t = RawTarget::new("t", "http://127.0.0.1:1/mcp");
            t.settings.bearer_token_file = Some(token.to_str().unwrap().into());
            validate(&RawConfig { targets: vec![t], ..Default::default() }).unwrap().targets[0].revision
        };
        std::fs::write(&token, "one").unwrap();
        let first = revision();
        assert_eq!(revision(), first, "an unchanged file keeps the revision");
        std::fs::write(&token, "two").unwrap();
        assert_ne!(revision(), first, "a rotated file changes it");
    }

    #[test]
    fn no_instances_means_no_spec() {
        let mut errors = Vec::new();
        assert!(instances_spec("targets[0]", &with_instances(0), &mut errors).is_none());
        assert!(errors.is_empty());
        let spec = instances_spec("targets[0]", &with_instances(2), &mut errors).unwrap();
        assert_eq!(spec.replica_label(Some("r1")), "r1");
        assert_eq!(spec.replica_label(Some("other")), UNKNOWN_REPLICA);
        assert_eq!(spec.replica_label(None), UNKNOWN_REPLICA);
    }
}
