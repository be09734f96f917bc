// The demo identity provider: oidc-provider with its built-in (development) login and
// consent pages. Configured from the environment: ISSUER (the URL browsers use),
// CLIENT_ID, and the client secret in the file CLIENT_SECRET_FILE (a swarm secret).
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const issuer = process.env.ISSUER;
const secret = readFileSync(process.env.CLIENT_SECRET_FILE, "utf8").trim();
const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: secret,
    // A native client on loopback: any port matches (RFC 8252 7.3), as the apps of a run
    // get their host ports at deploy time, after the provider exists.
    application_type: "native",
    redirect_uris: ["http://127.0.0.1/hub/oauth_callback"],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  }],
  claims: { openid: ["sub"], profile: ["name", "preferred_username"] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, name: id, preferred_username: id }; } };
  },
  pkce: { required: () => false },
  cookies: { keys: [secret] },
});
provider.proxy = true;
provider.listen(3000, () => console.log(`idp: issuer ${issuer}, client ${process.env.CLIENT_ID}`));
