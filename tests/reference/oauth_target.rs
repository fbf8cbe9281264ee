//! The reference target as an OAuth-protected MCP server (`--oauth-issuer`) against a real
//! authorization server (npm oidc-provider, tests/auth/provider.mjs): its protected resource
//! metadata, the 401/403 challenges, tokens of every grant the provider offers (client
//! credentials with secret basic, secret post and private_key_jwt; authorization code + PKCE,
//! refresh, revocation), and the tokens it must refuse (another resource, another issuer,
//! expired, lacking a scope).
use std::time::Duration;

use mcp_canary::reference::{OAuthOptions, TargetOptions};
use serde_json::{Value, json};

use crate::oidc::{self, OidcProvider, SecretClient};
use crate::target_util::{self, Reply, Target, V2025};

/// How a token request authenticates the client.
enum ClientAuth<'a> {
    Basic(SecretClient),
    Post(SecretClient),
    /// `private_key_jwt`: the signed assertion.
    Assertion(&'a str),
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(target_util::REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// POST the token endpoint; returns (status, JSON body).
async fn token_request(provider: &OidcProvider, auth: ClientAuth<'_>, params: &[(&str, &str)]) -> (u16, Value) {
    let mut pairs = params.to_vec();
    let mut request = http().post(provider.token_endpoint());
    match auth {
        ClientAuth::Basic(client) => request = request.basic_auth(client.id, Some(client.secret)),
        ClientAuth::Post(client) => pairs.extend([("client_id", client.id), ("client_secret", client.secret)]),
        ClientAuth::Assertion(assertion) => pairs.extend([
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
        ]),
    }
    let response = request
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(oidc::form(&pairs))
        .send()
        .await
        .expect("token request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A client-credentials access token for `resource` with `scope`; panics unless issued.
async fn client_token(provider: &OidcProvider, auth: ClientAuth<'_>, resource: &str, scope: &str) -> String {
    let (status, body) = token_request(
        provider,
        auth,
        &[("grant_type", "client_credentials"), ("resource", resource), ("scope", scope)],
    )
    .await;
    assert_eq!(status, 200, "token request: {body}\n{}", provider.log_text());
    assert_eq!(body["token_type"], "Bearer", "{body}");
    body["access_token"].as_str().expect("access_token").to_string()
}

/// A target protected by `provider` requiring `scopes`, with `tool_scopes` for step-up.
async fn protected_target(provider: &OidcProvider, scopes: &[&str], tool_scopes: &[(&str, &str)]) -> Target {
    let oauth = OAuthOptions {
        issuer: provider.issuer.clone(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        tool_scopes: tool_scopes.iter().map(|(t, s)| (t.to_string(), s.to_string())).collect(),
        resource: None,
    };
    target_util::start_with(TargetOptions { oauth: Some(oauth), ..Default::default() }).await
}

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": V2025, "capabilities": {}, "clientInfo": {"name": "oauth-test", "version": "0"}},
    })
}

/// POST `body` to the target's MCP endpoint with `token` (if any) and the session's headers.
async fn post(target: &Target, token: Option<&str>, session: Option<&str>, body: &Value) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer.as_str()));
    }
    if let Some(session) = session {
        headers.extend([("Mcp-Session-Id", session), ("MCP-Protocol-Version", V2025)]);
    }
    target.post(&headers, body).await.expect("POST /mcp")
}

/// `WWW-Authenticate` of an answer to an MCP POST (the target_util reply drops headers).
async fn challenge(target: &Target, authorization: Option<&str>, body: &Value) -> (u16, String) {
    let mut request = target.client.post(target.mcp_url()).header("Accept", "application/json, text/event-stream");
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.json(body).send().await.expect("POST /mcp");
    let header = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    (response.status().as_u16(), header.unwrap_or_default())
}

