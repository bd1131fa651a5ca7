// A real OpenID Connect / OAuth2 provider (panva/oidc-provider) for Sealpost's tests.
//
// Started by crates/testkit/src/oidc.rs with its configuration as JSON in the
// environment variable SEALPOST_OIDC_CONFIG:
//   { "port": 12345, "issuer": "http://127.0.0.1:12345",
//     "accounts": ["alice@sealpost.test"],
//     "client_id": "sealpost-desktop",
//     "introspection_client_id": "dovecot", "introspection_client_secret": "...",
//     "access_token_ttl": 120 }
//
// The desktop client is a native public client (RFC 8252: loopback redirect on any
// port, PKCE required). Dovecot is a confidential client that may only introspect.
// Interactions (login and consent) are finished automatically for the account named in
// the authorization request's `login_hint`: the test plays the browser, not a person.
// Prints "listening" on stdout once it accepts connections.

import http from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(process.env.SEALPOST_OIDC_CONFIG);
const accounts = new Set(config.accounts);

const provider = new Provider(config.issuer, {
  clients: [
    {
      client_id: config.client_id,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
    {
      client_id: config.introspection_client_id,
      client_secret: config.introspection_client_secret,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [],
      grant_types: [],
      response_types: [],
    },
  ],
  async findAccount(ctx, id) {
    if (!accounts.has(id)) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, email_verified: true };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  scopes: ['openid', 'email', 'offline_access'],
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  ttl: {
    AccessToken: config.access_token_ttl,
    AuthorizationCode: 60,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    RefreshToken: 3600,
    Session: 3600,
  },
  async issueRefreshToken(ctx, client, code) {
    return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
  },
  interactions: {
    url(ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
  cookies: { keys: ['sealpost-test-only-cookie-key'] },
});

async function interact(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    const account = params.login_hint;
    if (!accounts.has(account)) {
      res.statusCode = 403;
      res.end(`unknown account ${account}`);
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: account } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(
      req,
      res,
      { consent: { grantId } },
      { mergeWithLastSubmission: true },
    );
    return;
  }
  res.statusCode = 400;
  res.end(`unexpected prompt ${prompt.name}`);
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (/^\/interaction\/[^/?]+(\?.*)?$/.test(req.url)) {
    interact(req, res).catch((e) => {
      res.statusCode = 500;
      res.end(String(e));
    });
    return;
  }
  callback(req, res);
});

server.listen(config.port, '127.0.0.1', () => {
  console.log('listening');
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
