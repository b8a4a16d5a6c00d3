// panva's openid-client (pinned in package-lock.json), used as any customer would use it,
// against a running Calyx: DPoP-bound client-credentials tokens (RFC 9449), through a server
// that demands nonces, and private_key_jwt client authentication (RFC 7523). Run by
// crates/cli/tests/openid_client.rs, which starts Calyx and provisions the clients.
//
//   node calyx.mjs keygen   prints {"private_jwk":...,"jwks":...}: a fresh P-256 key for
//                           private_key_jwt and the JWK Set to register for it
//   node calyx.mjs          runs the flows its environment names (below) and prints one JSON
//                           line of what it observed; exits non-zero on any failure
//
// CALYX_ISSUER, CALYX_AUDIENCE, CALYX_SCOPE: the server and what to ask for.
// CALYX_CLIENT_ID, CALYX_CLIENT_SECRET: a client_secret client (the DPoP flow, plus
//   introspection of the bound token).
// CALYX_PKJWT_CLIENT_ID, CALYX_PKJWT_PRIVATE_JWK: a private_key_jwt client and its private
//   key as a JWK (a token without DPoP, then one with, then introspection of the bound one).
import * as client from 'openid-client';
import * as jose from 'jose';

if (process.argv[2] === 'keygen') {
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const pub = await jose.exportJWK(publicKey);
  const kid = await jose.calculateJwkThumbprint(pub);
  const private_jwk = { ...(await jose.exportJWK(privateKey)), kid, alg: 'ES256' };
  const jwks = { keys: [{ ...pub, kid, alg: 'ES256', use: 'sig' }] };
  console.log(JSON.stringify({ private_jwk, jwks }));
  process.exit(0);
}

// On any failure: the error (with openid-client's cause: the server's answer) and the token
// requests made so far, on stderr; exit status 1.
process.on('uncaughtException', (error) => {
  console.error(error);
  console.error(JSON.stringify({ token_requests: requests }));
  process.exit(1);
});

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

function check(condition, what, observed) {
  if (!condition) throw new Error(`${what}; observed: ${JSON.stringify(observed)}`);
}

// Every request openid-client makes goes through here, so the report says what crossed the
// wire: each token request's status, error and DPoP-Nonce, and the client assertion it sent.
const requests = [];
async function recordingFetch(url, options) {
  const response = await fetch(url, options);
  const { pathname } = new URL(url);
  if (pathname.endsWith('/oauth/token')) {
    const body = new URLSearchParams(options.body);
    const sent = new Headers(options.headers);
    const wire = await response.clone().json().catch(() => null);
    const assertion = body.get('client_assertion');
    requests.push({
      status: response.status,
      error: wire?.error,
      token_type: wire?.token_type,
      dpop_proof: sent.has('dpop'),
      dpop_nonce_sent: sent.has('dpop') ? 'nonce' in jose.decodeJwt(sent.get('dpop')) : false,
      dpop_nonce_header: response.headers.has('dpop-nonce'),
      client_assertion: assertion
        ? { header: jose.decodeProtectedHeader(assertion), claims: jose.decodeJwt(assertion) }
        : undefined,
    });
  }
  return response;
}

const issuer = new URL(env('CALYX_ISSUER'));
const audience = env('CALYX_AUDIENCE');
const scope = process.env.CALYX_SCOPE;
const params = { audience, ...(scope ? { scope } : {}) };

async function discover(clientId, metadata, auth, algorithm) {
  return client.discovery(issuer, clientId, metadata, auth, {
    algorithm,
    execute: [client.allowInsecureRequests],
    [client.customFetch]: recordingFetch,
  });
}

// The token's claims after jose verifies it with the JWKS the metadata names.
async function verified(config, accessToken) {
  const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
  const { payload } = await jose.jwtVerify(accessToken, jwks, {
    issuer: config.serverMetadata().issuer,
    audience,
  });
  return payload;
}