/// initialize + notifications/initialized + tools/list with `token`; returns the tool names.
async fn session_tools(target: &Target, token: &str) -> Vec<String> {
    let reply = post(target, Some(token), None, &initialize()).await;
    assert_eq!(reply.status, 200, "initialize: {reply:?}");
    let session = reply.session_id.clone().expect("Mcp-Session-Id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let reply = post(target, Some(token), Some(&session), &initialized).await;
    assert_eq!(reply.status, 202, "initialized: {reply:?}");
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let reply = post(target, Some(token), Some(&session), &list).await;
    assert_eq!(reply.status, 200, "tools/list: {reply:?}");
    let tools = reply.response(1)["result"]["tools"].as_array().cloned().unwrap_or_default();
    tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect()
}

/// A stateless (2026-07-28) `tools/call` of `tool` with `token`.
async fn call_tool(target: &Target, token: &str, tool: &str) -> Reply {
    let mut params = json!({"name": tool, "arguments": {"message": "hi"}});
    params["_meta"] = target_util::meta_2026();
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    let bearer = format!("Bearer {token}");
    let headers = [
        ("Authorization", bearer.as_str()),
        ("MCP-Protocol-Version", target_util::V2026),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", tool),
    ];
    target.post(&headers, &body).await.expect("tools/call")
}

fn metadata_url(target: &Target) -> String {
    format!("{}/.well-known/oauth-protected-resource/mcp", target.handle.base_url())
}

#[tokio::test]
async fn discovery_documents_are_served() {
    let provider = OidcProvider::start().await;
    let target = protected_target(&provider, &["mcp:read"], &[("echo", "mcp:tools")]).await;
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let (status, body) = target.get_path(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let document: Value = serde_json::from_str(&body).expect("metadata JSON");
        assert_eq!(document["resource"], target.mcp_url(), "{path}: {document}");
        assert_eq!(document["authorization_servers"], json!([provider.issuer]), "{document}");
        assert_eq!(document["scopes_supported"], json!(["mcp:read", "mcp:tools"]), "{document}");
        assert_eq!(document["bearer_methods_supported"], json!(["header"]), "{document}");
    }

    // The issuer's own metadata, at the RFC 8414 path, with what an MCP client needs.
    let response = http()
        .get(format!("{}/.well-known/oauth-authorization-server", provider.issuer))
        .send()
        .await
        .expect("AS metadata");
    assert_eq!(response.status(), 200);
    let metadata: Value = response.json().await.expect("AS metadata JSON");
    assert_eq!(metadata["issuer"], provider.issuer);
    assert_eq!(metadata["token_endpoint"], provider.token_endpoint());
    assert_eq!(metadata["code_challenge_methods_supported"], json!(["S256"]), "{metadata}");
    let grants = metadata["grant_types_supported"].as_array().cloned().unwrap_or_default();
    for grant in ["client_credentials", "authorization_code", "refresh_token"] {
        assert!(grants.contains(&json!(grant)), "{grant} missing: {metadata}");
    }
    let methods = metadata["token_endpoint_auth_methods_supported"].as_array().cloned().unwrap_or_default();
    for method in ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"] {
        assert!(methods.contains(&json!(method)), "{method} missing: {metadata}");
    }

    // Dynamic client registration of a public loopback client.
    let registration = metadata["registration_endpoint"].as_str().expect("registration_endpoint");
    let response = http()
        .post(registration)
        .json(&json!({
            "application_type": "native",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }))
        .send()
        .await
        .expect("registration");
    assert_eq!(response.status(), 201);
    let client: Value = response.json().await.expect("registration JSON");
    assert!(client["client_id"].as_str().is_some_and(|id| !id.is_empty()), "{client}");
}

#[tokio::test]
async fn missing_or_invalid_token_gets_401_with_the_challenge() {
    let provider = OidcProvider::start().await;
    let target = protected_target(&provider, &["mcp:read"], &[]).await;
    let prm = metadata_url(&target);

    let (status, header) = challenge(&target, None, &initialize()).await;
    assert_eq!(status, 401);
    assert_eq!(header, format!("Bearer resource_metadata=\"{prm}\", scope=\"mcp:read\""));

    let (status, header) = challenge(&target, Some("Basic Y2FuYXJ5OnNlY3JldA=="), &initialize()).await;
    assert_eq!(
        (status, header.as_str()),
        (401, format!("Bearer resource_metadata=\"{prm}\", scope=\"mcp:read\"").as_str())
    );

    let (status, header) = challenge(&target, Some("Bearer not-a-jwt"), &initialize()).await;
    assert_eq!(status, 401);
    assert_eq!(header, format!("Bearer error=\"invalid_token\", resource_metadata=\"{prm}\", scope=\"mcp:read\""));

    // Unprotected paths stay open.
    assert_eq!(target.get_path("/healthz").await.0, 200);
}

