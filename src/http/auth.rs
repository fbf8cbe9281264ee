//! Credentials on the surface (`server.basic_auth_users`, `server.bearer_token_file`): every
//! path but [`OPEN_PATHS`] answers 401 without them, unknown paths included (so a scan learns
//! nothing).
//!
//! Like the exporter-toolkit's, a password that verified is remembered (a digest of it, never
//! the password), so a scrape every 15 s costs one bcrypt check, not one per scrape; a wrong one
//! is checked every time, one check at a time, so a flood of guesses holds at most one core. An
//! unknown user is checked against a configured hash all the same, so the time does not tell
//! which users exist.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{HttpAuth, Secret};
use crate::telemetry::events::{self, HttpRefusal};

/// Paths open without credentials: the kubelet's probes carry none.
pub const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];
/// Verified passwords remembered at most; the set is emptied when full (only a right password
/// adds to it, so this is reached only by many users or passwords changing).
pub const MAX_REMEMBERED: usize = 64;
/// The realm of the `WWW-Authenticate` challenges.
pub const REALM: &str = "mcp-canary";

/// The credentials a request must carry.
pub struct Auth {
    basic: BTreeMap<String, Secret>,
    bearer: Option<Secret>,
    /// SHA-256 of user, password and hash of the passwords that verified.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt check at a time.
    bcrypt: tokio::sync::Mutex<()>,
}

impl Auth {
    /// `None` when no credentials are configured (the surface is open).
    pub fn new(config: &HttpAuth) -> Option<Arc<Self>> {
        config.is_enabled().then(|| {
            Arc::new(Self {
                basic: config.basic_users.clone(),
                bearer: config.bearer_token.clone(),
                verified: Mutex::new(HashSet::new()),
                bcrypt: tokio::sync::Mutex::new(()),
            })
        })
    }

