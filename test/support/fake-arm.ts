/**
 * A local stand-in for Azure Resource Manager's managed applications
 * (`GET /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Solutions/applications/{name}?api-version=...`)
 * and the Entra ID client-credentials endpoint in front of it, over HTTPS
 * (the local issuer's certificate, trusted through NODE_EXTRA_CA_CERTS), so
 * the real @azure/identity ClientSecretCredential and our ARM reader run.
 *
 *   const arm = await startFakeArm();
 *   arm.putApplication({ ... });      // what ARM answers for it
 *   arm.deleteApplication(id);        // ARM answers 404 for it from now on
 *   arm.failNext(503);                // the next application read fails
 *   arm.counters.applicationReads     // how often the API read one back
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { localDir } from '../../infra/local/issuer';
import { readBody, sendJson } from './fake-metering';

export interface FakeApplication {
  /** /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Solutions/applications/{name} */
  id: string;
  location: string;
  managedResourceGroupId: string;
  parameters: Record<string, unknown>;
  /** Empty until "mainTemplate ran". */
  outputs?: Record<string, unknown>;
  /** Default Succeeded; one of ARM's PROVISIONING_STATES. */
  provisioningState?: string;
}

/**
 * ARM's provisioning states of a Microsoft.Solutions application (api-version 2019-07-01):
 * https://github.com/Azure/azure-rest-api-specs/blob/main/specification/solutions/resource-manager/Microsoft.Solutions/ManagedApplications/stable/2019-07-01/managedapplications.json
 */
export const PROVISIONING_STATES = ['NotSpecified', 'Accepted', 'Running', 'Ready', 'Creating', 'Created', 'Deleting', 'Deleted', 'Canceled', 'Failed', 'Succeeded', 'Updating'];

export interface FakeArm {
  /** Both ARM's endpoint and the Entra authority host. */
  readonly url: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly counters: { tokens: number; applicationReads: number; unauthorized: number };
  /** The configuration overrides that point the API at this fake. */
  env(): Record<string, string>;
  /** What ARM answers for the application from now on (the same id again: the application as it is now). */
  putApplication(app: FakeApplication): void;
  /** The application is gone: ARM answers 404 for it, as once a delete finished. */
  deleteApplication(id: string): void;
  failNext(status: number): void;
  /** Whether this server's token endpoint issued the token (any audience). */
  issued(token: string): boolean;
  close(): Promise<void>;
}

/** More ARM routes, behind the same token check (the local ARM server's deployments and scale sets). Answers true when it handled the request. */
export type ArmRoutes = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

/** The audience of the local cloud's Key Vaults (as https://vault.azure.net is Azure's): vaults are <name>.vault.localhost. */
export const VAULT_RESOURCE = 'https://vault.localhost';

/** The claims of a token this server issued (its middle part). */
export function claimsOf(token: string): { aud?: string; tid?: string; appid?: string; oid?: string; xms_mirid?: string; exp?: number } {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as ReturnType<typeof claimsOf>;
  } catch {
    return {};
  }
}

