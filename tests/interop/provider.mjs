// A third-party OAuth 2.0 server for calyx-client's interop tests: panva's oidc-provider with
// the client-credentials grant and RFC 8707 resource indicators, issuing JWT access tokens, and
// DPoP (RFC 9449) with server nonces required in every proof (so the client's nonce retry runs).
// Prints "listening on PORT" once it accepts connections.
//
// Clients: "interop-client" (client_secret_basic) always; "interop-pkjwt" (private_key_jwt,
// DPoP-bound tokens only) when INTEROP_CLIENT_JWKS holds its public JWK Set as JSON — the test
// makes the key and passes the JWKS in.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const clients = [{
  client_id: 'interop-client',
  client_secret: 'interop-secret-that-is-long-enough-for-hs256-0123456789',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
}];
if (process.env.INTEROP_CLIENT_JWKS) {
  clients.push({
    client_id: 'interop-pkjwt',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: JSON.parse(process.env.INTEROP_CLIENT_JWKS),
    dpop_bound_access_tokens: true,
  });
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients,
    features: {
      clientCredentials: { enabled: true },
      dPoP: {
        enabled: true,
        nonceSecret: crypto.randomBytes(32),
        // Only proofs need nonces: a request without a DPoP header is not affected.
        requireNonce: () => true,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'https://api.interop.test/',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'read:consumers',
          audience: 'https://api.interop.test/',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
        }),
      },
    },
  });
  server.on('request', provider.callback());
  console.log(`listening on ${port}`);
});