#[tokio::test]
async fn client_credentials_tokens_open_the_endpoint() {
    let provider = OidcProvider::start().await;
    let target = protected_target(&provider, &["mcp:read"], &[]).await;
    let resource = target.mcp_url();
    for auth in [ClientAuth::Basic(oidc::BASIC_CLIENT), ClientAuth::Post(oidc::POST_CLIENT)] {
        let token = client_token(&provider, auth, &resource, "mcp:read mcp:tools").await;
        let tools = session_tools(&target, &token).await;
        assert!(tools.iter().any(|t| t == "echo"), "{tools:?}");
        let reply = call_tool(&target, &token, "echo").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(target_util::first_text(&reply.response(7)["result"]), "hi", "{reply:?}");
    }
}

#[tokio::test]
async fn es256_access_tokens_are_accepted() {
    let provider = OidcProvider::start_with(&[("OIDC_ACCESS_TOKEN_ALG", "ES256")]).await;
    let target = protected_target(&provider, &[], &[]).await;
    let token = client_token(&provider, ClientAuth::Basic(oidc::BASIC_CLIENT), &target.mcp_url(), "mcp:read").await;
    let header = jsonwebtoken::decode_header(&token).expect("JWT header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert!(session_tools(&target, &token).await.iter().any(|t| t == "echo"));
}

#[tokio::test]
async fn token_for_another_resource_or_issuer_is_refused() {
    let provider = OidcProvider::start().await;
    let target = protected_target(&provider, &[], &[]).await;
    let invalid = format!("Bearer error=\"invalid_token\", resource_metadata=\"{}\"", metadata_url(&target));

    // Another MCP resource of the same issuer: its `aud` is not this target.
    let other = format!("http://127.0.0.1:{}/mcp", target.handle.local_addr().port().wrapping_add(1).max(1));
    let token = client_token(&provider, ClientAuth::Basic(oidc::BASIC_CLIENT), &other, "mcp:read").await;
    let (status, header) = challenge(&target, Some(&format!("Bearer {token}")), &initialize()).await;
    assert_eq!((status, header.as_str()), (401, invalid.as_str()));

    // The right resource, from another authorization server.
    let stranger = OidcProvider::start().await;
    let token = client_token(&stranger, ClientAuth::Basic(oidc::BASIC_CLIENT), &target.mcp_url(), "mcp:read").await;
    let (status, header) = challenge(&target, Some(&format!("Bearer {token}")), &initialize()).await;
    assert_eq!((status, header.as_str()), (401, invalid.as_str()));

    // The control: a token for this resource from this issuer.
    let token = client_token(&provider, ClientAuth::Basic(oidc::BASIC_CLIENT), &target.mcp_url(), "mcp:read").await;
    assert_eq!(challenge(&target, Some(&format!("Bearer {token}")), &initialize()).await.0, 200);
}

#[tokio::test]
async fn expired_token_is_refused() {
    let provider = OidcProvider::start_with(&[("OIDC_ACCESS_TOKEN_TTL", "3")]).await;
    let target = protected_target(&provider, &[], &[]).await;
    let (status, body) = token_request(
        &provider,
        ClientAuth::Post(oidc::POST_CLIENT),
        &[("grant_type", "client_credentials"), ("resource", &target.mcp_url()), ("scope", "mcp:read")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 3, "{body}");
    let token = body["access_token"].as_str().expect("access_token").to_string();
    assert_eq!(challenge(&target, Some(&format!("Bearer {token}")), &initialize()).await.0, 200);

    // `exp` is whole seconds and checked without leeway: expired within TTL + 1 s of issue.
    tokio::time::sleep(Duration::from_millis(4_100)).await;
    let (status, header) = challenge(&target, Some(&format!("Bearer {token}")), &initialize()).await;
    assert_eq!(status, 401);
    assert!(header.starts_with("Bearer error=\"invalid_token\""), "{header}");
}

#[tokio::test]
async fn missing_scope_gets_403_naming_the_scopes() {
    let provider = OidcProvider::start().await;
    let target = protected_target(&provider, &["mcp:read"], &[("echo", "mcp:tools")]).await;
    let prm = metadata_url(&target);
    let resource = target.mcp_url();

    // Lacking the scope every request needs.
    let tools_only = client_token(&provider, ClientAuth::Basic(oidc::BASIC_CLIENT), &resource, "mcp:tools").await;
    let (status, header) = challenge(&target, Some(&format!("Bearer {tools_only}")), &initialize()).await;
    assert_eq!(status, 403);
    assert_eq!(header, format!("Bearer error=\"insufficient_scope\", scope=\"mcp:read\", resource_metadata=\"{prm}\""));

    // Enough for the session and `fail`, not for `echo` (step-up).
    let read = client_token(&provider, ClientAuth::Basic(oidc::BASIC_CLIENT), &resource, "mcp:read").await;
    assert!(session_tools(&target, &read).await.iter().any(|t| t == "echo"));
    assert_eq!(call_tool(&target, &read, "fail").await.status, 200);
    let mut echo = json!({"name": "echo", "arguments": {"message": "hi"}});
    echo["_meta"] = target_util::meta_2026();
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": echo});
    let (status, header) = challenge(&target, Some(&format!("Bearer {read}")), &call).await;
    assert_eq!(status, 403);
    assert_eq!(
        header,
        format!("Bearer error=\"insufficient_scope\", scope=\"mcp:read mcp:tools\", resource_metadata=\"{prm}\"")
    );

    // With the union of scopes the call goes through.
    let both = client_token(&provider, ClientAuth::Basic(oidc::BASIC_CLIENT), &resource, "mcp:read mcp:tools").await;
    let reply = call_tool(&target, &both, "echo").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(target_util::first_text(&reply.response(7)["result"]), "hi");
}

#[tokio::test]
async fn authorization_code_with_pkce_refresh_and_revocation() {
    let provider = OidcProvider::start().await;
    let target = protected_target(&provider, &["mcp:tools"], &[]).await;
    let resource = target.mcp_url();
    // The redirect is never followed to its end; the port is held so nothing else answers there.
    let callback = std::net::TcpListener::bind("127.0.0.1:0").expect("bind callback port");
    let redirect_uri = format!("http://{}{}", callback.local_addr().unwrap(), oidc::PUBLIC_REDIRECT_PATH);
    let pkce = oidc::Pkce::new();
    let authorize = |challenge: Option<&str>| {
        let mut url = url::Url::parse(&provider.endpoint("auth")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", oidc::PUBLIC_CLIENT_ID)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", "mcp:tools offline_access")
            .append_pair("resource", &resource)
            .append_pair("state", "state-1");
        if let Some(challenge) = challenge {
            url.query_pairs_mut().append_pair("code_challenge", challenge).append_pair("code_challenge_method", "S256");
        }
        url.to_string()
    };

    // PKCE is required: without a challenge the redirect carries an error, not a code.
    let refused = oidc::follow_authorization(&http(), &authorize(None), &redirect_uri).await.expect("redirect");
    let query: std::collections::HashMap<_, _> = refused.query_pairs().into_owned().collect();
    assert_eq!(query.get("error").map(String::as_str), Some("invalid_request"), "{refused}");
    assert!(!query.contains_key("code"), "{refused}");

    let landed = oidc::follow_authorization(&http(), &authorize(Some(&pkce.challenge)), &redirect_uri)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", provider.log_text()));
    let query: std::collections::HashMap<_, _> = landed.query_pairs().into_owned().collect();
    assert_eq!(query.get("state").map(String::as_str), Some("state-1"), "{landed}");
    assert_eq!(query.get("iss"), Some(&provider.issuer), "{landed}");
    let code = query.get("code").expect("code in the redirect").clone();

    let (status, tokens) = public_token(
        &provider,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &pkce.verifier),
            ("redirect_uri", &redirect_uri),
            ("resource", &resource),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}\n{}", provider.log_text());
    let access = tokens["access_token"].as_str().expect("access_token");
    let refresh = tokens["refresh_token"].as_str().expect("refresh_token").to_string();
    assert!(session_tools(&target, access).await.iter().any(|t| t == "echo"));
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(access).expect("claims");
    assert_eq!(claims["sub"], oidc::TEST_ACCOUNT, "{claims}");

    // Refresh: a new access token for the same resource and a rotated refresh token.
    let (status, refreshed) =
        public_token(&provider, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 200, "{refreshed}");
    let rotated = refreshed["refresh_token"].as_str().expect("rotated refresh_token").to_string();
    assert_ne!(rotated, refresh);
    let access = refreshed["access_token"].as_str().expect("access_token");
    assert_eq!(challenge(&target, Some(&format!("Bearer {access}")), &initialize()).await.0, 200);

    // Revocation: the rotated refresh token no longer refreshes.
    let response = http()
        .post(provider.endpoint("token/revocation"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(oidc::form(&[
            ("client_id", oidc::PUBLIC_CLIENT_ID),
            ("token", &rotated),
            ("token_type_hint", "refresh_token"),
        ]))
        .send()
        .await
        .expect("revocation");
    assert_eq!(response.status(), 200);
    let (status, body) = public_token(&provider, &[("grant_type", "refresh_token"), ("refresh_token", &rotated)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

/// A token request of the public client (no client authentication).
async fn public_token(provider: &OidcProvider, pairs: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("client_id", oidc::PUBLIC_CLIENT_ID)];
    all.extend_from_slice(pairs);
    let response = http()
        .post(provider.token_endpoint())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(oidc::form(&all))
        .send()
        .await
        .expect("token request");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// A `private_key_jwt` client assertion for the token endpoint, signed with `key` as `alg`.
fn assertion(
    provider: &OidcProvider,
    alg: jsonwebtoken::Algorithm,
    kid: &str,
    key: &jsonwebtoken::EncodingKey,
) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": oidc::JWT_CLIENT_ID,
        "sub": oidc::JWT_CLIENT_ID,
        "aud": provider.issuer,
        "iat": now,
        "exp": now + 60,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, &claims, key).expect("sign assertion")
}

#[tokio::test]
async fn private_key_jwt_assertions_get_tokens() {
    use jsonwebtoken::{Algorithm, EncodingKey};
    let provider = OidcProvider::start().await;
    let target = protected_target(&provider, &["mcp:read"], &[]).await;
    let rsa = EncodingKey::from_rsa_pem(&std::fs::read(provider.rs256_key()).expect("RS256 key")).expect("RSA PEM");
    let ec = EncodingKey::from_ec_pem(&std::fs::read(provider.es256_key()).expect("ES256 key")).expect("EC PEM");
    for (alg, kid, key) in
        [(Algorithm::RS256, oidc::JWT_CLIENT_RS256_KID, &rsa), (Algorithm::ES256, oidc::JWT_CLIENT_ES256_KID, &ec)]
    {
        let signed = assertion(&provider, alg, kid, key);
        let token = client_token(&provider, ClientAuth::Assertion(&signed), &target.mcp_url(), "mcp:read").await;
        assert!(session_tools(&target, &token).await.iter().any(|t| t == "echo"), "{alg:?}");
    }

    // A key the client never registered is refused.
    let stranger = rcgen::KeyPair::generate().expect("P-256 key");
    let stranger = EncodingKey::from_ec_pem(stranger.serialize_pem().as_bytes()).expect("EC PEM");
    let signed = assertion(&provider, Algorithm::ES256, oidc::JWT_CLIENT_ES256_KID, &stranger);
    let (status, body) = token_request(
        &provider,
        ClientAuth::Assertion(&signed),
        &[("grant_type", "client_credentials"), ("resource", &target.mcp_url()), ("scope", "mcp:read")],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
}

/// An issuer of our own: OpenID discovery only (RFC 8414's path is 404), a JWKS the test swaps,
/// and a count of JWKS fetches.
struct FakeIssuer {
    issuer: String,
    jwks: std::sync::Arc<std::sync::Mutex<Value>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _stop: tokio_util::sync::DropGuard,
}

/// A fresh P-256 key as (signing key, public JWK with `kid`).
fn es256_key(kid: &str) -> (jsonwebtoken::EncodingKey, Value) {
    let pem = rcgen::KeyPair::generate().expect("P-256 key").serialize_pem();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC PEM");
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256).expect("JWK");
    jwk.common.key_id = Some(kid.to_string());
    (key, serde_json::to_value(jwk).expect("JWK JSON"))
}

async fn fake_issuer(keys: Vec<Value>) -> FakeIssuer {
    use axum::{Json, Router, routing::get};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let jwks = std::sync::Arc::new(std::sync::Mutex::new(json!({ "keys": keys })));
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let metadata =
        json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks"), "token_endpoint": format!("{issuer}/token")});
    let (served, counted) = (jwks.clone(), fetches.clone());
    let app =
        Router::new().route("/.well-known/openid-configuration", get(move || async move { Json(metadata) })).route(
            "/jwks",
            get(move || async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Json(served.lock().unwrap().clone())
            }),
        );
    let stop = tokio_util::sync::CancellationToken::new();
    let cancelled = stop.clone().cancelled_owned();
    tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(cancelled).await });
    FakeIssuer { issuer, jwks, fetches, _stop: stop.drop_guard() }
}

/// An access token of `issuer` for `resource`, signed with `key` under `kid`.
fn signed_token(issuer: &str, resource: &str, kid: &str, key: &jsonwebtoken::EncodingKey) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"iss": issuer, "aud": resource, "sub": "s", "iat": now, "exp": now + 60, "scope": "mcp:read"});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, &claims, key).expect("sign")
}

