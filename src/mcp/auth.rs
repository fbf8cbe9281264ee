//! OAuth 2.1 for protected MCP servers, as the MCP authorization specification orders it:
//! the server's Protected Resource Metadata (RFC 9728; from the `resource_metadata` of a 401
//! challenge, else the well-known URLs), its authorization server's metadata (RFC 8414 or
//! OpenID discovery, with the 2025-03-26 fallbacks), then an access token for the resource
//! (RFC 8707 `resource` parameter) by client credentials, cached and renewed before it expires.
//! A token whose issuer or audience names another server is refused, and nothing here sends a
//! secret anywhere but the discovered token endpoint.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde::Deserialize;
use serde_json::Value;

use super::McpError;
use super::protocol::printable;
use super::secret::Secret;

/// Bound on a metadata document or token response.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Bound on one discovery fetch or token request.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a `WWW-Authenticate` header worth parsing.
const MAX_CHALLENGE_BYTES: usize = 8 * 1024;
/// Renew a token this long (or a tenth of its lifetime, if less) before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);
/// A token refused with 401 younger than this is not replaced at once (see `challenged`).
const MIN_TOKEN_AGE: Duration = Duration::from_secs(10);
/// Scope step-ups (403 `insufficient_scope`) one token source makes before it stops asking.
const MAX_STEP_UPS: u32 = 3;

/// The parameters of a Bearer challenge (`WWW-Authenticate: Bearer k="v", ...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

/// Parse a Bearer challenge; `None` when the header holds none (or is over its bound).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    if header.len() > MAX_CHALLENGE_BYTES {
        return None;
    }
    let start = header.find(|c: char| !c.is_whitespace())?;
    let rest = &header[start..];
    let (scheme, mut params) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut challenge = Challenge::default();
    loop {
        params = params.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        let Some((key, after)) = params.split_once('=') else { break };
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            // A quoted-string: backslash escapes one character.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        match key.as_str() {
            "resource_metadata" => challenge.resource_metadata = Some(value),
            "scope" => challenge.scope = Some(value),
            "error" => challenge.error = Some(value),
            _ => {}
        }
        params = next;
    }
    Some(challenge)
}

/// How this client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP Basic with the client id and secret (`client_secret_basic`).
    SecretBasic,
    /// The client id and secret in the form body (`client_secret_post`).
    SecretPost,
    /// A JWT signed with the client's private key (`private_key_jwt`, RFC 7523).
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::SecretBasic => "client_secret_basic",
            ClientAuthMethod::SecretPost => "client_secret_post",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// A shared-secret method by name (`private_key_jwt` follows from a private key).
    pub fn parse(name: &str) -> Option<Self> {
        [ClientAuthMethod::SecretBasic, ClientAuthMethod::SecretPost].into_iter().find(|m| m.as_str() == name)
    }
}

/// What proves the client's identity at the token endpoint.
#[derive(Clone)]
pub enum ClientCredential {
    /// A shared secret (`client_secret_basic` or `client_secret_post`).
    Secret(Secret),
    /// A private key that signs a fresh client assertion per token request (`private_key_jwt`).
    PrivateKey(Arc<SigningKey>),
    /// None: a public client (the refresh-token grant of a client registered without a secret).
    Public,
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("Secret(<redacted>)"),
            ClientCredential::PrivateKey(k) => write!(f, "PrivateKey({:?}, <redacted>)", k.alg),
            ClientCredential::Public => f.write_str("Public"),
        }
    }
}

/// A private key for client assertions, with its algorithm and key id.
pub struct SigningKey {
    key: jsonwebtoken::EncodingKey,
    pub alg: jsonwebtoken::Algorithm,
    pub key_id: Option<String>,
}

impl SigningKey {
    /// A PEM private key (PKCS#8, or PKCS#1 for RSA; SEC1 for EC) for `alg`: `RS256` or `ES256`.
    pub fn from_pem(pem: &[u8], alg: &str, key_id: Option<String>) -> Result<Self, String> {
        let (key, alg) = match alg {
            "RS256" => (jsonwebtoken::EncodingKey::from_rsa_pem(pem), jsonwebtoken::Algorithm::RS256),
            "ES256" => (jsonwebtoken::EncodingKey::from_ec_pem(pem), jsonwebtoken::Algorithm::ES256),
            other => return Err(format!("unsupported signing algorithm {other:?}; expected \"RS256\" or \"ES256\"")),
        };
        // The key's own error text never holds key material; keep it short anyway.
        let key = key.map_err(|e| format!("not a PEM private key for {alg:?}: {}", printable(&e.to_string(), 120)))?;
        Ok(Self { key, alg, key_id })
    }

    /// A client assertion for one token request (RFC 7523 section 3): issued by and about the
    /// client, for the token endpoint, valid for a minute, never reused.
    fn assertion(&self, client_id: &str, audience: &str) -> Result<String, McpError> {
        let now = crate::clock::unix_seconds() as u64;
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "exp": now + 60,
        });
        let header = jsonwebtoken::Header { kid: self.key_id.clone(), ..jsonwebtoken::Header::new(self.alg) };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| auth_error(format!("cannot sign the client assertion: {e}")))
    }
}

