//! OAuth protection of the reference target's MCP endpoint (`--oauth-issuer`): the target is
//! an OAuth 2.1 resource server as the MCP authorization spec describes it. At start it reads
//! the issuer's authorization server metadata (RFC 8414, else OpenID discovery) and JWKS; then
//! every request to `/mcp` needs an `Authorization: Bearer` JWT access token signed by the issuer
//! (`iss` = issuer, `aud` contains the resource URL, not expired) that carries the required
//! scopes. It serves its protected resource metadata (RFC 9728) and answers a missing or invalid
//! token with 401 and a token lacking a scope with 403, each with a `WWW-Authenticate: Bearer`
//! challenge naming the metadata and the scopes.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
use serde::Deserialize;
use serde_json::{Value, json};

/// Upper bound of a metadata document or JWKS fetched from the issuer.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Upper bound of one fetch from the issuer (connect, headers and body).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys kept from one JWKS; the rest are ignored.
const MAX_KEYS: usize = 64;
/// A token with an unknown `kid` refetches the JWKS at most this often.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Upper bound of an access token's length.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Upper bound of a request body read to find the tool of a `tools/call` (tool scopes only).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Signature algorithms accepted on access tokens (asymmetric only: the JWKS is public).
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What `--oauth-*` asks of the target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OAuthOptions {
    /// The authorization server's issuer identifier, exactly as its metadata names it.
    pub issuer: String,
    /// Scopes every MCP request's token must carry.
    pub scopes: Vec<String>,
    /// Scopes a `tools/call` of a tool must carry in addition: (tool, scope).
    pub tool_scopes: Vec<(String, String)>,
    /// The resource identifier tokens must be issued for (`aud`); the target's MCP URL
    /// (`http://LISTEN/mcp`) when `None`.
    pub resource: Option<String>,
}

/// `TOOL=SCOPE` of `--oauth-tool-scope`.
pub fn parse_tool_scope(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((tool, scope)) if !tool.is_empty() && !scope.is_empty() && !scope.contains(' ') => {
            Ok((tool.to_string(), scope.to_string()))
        }
        _ => Err(format!("expected TOOL=SCOPE (one scope, no spaces), got {value:?}")),
    }
}

/// Why the target could not set up its OAuth protection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthSetupError {
    #[error("--oauth-issuer {0:?} is not an http(s) URL")]
    Issuer(String),
    #[error("--oauth-resource {0:?} is not an http(s) URL")]
    Resource(String),
    #[error("a required scope must be one scope without spaces, got {0:?}")]
    Scope(String),
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("no authorization server metadata for issuer {issuer} (tried {tried})")]
    NoMetadata { issuer: String, tried: String },
    #[error("the metadata at {url} names issuer {found:?}, not {expected:?}")]
    IssuerMismatch { url: String, expected: String, found: String },
    #[error("the metadata at {url} has no jwks_uri")]
    NoJwksUri { url: String },
    #[error("the JWKS at {url} has no usable signing key")]
    NoKeys { url: String },
}

/// The issuer's signing keys, by `kid` (`""` for a key without one).
struct KeyCache {
    keys: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    fetched: Instant,
}

/// The OAuth state of a protected target.
pub(crate) struct Guard {
    issuer: String,
    resource: String,
    /// The protected resource metadata URL named in challenges.
    metadata_url: String,
    required: Vec<String>,
    tool_scopes: HashMap<String, Vec<String>>,
    jwks_uri: String,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<KeyCache>,
}

/// The claims read from an access token beyond those `Validation` checks.
#[derive(Deserialize)]
struct AccessClaims {
    #[serde(default)]
    scope: Option<String>,
}

/// Why a request was refused.
enum Refusal {
    /// No bearer token: 401 without an error code.
    Missing,
    /// A token that is not valid here: 401 `invalid_token`.
    Invalid,
    /// A valid token lacking scopes: 403 `insufficient_scope` naming the scopes the request needs.
    Scope(Vec<String>),
}