#[tokio::test]
async fn openid_discovery_fallback_and_bounded_jwks_refetch() {
    let (first, first_jwk) = es256_key("first");
    let issuer = fake_issuer(vec![first_jwk.clone()]).await;
    let options = OAuthOptions { issuer: issuer.issuer.clone(), ..Default::default() };
    let target = target_util::start_with(TargetOptions { oauth: Some(options), ..Default::default() }).await;
    let fetches = || issuer.fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(fetches(), 1, "one JWKS fetch at start");
    let bearer = |token: String| format!("Bearer {token}");

    let token = signed_token(&issuer.issuer, &target.mcp_url(), "first", &first);
    assert_eq!(challenge(&target, Some(&bearer(token)), &initialize()).await.0, 200);
    assert_eq!(fetches(), 1, "a known kid fetches nothing");

    // The issuer rotates to a second key: the first token with its kid refetches the JWKS.
    let (second, second_jwk) = es256_key("second");
    *issuer.jwks.lock().unwrap() = json!({"keys": [first_jwk, second_jwk]});
    let token = signed_token(&issuer.issuer, &target.mcp_url(), "second", &second);
    assert_eq!(challenge(&target, Some(&bearer(token)), &initialize()).await.0, 200);
    assert_eq!(fetches(), 2);

    // Unknown kids within the next 10 s are refused without another fetch.
    let (third, _) = es256_key("third");
    for _ in 0..5 {
        let token = signed_token(&issuer.issuer, &target.mcp_url(), "third", &third);
        assert_eq!(challenge(&target, Some(&bearer(token)), &initialize()).await.0, 401);
    }
    assert_eq!(fetches(), 2, "refetches are bounded");

    // A token signed with a key of another kid's name is refused (signature).
    let token = signed_token(&issuer.issuer, &target.mcp_url(), "first", &third);
    assert_eq!(challenge(&target, Some(&bearer(token)), &initialize()).await.0, 401);
}