/// How access tokens are obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Client credentials (machine to machine).
    ClientCredentials,
    /// A refresh token kept in `token_file` (written by `mcp-canary auth login`, rotated in
    /// place when the server issues a new one).
    RefreshToken { token_file: std::path::PathBuf },
}

/// What a protected target's client is configured with.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub client_id: String,
    pub credential: ClientCredential,
    pub grant: Grant,
    /// Scopes to ask for; empty: the challenge's, else the server's `scopes_supported`.
    pub scopes: Vec<String>,
    /// The authorization server's issuer, overriding discovery.
    pub authorization_server: Option<url::Url>,
    /// How the client authenticates at the token endpoint, as it was registered; `None`:
    /// `client_secret_basic` when the server lists it (or lists nothing), else
    /// `client_secret_post`.
    pub auth_method: Option<ClientAuthMethod>,
}

/// Protected Resource Metadata (RFC 9728), the fields used.
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// Authorization server metadata (RFC 8414 / OpenID discovery), the fields used.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// An authorization-code request in progress: the URL to open and what finishing it needs.
pub struct Authorization {
    /// Where the person (or the headless walk) goes.
    pub url: url::Url,
    pub redirect_uri: url::Url,
    state: oauth2::CsrfToken,
    verifier: oauth2::PkceCodeVerifier,
    server: Discovered,
    /// The client this login runs as (the configured one, or one registered just now).
    pub client_id: String,
    /// Registered by this login (dynamic client registration): stored beside the token.
    pub registered: bool,
}

/// The state of a token source, for metrics and `check`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenStatus {
    /// Unix time the current token expires at (`None`: no token, or no `expires_in`).
    pub expires_at: Option<f64>,
    /// Tokens obtained and token requests that failed, since the start.
    pub acquired: u64,
    pub failed: u64,
    /// The last failure's reason (bounded, printable, never a secret).
    pub last_error: Option<String>,
}

struct Token {
    access: Secret,
    acquired: Instant,
    /// When to get a new one.
    renew_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    server: Option<Discovered>,
    token: Option<Token>,
    /// Scopes added by `insufficient_scope` challenges.
    stepped_up: Vec<String>,
    step_ups: u32,
    /// The last challenge seen, for the discovery it may point to.
    challenge: Option<Challenge>,
    /// The server has refused a request without a token: its challenge (or its lack of one) is
    /// known, so discovery may fall back to the 2025-03-26 defaults.
    challenge_seen: bool,
}

#[derive(Clone)]
struct Discovered {
    metadata: ServerMetadata,
    resource_scopes: Vec<String>,
}

/// Access tokens for one MCP resource, obtained by client credentials and renewed before they
/// expire. Shared by every client of a target (`ClientConfig::auth`).
pub struct TokenSource {
    resource: url::Url,
    settings: OAuthSettings,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
    status: Mutex<TokenStatus>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("resource", &self.resource.as_str())
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

fn auth_error(reason: impl AsRef<str>) -> McpError {
    McpError::Auth(printable(reason.as_ref(), 300))
}

impl TokenSource {
    /// `resource`: the MCP endpoint (the `resource` every token is asked for). `http` must not
    /// follow redirects to another origin (`transport::http_client`).
    pub fn new(resource: url::Url, settings: OAuthSettings, http: reqwest::Client) -> Self {
        Self { resource, settings, http, state: Default::default(), status: Default::default() }
    }

    /// How this source obtains tokens.
    pub fn grant(&self) -> &Grant {
        &self.settings.grant
    }