// One client-credentials token, with `dpop` (a DPoP handle) or without; what it looked like,
// and how many use_dpop_nonce challenges openid-client answered on the way.
async function token(config, clientId, dpop, keyPair) {
  const before = requests.length;
  const tokens = await client.clientCredentialsGrant(config, params, dpop ? { DPoP: dpop } : {});
  const mine = requests.slice(before);
  const claims = await verified(config, tokens.access_token);
  const seen = {
    token_type: tokens.token_type,
    wire_token_type: mine.at(-1)?.token_type,
    client_id: claims.client_id,
    sub: claims.sub,
    scope: tokens.scope,
    cnf: claims.cnf ?? null,
    nonce_challenges: mine.filter((r) => r.error === 'use_dpop_nonce').length,
    requests: mine.length,
  };
  check(claims.client_id === clientId, 'the token names the client', seen);
  if (dpop) {
    const thumbprint = await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey));
    seen.thumbprint = thumbprint;
    check(tokens.token_type === 'dpop', 'a DPoP token_type', seen);
    check(claims.cnf?.jkt === thumbprint, 'cnf.jkt is the proof key thumbprint', seen);
  } else {
    check(tokens.token_type === 'bearer', 'a Bearer token_type', seen);
    check(claims.cnf === undefined, 'an unbound token has no cnf', seen);
  }
  return { seen, tokens };
}

const report = { issuer: issuer.href };

if (process.env.CALYX_CLIENT_ID) {
  const clientId = env('CALYX_CLIENT_ID');
  // Discovery as openid-client does it by default (OpenID Connect's well-known path); the
  // client's secret is sent as client_secret_post, openid-client's default.
  const config = await discover(clientId, env('CALYX_CLIENT_SECRET'));
  const keyPair = await client.randomDPoPKeyPair();
  const dpop = client.getDPoPHandle(config, keyPair);
  const first = await token(config, clientId, dpop, keyPair);
  // The same handle again: a nonce it was given is reused, so no further challenge is expected.
  const second = await token(config, clientId, dpop, keyPair);
  const introspected = await client.tokenIntrospection(config, first.tokens.access_token);
  check(introspected.active === true, 'introspection calls the token active', introspected);
  check(
    introspected.cnf?.jkt === first.seen.thumbprint,
    'introspection gives the token cnf.jkt',
    introspected,
  );
  report.dpop = {
    discovery: 'oidc',
    dpop_signing_alg_values_supported: config.serverMetadata().dpop_signing_alg_values_supported,
    first: first.seen,
    second: second.seen,
    introspection: { active: introspected.active, cnf: introspected.cnf },
  };
}

if (process.env.CALYX_PKJWT_CLIENT_ID) {
  const clientId = env('CALYX_PKJWT_CLIENT_ID');
  const jwk = JSON.parse(env('CALYX_PKJWT_PRIVATE_JWK'));
  const key = await jose.importJWK(jwk, jwk.alg ?? 'ES256');
  // RFC 8414 discovery this time, and the key's kid in each assertion's header.
  const config = await discover(clientId, {}, client.PrivateKeyJwt({ key, kid: jwk.kid }), 'oauth2');
  const metadata = config.serverMetadata();
  const assertion = (before) => requests.slice(before).find((r) => r.client_assertion)?.client_assertion;

  let before = requests.length;
  const bearer = await token(config, clientId);
  bearer.seen.assertion = assertion(before);

  const keyPair = await client.randomDPoPKeyPair();
  before = requests.length;
  const bound = await token(config, clientId, client.getDPoPHandle(config, keyPair), keyPair);
  bound.seen.assertion = assertion(before);
  // On a nonce challenge openid-client retries with a new assertion: its jti is single use.
  const jtis = requests.slice(before).map((r) => r.client_assertion?.claims.jti);
  check(new Set(jtis).size === jtis.length, 'each attempt has a fresh assertion jti', jtis);
  bound.seen.assertion_jtis = jtis.length;
  // Introspection authenticated the same way (a confidential client may introspect).
  const introspected = await client.tokenIntrospection(config, bound.tokens.access_token);
  check(
    introspected.active === true && introspected.cnf?.jkt === bound.seen.thumbprint,
    'introspection calls the bound token active and gives its cnf.jkt',
    introspected,
  );

  report.private_key_jwt = {
    discovery: 'oauth2',
    token_endpoint_auth_methods_supported: metadata.token_endpoint_auth_methods_supported,
    token_endpoint_auth_signing_alg_values_supported:
      metadata.token_endpoint_auth_signing_alg_values_supported,
    bearer: bearer.seen,
    dpop: bound.seen,
    introspection: { active: introspected.active, cnf: introspected.cnf },
  };
}

check(report.dpop || report.private_key_jwt, 'a flow was named in the environment', report);
report.token_requests = requests;
console.log(JSON.stringify(report));