#[tokio::test]
async fn target_command_takes_the_oauth_flags() {
    use tokio::io::AsyncBufReadExt;
    let provider = OidcProvider::start().await;
    let resource = "http://127.0.0.1:1/mcp";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-canary"))
        .args(["target", "--listen", "127.0.0.1:0", "--oauth-issuer", &provider.issuer])
        .args(["--oauth-scope", "mcp:read", "--oauth-tool-scope", "echo=mcp:tools", "--oauth-resource", resource])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn mcp-canary target");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("mcp-canary target listening on ") {
                return url.to_string();
            }
        }
        panic!("the target exited before listening");
    })
    .await
    .expect("target listening within 30 s");
    let base = url.trim_end_matches("/mcp");
    let document: Value = http()
        .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .expect("PRM")
        .json()
        .await
        .expect("PRM JSON");
    assert_eq!(document["resource"], resource, "{document}");
    assert_eq!(document["authorization_servers"], json!([provider.issuer]), "{document}");
    assert_eq!(document["scopes_supported"], json!(["mcp:read", "mcp:tools"]), "{document}");
    // Tokens are for the resource named by the flag, not the listening address.
    let token = client_token(&provider, ClientAuth::Basic(oidc::BASIC_CLIENT), resource, "mcp:read").await;
    let response = http()
        .post(&url)
        .header("Accept", "application/json, text/event-stream")
        .header("Authorization", format!("Bearer {token}"))
        .json(&initialize())
        .send()
        .await
        .expect("initialize");
    assert_eq!(response.status(), 200);

    // An issuer that does not answer stops the target at start, naming the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-canary"))
            .args(["target", "--listen", "127.0.0.1:0", "--oauth-issuer", &format!("http://{closed}")])
            .output(),
    )
    .await
    .expect("target exits")
    .expect("run target");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("http://{closed}/.well-known/oauth-authorization-server")), "{stderr}");
}
