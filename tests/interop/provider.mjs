// A third-party OAuth 2.0 server for calyx-client's interop test: panva's oidc-provider with
// the client-credentials grant and RFC 8707 resource indicators, issuing JWT access tokens.
// Prints "listening on PORT" once it accepts connections.
import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: 'interop-client',
      client_secret: 'interop-secret-that-is-long-enough-for-hs256-0123456789',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    features: {
      clientCredentials: { enabled: true },
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