    /// Put every route of `router` but [`OPEN_PATHS`] behind these credentials.
    pub fn protect(self: Arc<Self>, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self, check))
    }

    /// Whether `headers` carry configured credentials.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<(), HttpRefusal> {
        let value = headers.get(header::AUTHORIZATION).ok_or(HttpRefusal::NoCredentials)?;
        let value = value.to_str().map_err(|_| HttpRefusal::BadCredentials)?;
        let (scheme, credentials) = value.split_once(' ').ok_or(HttpRefusal::BadCredentials)?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic") && !self.basic.is_empty() {
            self.check_basic(credentials).await
        } else if scheme.eq_ignore_ascii_case("bearer")
            && let Some(token) = &self.bearer
        {
            match bool::from(token.expose().as_bytes().ct_eq(credentials.as_bytes())) {
                true => Ok(()),
                false => Err(HttpRefusal::BadCredentials),
            }
        } else {
            Err(HttpRefusal::NoCredentials)
        }
    }

    async fn check_basic(&self, credentials: &str) -> Result<(), HttpRefusal> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(HttpRefusal::BadCredentials)?;
        let (user, password) = decoded.split_once(':').ok_or(HttpRefusal::BadCredentials)?;
        let known = self.basic.get(user);
        // An unknown user costs the same check against a configured hash, then fails.
        let Some(hash) = known.or_else(|| self.basic.values().next()) else {
            return Err(HttpRefusal::BadCredentials);
        };
        let digest = digest(user, password, hash.expose());
        if known.is_some() && self.remembered().contains(&digest) {
            return Ok(());
        }
        let verified = {
            let _one_at_a_time = self.bcrypt.lock().await;
            let (password, hash) = (password.to_string(), hash.clone());
            tokio::task::spawn_blocking(move || bcrypt::verify(password, hash.expose()).unwrap_or(false))
                .await
                .unwrap_or(false)
        };
        if !(verified && known.is_some()) {
            return Err(HttpRefusal::BadCredentials);
        }
        let mut remembered = self.remembered();
        if remembered.len() >= MAX_REMEMBERED {
            remembered.clear();
        }
        remembered.insert(digest);
        Ok(())
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// 401 with a challenge per configured scheme.
    fn refuse(&self) -> Response {
        let mut response = (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response();
        let challenges = [(!self.basic.is_empty()).then_some("Basic"), self.bearer.is_some().then_some("Bearer")];
        for scheme in challenges.into_iter().flatten() {
            let value = HeaderValue::from_str(&format!("{scheme} realm=\"{REALM}\"")).expect("a valid header value");
            response.headers_mut().append(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Length-prefixed, so no two (user, password, hash) triples share an input.
fn digest(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut sha = Sha256::new();
    for part in [user, password, hash] {
        sha.update((part.len() as u64).to_be_bytes());
        sha.update(part.as_bytes());
    }
    sha.finalize().into()
}

async fn check(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    match auth.authenticate(request.headers()).await {
        Ok(()) => next.run(request).await,
        Err(reason) => {
            events::http_request_refused(reason);
            tracing::debug!(path = request.uri().path(), reason = reason.label(), "HTTP request refused: credentials");
            auth.refuse()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(users: &[(&str, &str)], bearer: Option<&str>) -> Arc<Auth> {
        let config = HttpAuth {
            basic_users: users.iter().map(|(u, p)| (u.to_string(), Secret::new(bcrypt::hash(p, 4).unwrap()))).collect(),
            bearer_token: bearer.map(|t| Secret::new(t.into())),
        };
        Auth::new(&config).unwrap()
    }

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        with(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))))
    }

    #[test]
    fn nothing_configured_is_open() {
        assert!(Auth::new(&HttpAuth::default()).is_none());
    }

    #[tokio::test]
    async fn basic_credentials_are_checked_and_remembered() {
        let auth = auth(&[("prometheus", "right"), ("other", "pw")], None);
        assert_eq!(auth.authenticate(&HeaderMap::new()).await, Err(HttpRefusal::NoCredentials));
        assert_eq!(auth.authenticate(&with("Bearer right")).await, Err(HttpRefusal::NoCredentials), "not configured");
        assert_eq!(auth.authenticate(&basic("prometheus", "wrong")).await, Err(HttpRefusal::BadCredentials));
        assert_eq!(auth.authenticate(&basic("nobody", "right")).await, Err(HttpRefusal::BadCredentials));
        assert_eq!(auth.authenticate(&basic("other", "right")).await, Err(HttpRefusal::BadCredentials));
        assert_eq!(auth.authenticate(&with("Basic %%%")).await, Err(HttpRefusal::BadCredentials));
        assert!(auth.remembered().is_empty(), "a refusal is not remembered");
        assert_eq!(auth.authenticate(&basic("prometheus", "right")).await, Ok(()));
        assert_eq!(auth.remembered().len(), 1);
        assert_eq!(
            auth.authenticate(&with(&format!(
                "basic {}",
                base64::engine::general_purpose::STANDARD.encode("prometheus:right")
            )))
            .await,
            Ok(())
        );
        assert_eq!(auth.remembered().len(), 1, "the second check came from memory");
        assert_eq!(auth.authenticate(&basic("prometheus", "right2")).await, Err(HttpRefusal::BadCredentials));
    }

    #[tokio::test]
    async fn bearer_tokens_are_compared_whole() {
        let auth = auth(&[], Some("s3cret"));
        assert_eq!(auth.authenticate(&with("Bearer s3cret")).await, Ok(()));
        for wrong in ["Bearer s3cre", "Bearer s3cret2", "Bearer ", "Bearer S3CRET"] {
            assert_eq!(auth.authenticate(&with(wrong)).await, Err(HttpRefusal::BadCredentials), "{wrong}");
        }
        assert_eq!(auth.authenticate(&basic("u", "s3cret")).await, Err(HttpRefusal::NoCredentials));
        let challenges: Vec<_> = auth.refuse().headers().get_all(header::WWW_AUTHENTICATE).iter().cloned().collect();
        assert_eq!(challenges, ["Bearer realm=\"mcp-canary\""]);
    }

    #[test]
    fn both_schemes_are_challenged() {
        let auth = auth(&[("u", "p")], Some("t"));
        let response = auth.refuse();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<_> = response.headers().get_all(header::WWW_AUTHENTICATE).iter().cloned().collect();
        assert_eq!(challenges, ["Basic realm=\"mcp-canary\"", "Bearer realm=\"mcp-canary\""]);
    }
}
