// A test OAuth 2.1 / OpenID authorization server: npm `oidc-provider` (installed by
// scripts/install-test-servers.sh into .cache/npm/oidc-provider), loopback only, headless.
//
//   node tests/auth/provider.mjs PORT [KEYS_DIR]
//
// PORT 0 takes a free port. When ready it prints one line:
//   oidc-provider listening on http://127.0.0.1:PORT
// and the issuer is exactly that URL. See docs/auth-testing.md for the clients and the knobs.
//
// Environment:
//   OIDC_ACCESS_TOKEN_TTL   access-token lifetime in seconds (default 300)
//   OIDC_REFRESH_TOKEN_TTL  refresh-token lifetime in seconds (default 86400)
//   OIDC_ACCESS_TOKEN_ALG   signing algorithm of JWT access tokens: RS256 (default) or ES256
//   OIDC_KEYS_DIR           where the private_key_jwt client's private keys are written as PKCS#8
//                           PEM (client-rs256.pem, client-es256.pem); the second argument wins
//   OIDC_TEST_ACCOUNT       the account the headless interaction logs in (default canary-user)

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, '.cache/npm/oidc-provider/package.json'));
const { default: Provider, errors } = await import(pathToFileURL(require.resolve('oidc-provider')).href);

const port = Number(process.argv[2] ?? '0');
const keysDir = process.argv[3] ?? process.env.OIDC_KEYS_DIR;
const seconds = (name, fallback) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
};
const accessTokenTtl = seconds('OIDC_ACCESS_TOKEN_TTL', 300);
const refreshTokenTtl = seconds('OIDC_REFRESH_TOKEN_TTL', 86400);
const accessTokenAlg = process.env.OIDC_ACCESS_TOKEN_ALG ?? 'RS256';
if (!['RS256', 'ES256'].includes(accessTokenAlg)) throw new Error('OIDC_ACCESS_TOKEN_ALG must be RS256 or ES256');
const account = process.env.OIDC_TEST_ACCOUNT ?? 'canary-user';

// The scopes an MCP resource offers.
const MCP_SCOPES = 'mcp:tools mcp:read';

const keyPair = (kind) =>
  kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = (key, kid, alg) => ({ ...key.export({ format: 'jwk' }), kid, alg, use: 'sig' });

// The provider's own signing keys (ID tokens, JWT access tokens), new at every start.
const signing = [jwk(keyPair('rsa').privateKey, 'provider-rs256', 'RS256'), jwk(keyPair('ec').privateKey, 'provider-es256', 'ES256')];

// The private_key_jwt client's keys: the public halves are its registered JWKS, the private
// halves are written for the tests to sign client assertions with.
const clientRsa = keyPair('rsa');
const clientEc = keyPair('ec');
if (keysDir) {
  mkdirSync(keysDir, { recursive: true });
  writeFileSync(join(keysDir, 'client-rs256.pem'), clientRsa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(join(keysDir, 'client-es256.pem'), clientEc.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
}

const clients = [
  {
    client_id: 'canary-basic',
    client_secret: 'canary-basic-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: MCP_SCOPES,
  },
  {
    client_id: 'canary-post',
    client_secret: 'canary-post-secret',
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: MCP_SCOPES,
  },
  {
    client_id: 'canary-jwt',
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: MCP_SCOPES,
    jwks: {
      keys: [
        { ...clientRsa.publicKey.export({ format: 'jwk' }), kid: 'canary-jwt-rs256', alg: 'RS256', use: 'sig' },
        { ...clientEc.publicKey.export({ format: 'jwk' }), kid: 'canary-jwt-es256', alg: 'ES256', use: 'sig' },
      ],
    },
  },
  {
    // A public native client: authorization code + PKCE (S256), any loopback port (RFC 8252).
    client_id: 'canary-public',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: `openid offline_access ${MCP_SCOPES}`,
  },
];

// A resource indicator the provider accepts: an MCP endpoint on a loopback address.
const isMcpResource = (indicator) => {
  try {
    const url = new URL(indicator);
    return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && url.pathname === '/mcp'
      && !url.search && !url.hash;
  } catch {
    return false;
  }
};

const listener = createServer();
await new Promise((resolve, reject) => {
  listener.once('error', reject);
  listener.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${listener.address().port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: signing },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', ...MCP_SCOPES.split(' ')],
  claims: { openid: ['sub'] },
  findAccount: (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      // A refresh without `resource` keeps the granted one.
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (!isMcpResource(indicator)) throw new errors.InvalidTarget();
        return {
          scope: MCP_SCOPES,
          audience: indicator,
          accessTokenTTL: accessTokenTtl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: accessTokenAlg } },
        };
      },
    },
  },
  // Every client allowed the refresh_token grant gets one (MCP clients need not ask for openid
  // or offline_access); each refresh rotates it.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTokenTtl,
    ClientCredentials: accessTokenTtl,
    RefreshToken: refreshTokenTtl,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 3600,
    Grant: refreshTokenTtl,
    IdToken: 3600,
  },
});

// The headless interaction: log the fixed test account in, then grant whatever is asked.
async function interact(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  const consent = details.grantId ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
listener.on('request', (req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
    interact(req, res).catch((error) => {
      console.error('interaction failed:', error);
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${error.message}\n`);
    });
    return;
  }
  callback(req, res);
});

provider.on('server_error', (_ctx, error) => console.error('server_error:', error));
console.log(`oidc-provider listening on ${issuer}`);