    pub fn status(&self) -> TokenStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The access token to send: the cached one while it is fresh, else a new one. `None`:
    /// no metadata at the well-known URLs, so the request goes without a token first and its
    /// 401 challenge (`challenged`) says where the metadata is.
    pub async fn bearer(&self) -> Result<Option<Secret>, McpError> {
        let mut state = self.state.lock().await;
        if let Some(token) = &state.token
            && token.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(Some(token.access.clone()));
        }
        if state.server.is_none() {
            match self.discover(state.challenge.as_ref(), state.challenge_seen).await {
                Ok(Some(server)) => state.server = Some(server),
                Ok(None) => return Ok(None),
                Err(e) => {
                    self.failed(&e);
                    return Err(e);
                }
            }
        }
        let result = self.acquire(&mut state).await;
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok((_, expires_at)) => {
                status.acquired += 1;
                status.expires_at = *expires_at;
                status.last_error = None;
            }
            Err(e) => {
                status.failed += 1;
                status.last_error = Some(e.to_string());
                // The next attempt discovers again: the server's metadata may have moved.
                state.server = None;
            }
        }
        result.map(|(token, _)| Some(token))
    }

    fn failed(&self, e: &McpError) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.failed += 1;
        status.last_error = Some(e.to_string());
    }

    /// A request sent with `sent` was refused (`status` 401 or 403) with `challenge`. Returns
    /// whether a new token is worth one retry: after `insufficient_scope`, with the challenge's
    /// scopes added (at most [`MAX_STEP_UPS`] times); after a 401, when the refused token is at
    /// least [`MIN_TOKEN_AGE`] old (expired or revoked; a fresh token refused at once would be
    /// refused again, and asking for one per request would hammer the token endpoint). Any other
    /// 403 is the server's answer. A request sent without a token (`sent` is `None`) learns the
    /// challenge: worth a retry once a token can be had.
    pub async fn challenged(&self, sent: Option<&Secret>, status: u16, challenge: Challenge) -> bool {
        let mut state = self.state.lock().await;
        let insufficient_scope = challenge.error.as_deref() == Some("insufficient_scope");
        let scopes: Vec<String> =
            challenge.scope.iter().flat_map(|s| s.split_whitespace()).map(str::to_string).collect();
        if challenge.resource_metadata.is_some() || challenge.scope.is_some() {
            state.challenge = Some(challenge);
        }
        let Some(sent) = sent else {
            let first = !state.challenge_seen;
            state.challenge_seen = true;
            return first && status == 401;
        };
        let current = state.token.as_ref().filter(|t| &t.access == sent).map(|t| t.acquired.elapsed());
        let worth = if insufficient_scope {
            let mut added = false;
            if state.step_ups < MAX_STEP_UPS {
                state.step_ups += 1;
                for scope in scopes {
                    if !state.stepped_up.contains(&scope) {
                        state.stepped_up.push(scope);
                        added = true;
                    }
                }
            }
            added
        } else {
            status == 401 && current.is_some_and(|age| age >= MIN_TOKEN_AGE)
        };
        if worth && current.is_some() {
            state.token = None;
        }
        worth
    }

    async fn acquire(&self, state: &mut State) -> Result<(Secret, Option<f64>), McpError> {
        let Some(server) = state.server.clone() else { return Err(auth_error("not discovered")) };
        let mut scopes = if !self.settings.scopes.is_empty() {
            self.settings.scopes.clone()
        } else if let Some(scope) = state.challenge.as_ref().and_then(|c| c.scope.clone()) {
            scope.split_whitespace().map(str::to_string).collect()
        } else {
            server.resource_scopes.clone()
        };
        for s in &state.stepped_up {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let stored = match &self.settings.grant {
            Grant::RefreshToken { token_file } => Some(Stored::read(token_file)?),
            Grant::ClientCredentials => None,
        };
        let client_id =
            stored.as_ref().and_then(|s| s.client_id.clone()).unwrap_or_else(|| self.settings.client_id.clone());
        let (client, client_params) = self.token_client(&client_id, &server.metadata)?;
        let send = self.sender();
        let scopes: Vec<Scope> = scopes.into_iter().map(Scope::new).collect();
        let response = match &self.settings.grant {
            Grant::ClientCredentials => {
                let mut request = client
                    .exchange_client_credentials()
                    .add_extra_param("resource", self.resource.as_str())
                    .add_scopes(scopes);
                for (k, v) in &client_params {
                    request = request.add_extra_param(*k, v.clone());
                }
                request.request_async(&send).await.map_err(|e| token_error("client credentials", e))?
            }
            Grant::RefreshToken { token_file } => {
                let stored = stored.expect("read above for this grant");
                let refresh = oauth2::RefreshToken::new(stored.refresh_token.expose().to_string());
                let mut request = client
                    .exchange_refresh_token(&refresh)
                    .add_extra_param("resource", self.resource.as_str())
                    .add_scopes(scopes);
                for (k, v) in &client_params {
                    request = request.add_extra_param(*k, v.clone());
                }
                let response = request.request_async(&send).await.map_err(|e| token_error("refresh token", e))?;
                // A rotated refresh token replaces the stored one at once: the old one is spent.
                if let Some(next) = response.refresh_token()
                    && next.secret() != stored.refresh_token.expose()
                {
                    let rotated =
                        Stored { client_id: stored.client_id, refresh_token: Secret::new(next.secret().clone()) };
                    rotated
                        .write(token_file)
                        .map_err(|e| auth_error(format!("cannot store the rotated refresh token: {e}")))?;
                }
                response
            }
        };
        let access = Secret::new(response.access_token().secret().clone());
        check_token_claims(&access, &server.metadata.issuer, &self.resource)?;
        let now = Instant::now();
        let lifetime = response.expires_in();
        let renew_at = lifetime.map(|l| now + l.saturating_sub(RENEW_BEFORE.min(l / 10)));
        let expires_at = lifetime.map(|l| crate::clock::unix_seconds() + l.as_secs_f64());
        state.token = Some(Token { access: access.clone(), acquired: now, renew_at });
        Ok((access, expires_at))
    }

    /// Start the authorization-code flow with PKCE (`mcp-canary auth login`): discovery, then
    /// the URL a person (or `--oauth-headless`) opens. Scopes: the configured ones, else the
    /// challenge's, else the resource's; `offline_access` is added when the server offers it,
    /// so that it issues a refresh token.
    pub async fn authorization(&self, redirect_uri: url::Url) -> Result<Authorization, McpError> {
        let server = match self.discover(None, false).await? {
            Some(server) => server,
            None => {
                // No metadata at the well-known URLs: the server's 401 challenge says where.
                let resp = self
                    .http
                    .post(self.resource.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::ACCEPT, "application/json, text/event-stream")
                    .body("{}")
                    .timeout(AUTH_TIMEOUT)
                    .send()
                    .await
                    .map_err(|e| super::transport::classify_reqwest(e, AUTH_TIMEOUT))?;
                let challenge = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                self.discover(challenge.as_ref(), true)
                    .await?
                    .ok_or_else(|| auth_error("no authorization server found"))?
            }
        };
        let authorize = server
            .metadata
            .authorization_endpoint
            .clone()
            .ok_or_else(|| auth_error("the authorization server metadata has no authorization_endpoint"))?;
        let mut scopes =
            if self.settings.scopes.is_empty() { server.resource_scopes.clone() } else { self.settings.scopes.clone() };
        if server.metadata.scopes_supported.iter().any(|s| s == "offline_access")
            && !scopes.iter().any(|s| s == "offline_access")
        {
            scopes.push("offline_access".into());
        }
        let client_id = if self.settings.client_id.is_empty() {
            self.register(&server.metadata, &redirect_uri).await?
        } else {
            self.settings.client_id.clone()
        };
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let state = oauth2::CsrfToken::new_random();
        let mut url = url::Url::parse(&authorize).map_err(|_| auth_error("the authorization_endpoint is not a URL"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("state", state.secret())
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", challenge.method().as_str())
            .append_pair("resource", self.resource.as_str());
        if !scopes.is_empty() {
            url.query_pairs_mut().append_pair("scope", &scopes.join(" "));
        }
        let registered = self.settings.client_id.is_empty();
        Ok(Authorization { url, redirect_uri, state, verifier, server, client_id, registered })
    }

    /// Dynamic client registration (RFC 7591) of a public native client for this login's
    /// loopback redirect, for a target configured without a `client_id`.
    async fn register(&self, metadata: &ServerMetadata, redirect_uri: &url::Url) -> Result<String, McpError> {
        let endpoint = metadata.registration_endpoint.as_deref().ok_or_else(|| {
            auth_error("no client_id is configured and the authorization server offers no registration_endpoint")
        })?;
        check_secure(endpoint, "registration_endpoint")?;
        let body = serde_json::json!({
            "client_name": "mcp-canary",
            "application_type": "native",
            "redirect_uris": [redirect_uri.as_str()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        let resp = self
            .http
            .post(endpoint)
            .json(&body)
            .timeout(AUTH_TIMEOUT)
            .send()
            .await
            .map_err(|e| super::transport::classify_reqwest(e, AUTH_TIMEOUT))?;
        let status = resp.status();
        let answer: Value = serde_json::from_slice(&read_capped(resp).await?).unwrap_or(Value::Null);
        match answer.get("client_id").and_then(Value::as_str) {
            Some(id) if status.is_success() && !id.is_empty() => Ok(id.to_string()),
            _ => Err(auth_error(format!(
                "client registration refused ({}): {}",
                status.as_u16(),
                answer.get("error").and_then(Value::as_str).unwrap_or("no client_id")
            ))),
        }
    }

    /// Finish the flow from the redirect the browser (or the headless walk) ended at: check
    /// `state` and `iss`, exchange the code with the PKCE verifier, and store the refresh token
    /// in the target's `token_file`. Returns the access token's lifetime, if given.
    pub async fn complete(&self, auth: Authorization, landed: &url::Url) -> Result<Option<Duration>, McpError> {
        let Grant::RefreshToken { token_file } = &self.settings.grant else {
            return Err(auth_error("auth login needs grant = \"refresh_token\" and a token_file"));
        };
        let param = |name: &str| landed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        if let Some(error) = param("error") {
            return Err(auth_error(format!(
                "the authorization server refused: {error}{}",
                param("error_description").map(|d| format!(" ({d})")).unwrap_or_default()
            )));
        }
        if param("state").as_deref() != Some(auth.state.secret().as_str()) {
            return Err(auth_error("the redirect's state does not match this login (a forged or stale redirect)"));
        }
        // RFC 9207: a server that names itself must name the issuer it was discovered as.
        if let Some(iss) = param("iss")
            && iss.trim_end_matches('/') != auth.server.metadata.issuer.trim_end_matches('/')
        {
            return Err(auth_error("the redirect comes from another issuer"));
        }
        let code = param("code").ok_or_else(|| auth_error("the redirect carries no code"))?;
        let redirect = oauth2::RedirectUrl::new(auth.redirect_uri.to_string())
            .map_err(|_| auth_error("the redirect URI is not a URL"))?;
        let (client, client_params) = self.token_client(&auth.client_id, &auth.server.metadata)?;
        let client = client.set_redirect_uri(redirect);
        let mut request = client
            .exchange_code(oauth2::AuthorizationCode::new(code))
            .set_pkce_verifier(auth.verifier)
            .add_extra_param("resource", self.resource.as_str());
        for (k, v) in client_params {
            request = request.add_extra_param(k, v);
        }
        let send = self.sender();
        let response = request.request_async(&send).await.map_err(|e| token_error("authorization code", e))?;
        check_token_claims(
            &Secret::new(response.access_token().secret().clone()),
            &auth.server.metadata.issuer,
            &self.resource,
        )?;
        let refresh = response.refresh_token().ok_or_else(|| {
            auth_error("the authorization server issued no refresh token (does the client have the refresh_token grant, and offline_access?)")
        })?;
        let stored = Stored {
            client_id: auth.registered.then(|| auth.client_id.clone()),
            refresh_token: Secret::new(refresh.secret().clone()),
        };
        stored
            .write(token_file)
            .map_err(|e| auth_error(format!("cannot write the token file {}: {e}", token_file.display())))?;
        Ok(response.expires_in())
    }

    /// How this client authenticates at the token endpoint: a public client sends its id in the
    /// body (`none`), a private key signs an assertion (`private_key_jwt`), a secret goes as
    /// configured, else `client_secret_basic` when the server lists it (RFC 8414: an absent list
    /// means basic), else `client_secret_post`.
    fn auth_method(&self, metadata: &ServerMetadata) -> Result<ClientAuthMethod, McpError> {
        let methods = &metadata.token_endpoint_auth_methods_supported;
        match &self.settings.credential {
            ClientCredential::Public => Ok(ClientAuthMethod::SecretPost),
            ClientCredential::PrivateKey(_)
                if !methods.is_empty() && !methods.iter().any(|m| m == "private_key_jwt") =>
            {
                Err(auth_error(format!(
                    "the authorization server does not take private_key_jwt (it lists {})",
                    methods.join(", ")
                )))
            }
            ClientCredential::PrivateKey(_) => Ok(ClientAuthMethod::PrivateKeyJwt),
            ClientCredential::Secret(_) => match self.settings.auth_method {
                Some(method) => Ok(method),
                None if methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic") => {
                    Ok(ClientAuthMethod::SecretBasic)
                }
                None if methods.iter().any(|m| m == "client_secret_post") => Ok(ClientAuthMethod::SecretPost),
                None => Err(auth_error(format!(
                    "the authorization server takes none of client_secret_basic, client_secret_post (it lists {})",
                    methods.join(", ")
                ))),
            },
        }
    }

    /// The oauth2 crate's HTTP client for token requests: this source's client, bounded.
    fn sender(
        &self,
    ) -> impl Fn(oauth2::HttpRequest) -> futures::future::BoxFuture<'static, Result<oauth2::HttpResponse, std::io::Error>>
    {
        let http = self.http.clone();
        move |req| {
            let http = http.clone();
            Box::pin(async move { send_bounded(&http, req).await })
        }
    }

    /// The token endpoint's client, authenticated as `client_id`, with the form parameters its
    /// authentication adds (a fresh client assertion for `private_key_jwt`). Every grant and the
    /// code exchange go through it, so a credential only ever goes to a secure token endpoint.
    fn token_client(
        &self,
        client_id: &str,
        metadata: &ServerMetadata,
    ) -> Result<(TokenClient, ClientParams), McpError> {
        let method = self.auth_method(metadata)?;
        check_secure(&metadata.token_endpoint, "token_endpoint")?;
        let token_url = TokenUrl::new(metadata.token_endpoint.clone())
            .map_err(|_| auth_error("the token_endpoint is not a URL"))?;
        let client = oauth2::basic::BasicClient::new(ClientId::new(client_id.to_string()))
            .set_token_uri(token_url)
            .set_auth_type(match method {
                ClientAuthMethod::SecretBasic => AuthType::BasicAuth,
                ClientAuthMethod::SecretPost | ClientAuthMethod::PrivateKeyJwt => AuthType::RequestBody,
            });
        Ok(match &self.settings.credential {
            ClientCredential::Secret(secret) => {
                (client.set_client_secret(ClientSecret::new(secret.expose().to_string())), Vec::new())
            }
            ClientCredential::PrivateKey(key) => (
                client,
                vec![
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string()),
                    ("client_assertion", key.assertion(client_id, &metadata.token_endpoint)?),
                ],
            ),
            ClientCredential::Public => (client, Vec::new()),
        })
    }

    /// Protected resource metadata, then the authorization server's metadata. `None`: none
    /// found before the server's challenge is known.
    async fn discover(
        &self,
        challenge: Option<&Challenge>,
        challenge_seen: bool,
    ) -> Result<Option<Discovered>, McpError> {
        let (issuer, resource_scopes) = match &self.settings.authorization_server {
            Some(issuer) => (issuer.to_string(), Vec::new()),
            None => match self.resource_metadata(challenge).await? {
                Some(prm) => {
                    let issuer =
                        prm.authorization_servers.first().cloned().ok_or_else(|| {
                            auth_error("the protected resource metadata names no authorization server")
                        })?;
                    (issuer, prm.scopes_supported)
                }
                None if !challenge_seen => return Ok(None),
                // 2025-03-26: the MCP server's origin is its own authorization server.
                None => (origin(&self.resource), Vec::new()),
            },
        };
        let metadata = self.server_metadata(&issuer).await?;
        Ok(Some(Discovered { metadata, resource_scopes }))
    }

    async fn resource_metadata(&self, challenge: Option<&Challenge>) -> Result<Option<ResourceMetadata>, McpError> {
        let mut candidates = Vec::new();
        if let Some(url) = challenge.and_then(|c| c.resource_metadata.as_deref()) {
            candidates.push(url.to_string());
        }
        let path = self.resource.path().trim_end_matches('/');
        let base = origin(&self.resource);
        if !path.is_empty() {
            candidates.push(format!("{base}/.well-known/oauth-protected-resource{path}"));
        }
        candidates.push(format!("{base}/.well-known/oauth-protected-resource"));
        for url in candidates {
            let Some(prm) = fetch_json::<ResourceMetadata>(&self.http, &url).await? else { continue };
            if !same_resource(&prm.resource, &self.resource) {
                return Err(auth_error(format!(
                    "the protected resource metadata is for another resource ({})",
                    printable(&prm.resource, 120)
                )));
            }
            return Ok(Some(prm));
        }
        Ok(None)
    }

    async fn server_metadata(&self, issuer: &str) -> Result<ServerMetadata, McpError> {
        let url = url::Url::parse(issuer).map_err(|_| auth_error("the authorization server is not a URL"))?;
        let base = origin(&url);
        let path = url.path().trim_end_matches('/');
        let mut candidates = vec![
            format!("{base}/.well-known/oauth-authorization-server{path}"),
            format!("{base}/.well-known/openid-configuration{path}"),
        ];
        if !path.is_empty() {
            candidates.push(format!("{base}{path}/.well-known/openid-configuration"));
        }
        for candidate in candidates {
            let Some(metadata) = fetch_json::<ServerMetadata>(&self.http, &candidate).await? else { continue };
            if metadata.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
                return Err(auth_error(format!(
                    "the authorization server metadata names another issuer ({})",
                    printable(&metadata.issuer, 120)
                )));
            }
            return Ok(metadata);
        }
        // 2025-03-26 servers without metadata: the default endpoints on the issuer's origin.
        Ok(ServerMetadata {
            issuer: issuer.to_string(),
            token_endpoint: format!("{base}/token"),
            authorization_endpoint: Some(format!("{base}/authorize")),
            registration_endpoint: Some(format!("{base}/register")),
            token_endpoint_auth_methods_supported: Vec::new(),
            scopes_supported: Vec::new(),
        })
    }
}

/// Credentials go only to an `https` endpoint, or to `http` on this host (loopback: test and
/// sidecar authorization servers), as the MCP authorization specification requires.
fn check_secure(endpoint: &str, what: &str) -> Result<(), McpError> {
    let url = url::Url::parse(endpoint).map_err(|_| auth_error(format!("the {what} is not a URL")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(auth_error(format!("the {what} is not https: no credential is sent over it"))),
    }
}

/// An oauth2 client with its token endpoint set.
type TokenClient = oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// Form parameters a client's authentication adds to a token request.
type ClientParams = Vec<(&'static str, String)>;

type TokenError = oauth2::RequestTokenError<std::io::Error, oauth2::basic::BasicErrorResponse>;

/// A refused or failed token request, as an `auth` error naming the grant (never a secret).
fn token_error(grant: &str, e: TokenError) -> McpError {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => auth_error(format!(
            "the token endpoint refused the {grant}: {}{}",
            r.error(),
            r.error_description().map(|d| format!(" ({d})")).unwrap_or_default()
        )),
        oauth2::RequestTokenError::Request(e) => auth_error(format!("token request failed: {e}")),
        oauth2::RequestTokenError::Parse(e, _) => auth_error(format!("token response unreadable: {e}")),
        oauth2::RequestTokenError::Other(e) => auth_error(format!("token request failed: {e}")),
    }
}

/// What `auth login` stores: the refresh token, and the client id when the client was
/// registered dynamically (then the file is JSON; a plain file holds the token alone).
pub struct Stored {
    pub client_id: Option<String>,
    pub refresh_token: Secret,
}

impl Stored {
    fn read(path: &std::path::Path) -> Result<Self, McpError> {
        let token = read_refresh_token(path)?;
        if !token.expose().starts_with('{') {
            return Ok(Stored { client_id: None, refresh_token: token });
        }
        #[derive(Deserialize)]
        struct File {
            client_id: String,
            refresh_token: String,
        }
        let file: File = serde_json::from_str(token.expose())
            .map_err(|_| auth_error(format!("the token file {} is not what auth login writes", path.display())))?;
        Ok(Stored { client_id: Some(file.client_id), refresh_token: Secret::new(file.refresh_token) })
    }

    fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        match &self.client_id {
            None => write_secret_file(path, self.refresh_token.expose()),
            Some(id) => write_secret_file(
                path,
                &serde_json::json!({"client_id": id, "refresh_token": self.refresh_token.expose()}).to_string(),
            ),
        }
    }
}

/// The refresh token stored in `path` (bounded, trimmed).
fn read_refresh_token(path: &std::path::Path) -> Result<Secret, McpError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        auth_error(format!(
            "cannot read the refresh token file {}: {e} (mcp-canary auth login writes it)",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() || token.len() > 16 * 1024 {
        return Err(auth_error(format!(
            "the refresh token file {} holds no token: run mcp-canary auth login",
            path.display()
        )));
    }
    Ok(Secret::new(token.to_string()))
}

/// Write a secret to `path` atomically (a temporary file beside it, mode 0600, renamed over it),
/// so a crash never leaves half a token and no other user ever reads it.
pub fn write_secret_file(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other("not a file path"))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(secret.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Hops a headless authorization walk follows before it gives up.
const MAX_HEADLESS_HOPS: usize = 12;

/// Walk an authorization request without a person (`auth login --oauth-headless`, for test
/// authorization servers that approve on their own): GET `url` and each redirect, carrying the
/// server's cookies, until a redirect leads to `redirect_uri`; returns that URL. Only the
/// authorization server's origin is visited; bounded in hops and time.
pub async fn walk_headless(url: &url::Url, redirect_uri: &url::Url) -> Result<url::Url, McpError> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(AUTH_TIMEOUT)
        .user_agent(concat!("mcp-canary/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| auth_error(format!("cannot build an HTTP client: {e}")))?;
    let server = origin(url);
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut next = url.clone();
    for _ in 0..MAX_HEADLESS_HOPS {
        if origin(&next) == origin(redirect_uri) && next.path() == redirect_uri.path() {
            return Ok(next);
        }
        if origin(&next) != server {
            return Err(auth_error("the authorization walk left the authorization server for another origin"));
        }
        let mut request = http.get(next.clone());
        if !cookies.is_empty() {
            let header = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            request = request.header(reqwest::header::COOKIE, header);
        }
        let resp = request.send().await.map_err(|e| super::transport::classify_reqwest(e, AUTH_TIMEOUT))?;
        for set in resp.headers().get_all(reqwest::header::SET_COOKIE).iter().take(32) {
            let Some((name, rest)) = set.to_str().unwrap_or_default().split_once('=') else { continue };
            let value = rest.split(';').next().unwrap_or_default().trim().to_string();
            cookies.retain(|(k, _)| k != name.trim());
            if !value.is_empty() && cookies.len() < 32 {
                cookies.push((name.trim().to_string(), value));
            }
        }
        if !resp.status().is_redirection() {
            return Err(auth_error(format!(
                "the authorization server answered {} without a redirect: it needs a person (run without --oauth-headless)",
                resp.status().as_u16()
            )));
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| auth_error("a redirect without Location"))?;
        next = next.join(location).map_err(|_| auth_error("a redirect to an unparsable Location"))?;
    }
    Err(auth_error(format!("no redirect back within {MAX_HEADLESS_HOPS} hops")))
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether a metadata `resource` names this MCP endpoint (RFC 9728 section 3.3; a trailing
/// slash apart).
fn same_resource(declared: &str, resource: &url::Url) -> bool {
    let Ok(declared) = url::Url::parse(declared) else { return false };
    origin(&declared) == origin(resource)
        && declared.path().trim_end_matches('/') == resource.path().trim_end_matches('/')
}

/// GET a JSON document within the bounds; `None` when it is not there (404, 405, or not JSON
/// of that shape).
async fn fetch_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<Option<T>, McpError> {
    let request = http.get(url).header(reqwest::header::ACCEPT, "application/json").timeout(AUTH_TIMEOUT);
    let resp = match request.send().await {
        Ok(r) => r,
        Err(e) => return Err(super::transport::classify_reqwest(e, AUTH_TIMEOUT)),
    };
    if !resp.status().is_success() {
        return Ok(None);
    }
    let body = read_capped(resp).await?;
    Ok(serde_json::from_slice(&body).ok())
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, McpError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| super::transport::classify_reqwest(e, AUTH_TIMEOUT))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(McpError::BodyTooLarge { limit: MAX_DOCUMENT_BYTES });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The oauth2 crate's HTTP client: our reqwest client (no cross-origin redirect), bounded.
async fn send_bounded(
    http: &reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, std::io::Error> {
    let (parts, body) = req.into_parts();
    let resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .timeout(AUTH_TIMEOUT)
        .send()
        .await
        .map_err(|e| std::io::Error::other(e.without_url().to_string()))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = read_capped(resp).await.map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut out = http::Response::builder().status(status);
    if let Some(h) = out.headers_mut() {
        *h = headers;
    }
    out.body(body).map_err(std::io::Error::other)
}

/// The claims of a token that is a JWT (read, not verified: the canary only looks at what a
/// token says about itself); `None` for an opaque token.
fn jwt_claims(token: &Secret) -> Option<Value> {
    let mut parts = token.expose().split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    if payload.len() > 64 * 1024 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
}

/// When a token that is a JWT expires (its `exp`, Unix seconds); `None` for an opaque token or
/// one without `exp`. For static bearer tokens: the credential expiry the alerts warn about.
pub fn jwt_expiry(token: &Secret) -> Option<f64> {
    jwt_claims(token)?.get("exp")?.as_f64().filter(|e| e.is_finite() && *e > 0.0)
}

/// A JWT access token names its issuer and audience: refuse one minted for another server. An
/// opaque token carries neither and is taken as it is.
fn check_token_claims(token: &Secret, issuer: &str, resource: &url::Url) -> Result<(), McpError> {
    let Some(claims) = jwt_claims(token) else { return Ok(()) };
    if let Some(iss) = claims.get("iss").and_then(Value::as_str)
        && iss.trim_end_matches('/') != issuer.trim_end_matches('/')
    {
        return Err(auth_error(format!("the access token was issued by another issuer ({})", printable(iss, 120))));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    if !audiences.iter().any(|a| same_resource(a, resource)) {
        return Err(auth_error("the access token is for another resource (its aud does not name this server)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_with_quotes_and_escapes() {
        let c = parse_challenge(
            r#"Bearer resource_metadata="http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:read""#,
        )
        .unwrap();
        assert_eq!(c.resource_metadata.as_deref(), Some("http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp"));
        assert_eq!(c.scope.as_deref(), Some("mcp:tools mcp:read"));
        let c = parse_challenge(r#"bearer error="insufficient_scope", scope="a\"b", error_description=x"#).unwrap();
        assert_eq!((c.error.as_deref(), c.scope.as_deref()), (Some("insufficient_scope"), Some("a\"b")));
        assert_eq!(parse_challenge("Bearer").unwrap(), Challenge::default());
        assert!(parse_challenge(r#"Basic realm="x""#).is_none());
        assert!(parse_challenge(&format!("Bearer scope=\"{}\"", "a".repeat(MAX_CHALLENGE_BYTES))).is_none());
        // Unterminated quotes and stray commas never panic.
        assert!(parse_challenge(r#"Bearer scope="abc"#).is_some());
        assert!(parse_challenge("Bearer ,,,=,=\"").is_some());
    }

    #[test]
    fn a_static_jwt_tells_its_expiry_an_opaque_token_none() {
        assert_eq!(jwt_expiry(&jwt(serde_json::json!({"exp": 1_800_000_000}))), Some(1.8e9));
        assert_eq!(jwt_expiry(&jwt(serde_json::json!({"iss": "x"}))), None);
        assert_eq!(jwt_expiry(&jwt(serde_json::json!({"exp": "soon"}))), None);
        assert_eq!(jwt_expiry(&Secret::new("opaque".into())), None);
        assert_eq!(jwt_expiry(&Secret::new("a.b.c".into())), None);
    }

    #[test]
    fn credentials_go_only_over_https_or_loopback() {
        assert!(check_secure("https://auth.example.com/token", "token_endpoint").is_ok());
        assert!(check_secure("http://127.0.0.1:9000/token", "token_endpoint").is_ok());
        assert!(check_secure("http://[::1]:9000/token", "token_endpoint").is_ok());
        assert!(check_secure("http://localhost/token", "token_endpoint").is_ok());
        assert!(check_secure("http://auth.example.com/token", "token_endpoint").is_err());
        assert!(check_secure("http://10.0.0.1/token", "token_endpoint").is_err());
        assert!(check_secure("ftp://127.0.0.1/token", "token_endpoint").is_err());
    }

    #[test]
    fn resources_match_by_origin_and_path() {
        let mcp: url::Url = "http://127.0.0.1:8080/mcp".parse().unwrap();
        assert!(same_resource("http://127.0.0.1:8080/mcp", &mcp));
        assert!(same_resource("http://127.0.0.1:8080/mcp/", &mcp));
        assert!(!same_resource("http://127.0.0.1:8081/mcp", &mcp));
        assert!(!same_resource("http://127.0.0.1:8080/other", &mcp));
        assert!(!same_resource("not a url", &mcp));
    }

    fn jwt(claims: Value) -> Secret {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        Secret::new(format!("{}.{}.sig", b64(br#"{"alg":"RS256"}"#), b64(claims.to_string().as_bytes())))
    }

    #[test]
    fn tokens_for_another_issuer_or_resource_are_refused() {
        let mcp: url::Url = "http://127.0.0.1:8080/mcp".parse().unwrap();
        let iss = "http://127.0.0.1:9000";
        let ok = jwt(serde_json::json!({"iss": iss, "aud": "http://127.0.0.1:8080/mcp"}));
        assert!(check_token_claims(&ok, iss, &mcp).is_ok());
        let list = jwt(serde_json::json!({"iss": iss, "aud": ["x", "http://127.0.0.1:8080/mcp"]}));
        assert!(check_token_claims(&list, iss, &mcp).is_ok());
        let other_iss = jwt(serde_json::json!({"iss": "http://evil", "aud": "http://127.0.0.1:8080/mcp"}));
        assert!(
            matches!(check_token_claims(&other_iss, iss, &mcp), Err(McpError::Auth(m)) if m.contains("another issuer"))
        );
        let other_aud = jwt(serde_json::json!({"iss": iss, "aud": "http://127.0.0.1:8081/mcp"}));
        assert!(
            matches!(check_token_claims(&other_aud, iss, &mcp), Err(McpError::Auth(m)) if m.contains("another resource"))
        );
        assert!(check_token_claims(&Secret::new("opaque-token".into()), iss, &mcp).is_ok());
    }
}
