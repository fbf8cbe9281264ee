//! The surface's protection from `[server]`: TLS on the port, credentials on the routes.

use std::sync::Arc;

use axum::Router;

use super::auth::Auth;
use super::tls::Tls;
use crate::config::{ConfigError, ServerSecurity};

/// TLS and credentials for a [`super::Surface`]; the default is plain HTTP, open (the demo and
/// one-shot `run --metrics-listen`).
#[derive(Default, Clone)]
pub struct Secured {
    pub tls: Option<Arc<Tls>>,
    pub auth: Option<Arc<Auth>>,
}

impl Secured {
    /// Load the certificate files now: an error names the key.
    pub fn new(security: &ServerSecurity) -> Result<Self, ConfigError> {
        let tls = security.tls.clone().map(Tls::new).transpose()?.map(Arc::new);
        if security.auth.is_enabled() && tls.is_none() {
            tracing::warn!("Credentials are configured without [server.tls]: they cross the network in clear");
        }
        Ok(Self { tls, auth: Auth::new(&security.auth) })
    }

    /// The URL scheme clients use.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    pub(super) fn protect(&self, router: Router) -> Router {
        match &self.auth {
            Some(auth) => Arc::clone(auth).protect(router),
            None => router,
        }
    }
}