fn http_url(value: &str) -> Option<url::Url> {
    url::Url::parse(value).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// `base` with `/.well-known/NAME` inserted between the host and the path (RFC 8414 section 3,
/// RFC 9728 section 3).
fn well_known(base: &url::Url, name: &str) -> String {
    let path = base.path().trim_end_matches('/');
    format!("{}/.well-known/{name}{path}", base.origin().ascii_serialization())
}

/// GET `url` (bounded in time and size, no redirects) and parse it as JSON; `Ok(None)` on 404.
async fn fetch_json(http: &reqwest::Client, url: &str) -> Result<Option<Value>, OAuthSetupError> {
    let fail = |reason: String| OAuthSetupError::Fetch { url: url.to_string(), reason };
    let mut response = http.get(url).header(header::ACCEPT, "application/json").send().await.map_err(|e| {
        fail(if e.is_timeout() { "timed out".into() } else { format!("request failed: {}", e.without_url()) })
    })?;
    if response.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status().as_u16())));
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| fail(format!("reading the body: {}", e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(fail(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map(Some).map_err(|e| fail(format!("not JSON: {e}")))
}

/// The usable keys of a JWKS document.
fn parse_jwks(document: &Value) -> HashMap<String, (DecodingKey, Option<Algorithm>)> {
    let keys = document.get("keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    keys.iter()
        .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
        .filter(|jwk| {
            jwk.common.public_key_use.as_ref().is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature)
        })
        .filter_map(|jwk| {
            let decoding = DecodingKey::from_jwk(&jwk).ok()?;
            let alg = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
            Some((jwk.common.key_id.clone().unwrap_or_default(), (decoding, alg)))
        })
        .take(MAX_KEYS)
        .collect()
}

impl Guard {
    /// Read the issuer's metadata and keys; `mcp_url` is the target's own MCP endpoint.
    pub(crate) async fn discover(options: &OAuthOptions, mcp_url: &str) -> Result<Guard, OAuthSetupError> {
        let issuer_url = http_url(&options.issuer).ok_or_else(|| OAuthSetupError::Issuer(options.issuer.clone()))?;
        let resource = options.resource.clone().unwrap_or_else(|| mcp_url.to_string());
        let resource_url = http_url(&resource).ok_or_else(|| OAuthSetupError::Resource(resource.clone()))?;
        let scopes = options.scopes.iter().chain(options.tool_scopes.iter().map(|(_, s)| s));
        if let Some(bad) = scopes.clone().find(|s| s.is_empty() || s.contains(' ') || s.contains('"')) {
            return Err(OAuthSetupError::Scope(bad.clone()));
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OAuthSetupError::Fetch { url: options.issuer.clone(), reason: e.to_string() })?;

        let candidates = [
            well_known(&issuer_url, "oauth-authorization-server"),
            format!("{}/.well-known/openid-configuration", options.issuer.trim_end_matches('/')),
        ];
        let mut metadata = None;
        for url in &candidates {
            if let Some(document) = fetch_json(&http, url).await? {
                metadata = Some((url.clone(), document));
                break;
            }
        }
        let (metadata_at, metadata) = metadata.ok_or_else(|| OAuthSetupError::NoMetadata {
            issuer: options.issuer.clone(),
            tried: candidates.join(", "),
        })?;
        let found = metadata.get("issuer").and_then(Value::as_str).unwrap_or_default();
        if found != options.issuer {
            return Err(OAuthSetupError::IssuerMismatch {
                url: metadata_at,
                expected: options.issuer.clone(),
                found: found.to_string(),
            });
        }
        let jwks_uri = metadata
            .get("jwks_uri")
            .and_then(Value::as_str)
            .filter(|u| http_url(u).is_some())
            .ok_or(OAuthSetupError::NoJwksUri { url: metadata_at })?
            .to_string();
        let keys = parse_jwks(&fetch_json(&http, &jwks_uri).await?.unwrap_or(Value::Null));
        if keys.is_empty() {
            return Err(OAuthSetupError::NoKeys { url: jwks_uri });
        }

        let mut tool_scopes: HashMap<String, Vec<String>> = HashMap::new();
        for (tool, scope) in &options.tool_scopes {
            tool_scopes.entry(tool.clone()).or_default().push(scope.clone());
        }
        Ok(Guard {
            issuer: options.issuer.clone(),
            metadata_url: well_known(&resource_url, "oauth-protected-resource"),
            resource,
            required: options.scopes.clone(),
            tool_scopes,
            jwks_uri,
            http,
            // The first unknown `kid` may refetch at once (a rotation since start).
            keys: tokio::sync::Mutex::new(KeyCache {
                keys,
                fetched: Instant::now().checked_sub(JWKS_REFETCH_INTERVAL).unwrap_or_else(Instant::now),
            }),
        })
    }

    /// Every scope this resource uses, required ones first, without duplicates.
    fn scopes_supported(&self) -> Vec<String> {
        let mut all = self.required.clone();
        let mut tools: Vec<_> = self.tool_scopes.iter().collect();
        tools.sort();
        for scope in tools.into_iter().flat_map(|(_, scopes)| scopes) {
            if !all.contains(scope) {
                all.push(scope.clone());
            }
        }
        all
    }

    /// The protected resource metadata document (RFC 9728 section 2).
    fn metadata(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": self.scopes_supported(),
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp-canary reference target",
        })
    }

    /// The key for a token's `kid`, refetching the JWKS (at most every
    /// [`JWKS_REFETCH_INTERVAL`]) when it is unknown.
    async fn key(&self, kid: &str) -> Option<(DecodingKey, Option<Algorithm>)> {
        let mut cache = self.keys.lock().await;
        if let Some(found) = cache.keys.get(kid) {
            return Some(found.clone());
        }
        if cache.fetched.elapsed() < JWKS_REFETCH_INTERVAL {
            return None;
        }
        cache.fetched = Instant::now();
        match fetch_json(&self.http, &self.jwks_uri).await {
            Ok(Some(document)) => {
                let keys = parse_jwks(&document);
                if !keys.is_empty() {
                    tracing::info!(keys = keys.len(), "JWKS refetched");
                    cache.keys = keys;
                }
            }
            Ok(None) => tracing::warn!(url = %self.jwks_uri, "JWKS not found"),
            Err(error) => tracing::warn!(error = %error, "JWKS refetch failed"),
        }
        cache.keys.get(kid).cloned()
    }

    /// The scopes of a valid token, or why it is not valid here.
    async fn validate(&self, token: &str) -> Result<Vec<String>, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Invalid)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(Refusal::Invalid);
        }
        let (key, key_alg) = self.key(header.kid.as_deref().unwrap_or_default()).await.ok_or(Refusal::Invalid)?;
        if key_alg.is_some_and(|alg| alg != header.alg) {
            return Err(Refusal::Invalid);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation).map_err(|error| {
            tracing::debug!(error = %error, "Access token refused");
            Refusal::Invalid
        })?;
        Ok(data.claims.scope.unwrap_or_default().split_whitespace().map(str::to_owned).collect())
    }

    /// The tools a JSON-RPC body (one message or a batch) calls with `tools/call`.
    fn called_tools(body: &[u8]) -> Vec<String> {
        let tool = |message: &Value| {
            (message.get("method")?.as_str()? == "tools/call")
                .then(|| message.get("params")?.get("name")?.as_str().map(str::to_owned))?
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(batch)) => batch.iter().filter_map(tool).collect(),
            Ok(message) => tool(&message).into_iter().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// A 401 or 403 with its `WWW-Authenticate` challenge.
    fn refuse(&self, refusal: Refusal) -> Response {
        let metadata = &self.metadata_url;
        let scope_param = |scopes: &[String]| {
            if scopes.is_empty() { String::new() } else { format!(", scope=\"{}\"", scopes.join(" ")) }
        };
        let (status, challenge, description) = match refusal {
            Refusal::Missing => (
                StatusCode::UNAUTHORIZED,
                format!("Bearer resource_metadata=\"{metadata}\"{}", scope_param(&self.required)),
                "authorization required",
            ),
            Refusal::Invalid => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer error=\"invalid_token\", resource_metadata=\"{metadata}\"{}",
                    scope_param(&self.required)
                ),
                "invalid access token",
            ),
            Refusal::Scope(needed) => (
                StatusCode::FORBIDDEN,
                format!(
                    "Bearer error=\"insufficient_scope\"{}, resource_metadata=\"{metadata}\"",
                    scope_param(&needed)
                ),
                "insufficient scope",
            ),
        };
        let mut response = (status, format!("{description}\n")).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The bearer token of a request, if it has one.
fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The middleware in front of `/mcp`.
pub(crate) async fn require_token(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let Some(token) = bearer(&request) else {
        return guard.refuse(Refusal::Missing);
    };
    let granted = match guard.validate(token).await {
        Ok(scopes) => scopes,
        Err(refusal) => return guard.refuse(refusal),
    };
    let mut needed = guard.required.clone();
    let request = if request.method() == Method::POST && !guard.tool_scopes.is_empty() {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
        };
        for tool in Guard::called_tools(&bytes) {
            for scope in guard.tool_scopes.get(&tool).into_iter().flatten() {
                if !needed.contains(scope) {
                    needed.push(scope.clone());
                }
            }
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        request
    };
    if needed.iter().any(|scope| !granted.contains(scope)) {
        return guard.refuse(Refusal::Scope(needed));
    }
    next.run(request).await
}

/// The protected resource metadata at `/.well-known/oauth-protected-resource` and at the
/// resource's path under it (`.../oauth-protected-resource/mcp`).
pub(crate) fn metadata_router(guard: Arc<Guard>) -> Router {
    let document = Arc::new(guard.metadata());
    let path = url::Url::parse(&guard.resource).map(|u| u.path().trim_end_matches('/').to_string()).unwrap_or_default();
    let serve = move || {
        let document = document.clone();
        async move { Json(document.as_ref().clone()) }
    };
    let mut router = Router::new().route("/.well-known/oauth-protected-resource", get(serve.clone()));
    if !path.is_empty() {
        router = router.route(&format!("/.well-known/oauth-protected-resource{path}"), get(serve));
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_inserts_before_the_path() {
        let base = url::Url::parse("http://127.0.0.1:9/mcp").unwrap();
        assert_eq!(
            well_known(&base, "oauth-protected-resource"),
            "http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp"
        );
        let issuer = url::Url::parse("https://as.example/").unwrap();
        assert_eq!(
            well_known(&issuer, "oauth-authorization-server"),
            "https://as.example/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn tool_scope_flag_needs_tool_and_one_scope() {
        assert_eq!(parse_tool_scope("echo=mcp:tools"), Ok(("echo".into(), "mcp:tools".into())));
        assert!(parse_tool_scope("echo").is_err());
        assert!(parse_tool_scope("=x").is_err());
        assert!(parse_tool_scope("echo=a b").is_err());
    }

    #[test]
    fn called_tools_reads_tools_call_only() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
        assert_eq!(Guard::called_tools(call), ["echo"]);
        let batch = br#"[{"method":"tools/list"},{"method":"tools/call","params":{"name":"fail"}}]"#;
        assert_eq!(Guard::called_tools(batch), ["fail"]);
        assert!(Guard::called_tools(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).is_empty());
        assert!(Guard::called_tools(b"not json").is_empty());
    }
}