export async function startFakeArm(opts: { routes?: ArmRoutes } = {}): Promise<FakeArm> {
  const tlsDir = path.join(localDir(), 'tls');
  const tenantId = randomUUID();
  const clientId = randomUUID();
  const clientSecret = randomBytes(24).toString('base64url');
  const tokens = new Set<string>();
  const applications = new Map<string, FakeApplication>();
  const failures: number[] = [];
  const counters = { tokens: 0, applicationReads: 0, unauthorized: 0 };
  const sockets = new Set<Socket>();

  const server = https.createServer({ cert: fs.readFileSync(path.join(tlsDir, 'issuer.pem')), key: fs.readFileSync(path.join(tlsDir, 'issuer-key.pem')) });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const armError = (res: ServerResponse, status: number, code: string, message: string) => sendJson(res, status, { error: { code, message } });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A path that starts with two slashes (the SDKs' getById joins '/' and an id that starts with one) is a path, not a host: ARM reads it so.
    const u = new URL((req.url ?? '/').replace(/^\/+/, '/'), url);
    const entra = /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/token)$/.exec(u.pathname);
    if (entra) {
      if (entra[1] !== tenantId) return sendJson(res, 400, { error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${entra[1]}' not found.` });
      if (entra[2].startsWith('v2.0')) {
        const base = `${url}/${tenantId}`;
        return sendJson(res, 200, {
          issuer: `${base}/v2.0`, token_endpoint: `${base}/oauth2/v2.0/token`, authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          jwks_uri: `${base}/discovery/v2.0/keys`, response_types_supported: ['code'], subject_types_supported: ['pairwise'], id_token_signing_alg_values_supported: ['RS256'],
        });
      }
      const form = new URLSearchParams((await readBody(req)).toString('utf8'));
      if (form.get('grant_type') !== 'client_credentials' || form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
        return sendJson(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
      }
      // Two resources here: ARM (this server) and the local cloud's Key Vault (https://vault.localhost, the vaults' audience).
      const audience = form.get('scope') === `${url}/.default` ? url : form.get('scope') === `${VAULT_RESOURCE}/.default` ? VAULT_RESOURCE : undefined;
      if (!audience) return sendJson(res, 400, { error: 'invalid_resource', error_description: `AADSTS500011: The resource principal named ${form.get('scope')} was not found.` });
      counters.tokens++;
      // Opaque to the client; a JWT's three parts so that MSAL can read its expiry if it looks.
      const now = Math.floor(Date.now() / 1000);
      const claims = Buffer.from(JSON.stringify({ aud: audience, tid: tenantId, appid: clientId, iat: now, exp: now + 3600 })).toString('base64url');
      const token = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${claims}.${randomBytes(16).toString('base64url')}`;
      tokens.add(token);
      return sendJson(res, 200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
    }
    const app = /^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/providers\/microsoft\.solutions\/applications\/[^/]+$/i.exec(u.pathname);
    if (u.pathname.toLowerCase().startsWith('/subscriptions/')) {
      const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!bearer || !tokens.has(bearer) || claimsOf(bearer).aud !== url) {
        counters.unauthorized++;
        return armError(res, 401, 'AuthenticationFailed', 'Authentication failed. The Authorization header is missing or invalid.');
      }
      if (!u.searchParams.get('api-version')) return armError(res, 400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
    }
    if (!(app && req.method === 'GET') && opts.routes && (await opts.routes(req, res, u))) return;
    if (app && req.method === 'GET') {
      counters.applicationReads++;
      const fail = failures.shift();
      if (fail) return armError(res, fail, fail === 429 ? 'TooManyRequests' : 'InternalServerError', 'The server encountered an internal error; try again.');
      const found = applications.get(u.pathname.toLowerCase());
      if (!found) return armError(res, 404, 'ResourceNotFound', `The Resource 'Microsoft.Solutions/applications/${u.pathname.split('/').pop()}' was not found.`);
      const wrap = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, { type: typeof v === 'number' ? 'Int' : typeof v === 'boolean' ? 'Bool' : 'String', value: v }]));
      return sendJson(res, 200, {
        id: found.id, name: found.id.split('/').pop(), type: 'Microsoft.Solutions/applications', location: found.location, kind: 'MarketPlace',
        properties: {
          managedResourceGroupId: found.managedResourceGroupId, parameters: wrap(found.parameters), outputs: wrap(found.outputs ?? {}),
          provisioningState: found.provisioningState ?? 'Succeeded',
        },
      });
    }
    return armError(res, 404, 'NotFound', `No route for ${req.method} ${u.pathname}.`);
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((e: unknown) => armError(res, 500, 'InternalServerError', `fake-arm: ${(e as Error).message}`));
  });

  return {
    url, tenantId, clientId, clientSecret, counters,
    issued: (token: string) => tokens.has(token),
    env: () => ({ ARM_ENDPOINT: url, AZURE_AUTHORITY_HOST: url, AZURE_TENANT_ID: tenantId, AZURE_CLIENT_ID: clientId, AZURE_CLIENT_SECRET: clientSecret }),
    putApplication(a) {
      if (a.provisioningState !== undefined && !PROVISIONING_STATES.includes(a.provisioningState)) throw new Error(`fake-arm: ${a.provisioningState} is not a provisioning state ARM answers`);
      // Azure makes the managed resource group with the application and deletes it with it: two
      // applications never share one (https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/overview#managed-resource-group).
      const mrg = a.managedResourceGroupId.toLowerCase();
      const other = [...applications.values()].find((x) => x.managedResourceGroupId.toLowerCase() === mrg && x.id.toLowerCase() !== a.id.toLowerCase());
      if (other) throw new Error(`fake-arm: the managed resource group ${a.managedResourceGroupId} belongs to ${other.id}`);
      applications.set(a.id.toLowerCase(), a);
    },
    deleteApplication: (id) => void applications.delete(id.toLowerCase()),
    failNext: (status) => failures.push(status),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
