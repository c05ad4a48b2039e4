/**
 * A local stand-in for the Azure Marketplace metered billing API and for the Entra ID token
 * endpoint in front of it, speaking their documented wire formats over HTTPS, so tests and
 * benchmarks exercise the real @azure/identity ClientSecretCredential and our MeteringClient.
 *
 *   const fake = await startFakeMetering();
 *   const credential = fake.credential();   // a real ClientSecretCredential pointed at the fake
 *   ... new MeteringClient({ baseUrl: fake.url, credential }) ...
 *   fake.acceptedCount(key)                 // how often an event was accepted as new: 0 or 1
 *   await fake.close();
 *
 * Rules (per the documentation): one event per resource, dimension and UTC hour of
 * effectiveStartTime (later ones are Duplicate with the first one's usageEventId); only the
 * last 24 h (by the fake's clock, `now`) are accepted; quantity > 0; the dimension must be one
 * of the plan's; the resource must be known; at most 25 events per batch.
 *
 * TLS: the development certificate of the local identity issuer ($LOCAL_DIR/tls/issuer.pem,
 * for localhost and 127.0.0.1), trusted through NODE_EXTRA_CA_CERTS set by the test runner.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { ClientSecretCredential } from '@azure/identity';
import { dimensionForTier, TIER_NAMES } from '../../libs/core/src/catalog';
import {
  MAX_BATCH_EVENTS,
  METERING_API_VERSION,
  METERING_RESOURCE,
  NO_MESSAGE_TIME,
  apiTimeMs,
  eventResource,
  usageKey,
  type EventStatus,
  type UsageEventSummary,
  type WireError,
  type WireUsageEvent,
  type WireUsageEventResult,
} from '../../libs/billing/src/marketplace/wire';
import { localDir } from '../../infra/local/issuer';
import { mulberry32 } from './prng';

export { usageKey } from '../../libs/billing/src/marketplace/wire';

/** The metering API endpoints a fault can apply to. */
export type MeteringEndpoint = 'usageEvent' | 'batchUsageEvent' | 'usageEvents';

/**
 * One programmed misbehaviour, used by the next authenticated request to one of `on`
 * (default: the two POST endpoints).
 */
export type Fault = { on?: MeteringEndpoint[] } & (
  /** Answer with this status (500, 503, ...) and an error body; nothing is recorded. */
  | { kind: 'status'; status: number }
  /** 429 with `Retry-After: retryAfterSeconds`; nothing is recorded. */
  | { kind: 'throttle'; retryAfterSeconds: number }
  /** Destroy the connection once the request has arrived, before processing it. */
  | { kind: 'drop' }
  /** Process and record the request, then never answer (or answer after `answerAfterMs`). */
  | { kind: 'timeoutAfterAccept'; answerAfterMs?: number }
  /**
   * Batch: the events at `indexes` (default all) get the transient per-event status `Error` in an
   * otherwise normal 200 answer, and are not recorded. Single event: 500.
   */
  | { kind: 'eventError'; indexes?: number[] }
);

/** Faults drawn at random (seeded) when the queue is empty; each a probability in [0, 1]. */
export interface FaultRates {
  seed?: number;
  /** Per request: 500. */
  serverError?: number;
  /** Per request: 503. */
  unavailable?: number;
  /** Per request: 429 with Retry-After `retryAfterSeconds` (default 1). */
  throttle?: number;
  retryAfterSeconds?: number;
  /** Per request: connection dropped before processing. */
  drop?: number;
  /** Per request: processed and recorded, then answered after `hangMs` (default: never). */
  timeoutAfterAccept?: number;
  hangMs?: number;
  /** Per event of a batch: transient `Error` status. */
  eventError?: number;
}

export interface FakeMeteringOptions {
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** Dimensions of every plan. Default: one per tier (development_hours, standard_hours, plus_hours). */
  dimensions?: string[];
  /** Per plan id, its dimensions; when given, a plan not listed has no valid dimension. */
  plans?: Record<string, string[]>;
  /** Whether a resource (resourceId or resourceUri) is a live purchase. Default: all are. */
  knownResources?: (resource: string) => boolean;
  /**
   * The plan a resource was bought with. Usage is emitted "against an active resource for the
   * plan purchased by the specific customer"
   * (https://learn.microsoft.com/partner-center/marketplace/marketplace-metering-service-apis#metered-billing-single-usage-event):
   * an event naming another plan is refused (BadArgument on PlanId, the documented answer to
   * invalid data; the documentation names no status of its own for it). Default: any plan.
   */
  purchasedPlan?: (resource: string) => string | undefined;
  /** The metering clock (24 h window, messageTime). Tokens use the real clock, as MSAL does. */
  now?: () => Date | number;
  /** Lifetime of issued tokens. Default 3599 s. */
  tokenTtlSeconds?: number;
  faultRates?: FaultRates;
  /** Delay before every metering answer (for benchmarks). */
  latencyMs?: number;
  /** Return a batch's results in a (seeded) random order, to prove clients match them by key. */
  shuffleResults?: boolean;
  /** Seed of the shuffle (and of faultRates unless it has its own). */
  seed?: number;
  offerId?: string;
  /** Directory with issuer.pem / issuer-key.pem. Default $LOCAL_DIR/tls. */
  tlsDir?: string;
}

/** An event the fake holds as accepted. */
export interface AcceptedUsageEvent {
  usageEventId: string;
  /** The request's resource field: resourceId (SaaS) or resourceUri (managed application). */
  resourceField: 'resourceId' | 'resourceUri';
  resource: string;
  quantity: number;
  dimension: string;
  effectiveStartTime: string;
  planId: string;
  messageTime: string;
  key: string;
  /** Pre-seeded with injectAccepted rather than sent through the API. */
  injected: boolean;
  reconStatus: string;
  processedQuantity: number;
}

/** An event to pre-seed, as if accepted earlier (reconciliation's "extra" or "mismatched"). */
export interface InjectedUsageEvent extends WireUsageEvent {
  usageEventId?: string;
  messageTime?: string;
  reconStatus?: string;
  processedQuantity?: number;
}

export interface FakeMeteringCounters {
  /** POSTs to the token endpoint, and tokens issued. */
  tokenRequests: number;
  tokensIssued: number;
  /** GETs of the OpenID configuration. */
  metadataRequests: number;
  /** Requests that reached each metering endpoint (any outcome, faults included). */
  usageEvent: number;
  batchUsageEvent: number;
  usageEvents: number;
  /** Metering requests refused with 401. */
  unauthorized: number;
  /** Faults applied (queued or drawn at random). */
  faults: number;
  /** Events accepted as new through the API (injected ones not included). */
  acceptedNew: number;
  /** Per-event Duplicate answers (batch entries and 409s). */
  duplicates: number;
}

export interface FakeMetering {
  /** https://127.0.0.1:<port>: both the metering API's base URL and the Entra authority host. */
  readonly url: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Live counters. */
  readonly counters: Readonly<FakeMeteringCounters>;
  /** A real ClientSecretCredential pointed at this fake (optionally with another secret). */
  credential(secret?: string): ClientSecretCredential;
  /** Every event held as accepted, injected ones included, in the order they were accepted. */
  accepted(): AcceptedUsageEvent[];
  /** How many times the event with this key (see usageKey) was accepted as new: must never exceed 1. */
  acceptedCount(key: string | { resourceId?: string; resourceUri?: string; dimension: string; effectiveStartTime: string }): number;
  /** Every key accepted as new through the API, with its count. */
  acceptedCounts(): Map<string, number>;
  /** Pre-seed accepted events (they then answer Duplicate, and are listed by GET /api/usageEvents). */
  injectAccepted(events: InjectedUsageEvent[]): AcceptedUsageEvent[];
  /** Queue faults for the next requests. */
  inject(...faults: Fault[]): void;
  /** Queued faults not yet used. */
  pendingFaults(): number;
  close(): Promise<void>;
}

const DAY_MS = 24 * 3_600_000;

export async function startFakeMetering(opts: FakeMeteringOptions = {}): Promise<FakeMetering> {
  const tlsDir = opts.tlsDir ?? path.join(localDir(), 'tls');
  const tenantId = opts.tenantId ?? randomUUID();
  const clientId = opts.clientId ?? randomUUID();
  const clientSecret = opts.clientSecret ?? randomBytes(24).toString('base64url');
  const signingKey = randomBytes(32);
  const now = (): number => {
    const t = opts.now ? opts.now() : Date.now();
    return t instanceof Date ? t.getTime() : t;
  };
  const tokenTtl = opts.tokenTtlSeconds ?? 3599;
  const defaultDimensions = opts.dimensions ?? TIER_NAMES.map(dimensionForTier);
  const offerId = opts.offerId ?? 'managed-consul';
  const known = opts.knownResources ?? (() => true);
  const rates = opts.faultRates;
  const random = mulberry32(rates?.seed ?? opts.seed ?? 1);
  const shuffleRandom = mulberry32(opts.seed ?? 7);

  const counters: FakeMeteringCounters = {
    tokenRequests: 0,
    tokensIssued: 0,
    metadataRequests: 0,
    usageEvent: 0,
    batchUsageEvent: 0,
    usageEvents: 0,
    unauthorized: 0,
    faults: 0,
    acceptedNew: 0,
    duplicates: 0,
  };
  const byKey = new Map<string, AcceptedUsageEvent>();
  const acceptedList: AcceptedUsageEvent[] = [];
  const newCounts = new Map<string, number>();
  const faultQueue: Fault[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = https.createServer({ cert: fs.readFileSync(path.join(tlsDir, 'issuer.pem')), key: fs.readFileSync(path.join(tlsDir, 'issuer-key.pem')) });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${url}/${tenantId}/v2.0`;

  // ---------------------------------------------------------------- Entra ID

  function openIdConfiguration(tenant: string): Record<string, unknown> {
    const base = `${url}/${tenant}`;
    return {
      issuer: `${base}/v2.0`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      token_endpoint: `${base}/oauth2/v2.0/token`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'tid'],
      tenant_region_scope: 'EU',
      request_uri_parameter_supported: false,
    };
  }

  function entraError(res: ServerResponse, status: number, error: string, aadsts: number, description: string): void {
    const traceId = randomUUID();
    sendJson(res, status, {
      error,
      error_description: `AADSTS${aadsts}: ${description} Trace ID: ${traceId} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
      error_codes: [aadsts],
      timestamp: new Date().toISOString(),
      trace_id: traceId,
      correlation_id: randomUUID(),
    });
  }

  async function tokenEndpoint(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counters.tokenRequests++;
    const form = new URLSearchParams((await readBody(req)).toString('utf8'));
    const basic = parseBasicAuth(req.headers.authorization);
    const id = form.get('client_id') ?? basic?.id;
    const secret = form.get('client_secret') ?? basic?.secret;
    if (form.get('grant_type') !== 'client_credentials') {
      return entraError(res, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${form.get('grant_type') ?? ''}'.`);
    }
    if (id !== clientId) {
      return entraError(res, 400, 'unauthorized_client', 700016, `Application with identifier '${id ?? ''}' was not found in the directory '${tenantId}'.`);
    }
    if (secret === null || secret === undefined || !sameSecret(secret, clientSecret)) {
      // Like Entra: names the app, never echoes the secret.
      return entraError(res, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
    }
    const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
    if (scopes.length !== 1 || scopes[0] !== `${METERING_RESOURCE}/.default`) {
      return entraError(res, 400, 'invalid_resource', 500011, `The resource principal named ${scopes.join(' ')} was not found in the tenant named ${tenantId}.`);
    }
    const iat = Math.floor(Date.now() / 1000);
    const accessToken = signJwt({
      aud: METERING_RESOURCE,
      iss: issuer,
      tid: tenantId,
      appid: clientId,
      azp: clientId,
      sub: clientId,
      oid: clientId,
      iat,
      nbf: iat,
      exp: iat + tokenTtl,
      jti: randomUUID(),
      ver: '2.0',
    });
    counters.tokensIssued++;
    sendJson(res, 200, { token_type: 'Bearer', expires_in: tokenTtl, ext_expires_in: tokenTtl, access_token: accessToken });
  }

  function signJwt(claims: Record<string, unknown>): string {
    const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'fake-metering' }));
    const body = b64url(JSON.stringify(claims));
    return `${head}.${body}.${createHmac('sha256', signingKey).update(`${head}.${body}`).digest('base64url')}`;
  }

  /** The reason a bearer token is refused, or null when it is good. */
  function tokenProblem(authorization: string | undefined): string | null {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!m) return 'The authorization header is missing or is not a bearer token.';
    const parts = m[1].split('.');
    if (parts.length !== 3) return 'The bearer token is malformed.';
    const [head, body, sig] = parts;
    let header: { alg?: unknown };
    let claims: { aud?: unknown; exp?: unknown; nbf?: unknown; tid?: unknown; appid?: unknown; iss?: unknown };
    try {
      header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return 'The bearer token is malformed.';
    }
    if (header.alg !== 'HS256') return 'The bearer token is signed with an unexpected algorithm.';
    const expected = createHmac('sha256', signingKey).update(`${head}.${body}`).digest();
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'The bearer token signature is invalid.';
    const nowSec = Date.now() / 1000;
    if (typeof claims.exp !== 'number' || claims.exp <= nowSec) return 'The bearer token is expired.';
    if (typeof claims.nbf === 'number' && claims.nbf > nowSec + 300) return 'The bearer token is not valid yet.';
    if (claims.aud !== METERING_RESOURCE) return 'The bearer token was issued for another audience.';
    if (claims.iss !== issuer || claims.tid !== tenantId || claims.appid !== clientId) return 'The bearer token was issued to another application.';
    return null;
  }

  // ---------------------------------------------------------------- metering rules

  function dimensionsOf(planId: string): string[] | undefined {
    return opts.plans ? opts.plans[planId] : defaultDimensions;
  }

  function echo(event: Partial<WireUsageEvent>): Partial<WireUsageEvent> {
    const out: Partial<WireUsageEvent> = {};
    if (event.resourceId !== undefined) out.resourceId = event.resourceId;
    if (event.resourceUri !== undefined) out.resourceUri = event.resourceUri;
    return { ...out, quantity: event.quantity, dimension: event.dimension, effectiveStartTime: event.effectiveStartTime, planId: event.planId };
  }

  function acceptedMessage(a: AcceptedUsageEvent, status: 'Accepted' | 'Duplicate'): WireUsageEventResult {
    return {
      usageEventId: a.usageEventId,
      status,
      messageTime: a.messageTime,
      [a.resourceField]: a.resource,
      quantity: a.quantity,
      dimension: a.dimension,
      effectiveStartTime: a.effectiveStartTime,
      planId: a.planId,
    };
  }

  /** Validates one event; records it when accepted. The answer as a batch entry. */
  function processEvent(raw: unknown): WireUsageEventResult {
    const event = (raw && typeof raw === 'object' ? raw : {}) as Partial<WireUsageEvent>;
    const fail = (status: Exclude<EventStatus, 'Accepted' | 'Duplicate'>, message: string, target: string): WireUsageEventResult => ({
      status,
      messageTime: NO_MESSAGE_TIME,
      error: { code: status, message, target },
      ...echo(event),
    });
    const resource = eventResource(event);
    if (typeof resource !== 'string' || resource === '') return fail('BadArgument', 'The resourceId is required.', 'ResourceId');
    if (event.resourceId !== undefined && event.resourceUri !== undefined) return fail('BadArgument', 'Give either resourceId or resourceUri, not both.', 'ResourceId');
    if (typeof event.dimension !== 'string' || event.dimension === '') return fail('BadArgument', 'The dimension is required.', 'Dimension');
    if (typeof event.planId !== 'string' || event.planId === '') return fail('BadArgument', 'The planId is required.', 'PlanId');
    if (typeof event.effectiveStartTime !== 'string') return fail('BadArgument', 'The effectiveStartTime is required.', 'EffectiveStartTime');
    const startMs = apiTimeMs(event.effectiveStartTime);
    if (Number.isNaN(startMs)) return fail('BadArgument', `The effectiveStartTime '${event.effectiveStartTime}' is not a valid date and time.`, 'EffectiveStartTime');
    if (typeof event.quantity !== 'number' || !Number.isFinite(event.quantity)) return fail('BadArgument', 'The quantity is required and must be a number.', 'Quantity');
    if (event.quantity <= 0) return fail('InvalidQuantity', 'The quantity passed is lower or equal to 0.', 'Quantity');
    if (!known(resource)) return fail('ResourceNotFound', `The usage resource '${resource}' is not found.`, 'ResourceId');
    const bought = opts.purchasedPlan?.(resource);
    if (bought !== undefined && bought !== event.planId) return fail('BadArgument', `The planId '${event.planId}' is not the plan '${bought}' the resource '${resource}' was purchased with.`, 'PlanId');
    if (!(dimensionsOf(event.planId) ?? []).includes(event.dimension)) {
      return fail('InvalidDimension', `The dimension '${event.dimension}' is not valid for plan '${event.planId}'.`, 'Dimension');
    }
    const t = now();
    if (startMs < t - DAY_MS) return fail('Expired', 'The usage event is expired: effectiveStartTime is more than 24 hours in the past.', 'EffectiveStartTime');
    if (startMs > t) return fail('BadArgument', 'The effectiveStartTime is in the future.', 'EffectiveStartTime');

    const key = usageKey(resource, event.dimension, event.effectiveStartTime);
    const existing = byKey.get(key);
    if (existing) {
      counters.duplicates++;
      return {
        status: 'Duplicate',
        messageTime: NO_MESSAGE_TIME,
        error: { additionalInfo: { acceptedMessage: acceptedMessage(existing, 'Duplicate') }, message: 'This usage event already exist.', code: 'Conflict' },
        ...echo(event),
      };
    }
    const accepted = record({
      resourceField: event.resourceUri !== undefined ? 'resourceUri' : 'resourceId',
      resource,
      quantity: event.quantity,
      dimension: event.dimension,
      effectiveStartTime: event.effectiveStartTime,
      planId: event.planId,
      messageTime: new Date(t).toISOString(),
      injected: false,
    });
    return acceptedMessage(accepted, 'Accepted');
  }

  function record(e: Omit<AcceptedUsageEvent, 'usageEventId' | 'key' | 'reconStatus' | 'processedQuantity'> & Partial<AcceptedUsageEvent>): AcceptedUsageEvent {
    const key = usageKey(e.resource, e.dimension, e.effectiveStartTime);
    const accepted: AcceptedUsageEvent = {
      usageEventId: e.usageEventId ?? randomUUID(),
      resourceField: e.resourceField,
      resource: e.resource,
      quantity: e.quantity,
      dimension: e.dimension,
      effectiveStartTime: e.effectiveStartTime,
      planId: e.planId,
      messageTime: e.messageTime,
      key,
      injected: e.injected,
      reconStatus: e.reconStatus ?? 'Accepted',
      processedQuantity: e.processedQuantity ?? e.quantity,
    };
    byKey.set(key, accepted);
    acceptedList.push(accepted);
    if (!e.injected) {
      counters.acceptedNew++;
      newCounts.set(key, (newCounts.get(key) ?? 0) + 1);
    }
    return accepted;
  }

  /** GET /api/usageEvents: accepted events summed per resource, dimension, plan and UTC day. */
  function listUsage(q: URLSearchParams): { status: number; body: unknown } {
    const startText = q.get('usageStartDate');
    if (!startText) return { status: 400, body: badArgument('The usageStartDate is required.', 'usageStartDate') };
    const start = apiTimeMs(startText);
    const endText = q.get('usageEndDate') ?? q.get('UsageEndDate');
    const end = endText ? apiTimeMs(endText) : now();
    if (Number.isNaN(start) || Number.isNaN(end)) return { status: 400, body: badArgument('usageStartDate and usageEndDate must be ISO 8601 dates.', 'usageStartDate') };
    const filters: Array<[string, (a: AcceptedUsageEvent) => string]> = [
      ['resourceUri', (a) => a.resource.toLowerCase()],
      ['planId', (a) => a.planId],
      ['dimension', (a) => a.dimension],
      ['offerId', () => offerId],
      ['azureSubscriptionId', (a) => subscriptionOf(a.resource)],
      ['reconStatus', (a) => a.reconStatus],
    ];
    const groups = new Map<string, { first: AcceptedUsageEvent; events: AcceptedUsageEvent[]; day: string }>();
    for (const a of acceptedList) {
      const at = apiTimeMs(a.effectiveStartTime);
      if (at < start || at > end) continue;
      if (filters.some(([name, get]) => q.has(name) && get(a) !== (name === 'resourceUri' ? q.get(name)!.toLowerCase() : q.get(name)))) continue;
      const day = new Date(Math.floor(at / DAY_MS) * DAY_MS).toISOString();
      const key = `${a.resource.toLowerCase()}|${a.dimension}|${a.planId}|${day}`;
      const group = groups.get(key) ?? { first: a, events: [], day };
      group.events.push(a);
      groups.set(key, group);
    }
    const list: UsageEventSummary[] = [...groups.values()].map(({ first, events, day }) => {
      const statuses = new Set(events.map((e) => e.reconStatus));
      return {
        usageDate: day,
        usageResourceId: first.resource,
        dimension: first.dimension,
        planId: first.planId,
        planName: first.planId,
        offerId,
        offerName: offerId,
        offerType: first.resourceField === 'resourceUri' ? 'ManagedApp' : 'SaaS',
        azureSubscriptionId: subscriptionOf(first.resource),
        reconStatus: statuses.size === 1 ? [...statuses][0] : 'Mismatch',
        submittedQuantity: events.reduce((s, e) => s + e.quantity, 0),
        processedQuantity: events.reduce((s, e) => s + e.processedQuantity, 0),
        submittedCount: events.length,
      };
    });
    return { status: 200, body: list };
  }

  // ---------------------------------------------------------------- faults

  function nextFault(endpoint: MeteringEndpoint): Fault | undefined {
    const i = faultQueue.findIndex((f) => (f.on ?? ['usageEvent', 'batchUsageEvent']).includes(endpoint));
    if (i >= 0) return faultQueue.splice(i, 1)[0];
    if (!rates || endpoint === 'usageEvents') return undefined;
    let r = random();
    const draws: Array<[number | undefined, () => Fault]> = [
      [rates.serverError, () => ({ kind: 'status', status: 500 })],
      [rates.unavailable, () => ({ kind: 'status', status: 503 })],
      [rates.throttle, () => ({ kind: 'throttle', retryAfterSeconds: rates.retryAfterSeconds ?? 1 })],
      [rates.drop, () => ({ kind: 'drop' })],
      [rates.timeoutAfterAccept, () => ({ kind: 'timeoutAfterAccept', answerAfterMs: rates.hangMs })],
    ];
    for (const [p, make] of draws) {
      if (!p) continue;
      if (r < p) return make();
      r -= p;
    }
    return undefined;
  }

  function eventErrorIndexes(fault: Fault | undefined, count: number): Set<number> {
    const out = new Set<number>();
    if (fault?.kind === 'eventError') {
      for (let i = 0; i < count; i++) if (!fault.indexes || fault.indexes.includes(i)) out.add(i);
    } else if (rates?.eventError) {
      for (let i = 0; i < count; i++) if (random() < rates.eventError) out.add(i);
    }
    return out;
  }

  // ---------------------------------------------------------------- HTTP

  /** Sends the answer now, later, or never, as the fault says. */
  function answer(res: ServerResponse, status: number, body: unknown, fault: Fault | undefined, headers: Record<string, string> = {}): void {
    const send = () => {
      if (!res.destroyed && !res.writableEnded) sendJson(res, status, body, headers);
    };
    let delay = opts.latencyMs ?? 0;
    if (fault?.kind === 'timeoutAfterAccept') {
      if (fault.answerAfterMs === undefined) return; // held until the client gives up or close()
      delay += fault.answerAfterMs;
    }
    if (delay <= 0) return send();
    const timer = setTimeout(() => {
      timers.delete(timer);
      send();
    }, delay);
    timers.add(timer);
  }

  async function metering(req: IncomingMessage, res: ServerResponse, endpoint: MeteringEndpoint, query: URLSearchParams): Promise<void> {
    counters[endpoint]++;
    const ids = { 'x-ms-requestid': header(req, 'x-ms-requestid') ?? randomUUID(), 'x-ms-correlationid': header(req, 'x-ms-correlationid') ?? randomUUID() };
    const body = await readBody(req);
    const problem = tokenProblem(req.headers.authorization);
    if (problem) {
      counters.unauthorized++;
      return sendJson(res, 401, { code: 'Unauthorized', message: problem }, { ...ids, 'www-authenticate': 'Bearer' });
    }
    if (query.get('api-version') !== METERING_API_VERSION) {
      return sendJson(res, 400, badArgument(`The api-version query parameter is required; use ${METERING_API_VERSION}.`, 'api-version'), ids);
    }
    const fault = nextFault(endpoint);
    if (fault) counters.faults++;
    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') return answer(res, fault.status, { code: fault.status === 503 ? 'ServiceUnavailable' : 'InternalServerError', message: 'The service is temporarily unable to process the request.' }, undefined, ids);
    if (fault?.kind === 'throttle') {
      return answer(res, 429, { code: 'TooManyRequests', message: 'Rate limit is exceeded.' }, undefined, { ...ids, 'retry-after': String(fault.retryAfterSeconds) });
    }

    if (endpoint === 'usageEvents') {
      const listed = listUsage(query);
      return answer(res, listed.status, listed.body, fault, ids);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return answer(res, 400, badArgument('The request body is not valid JSON.', endpoint === 'usageEvent' ? 'usageEventRequest' : 'batchUsageEventRequest'), fault, ids);
    }

    if (endpoint === 'usageEvent') {
      if (fault?.kind === 'eventError') return answer(res, 500, { code: 'InternalServerError', message: 'An error occurred while processing the usage event.' }, undefined, ids);
      const result = processEvent(parsed);
      if (result.status === 'Accepted') return answer(res, 200, result, fault, ids);
      if (result.status === 'Duplicate') return answer(res, 409, result.error, fault, ids);
      const error = result.error ?? {};
      return answer(res, 400, { message: 'One or more errors have occurred.', target: 'usageEventRequest', details: [error], code: error.code }, fault, ids);
    }

    const request = (parsed as { request?: unknown } | null)?.request;
    if (!Array.isArray(request)) return answer(res, 400, badArgument('The request list is required.', 'request'), fault, ids);
    if (request.length > MAX_BATCH_EVENTS) {
      return answer(res, 400, badArgument(`The batch contained more than ${MAX_BATCH_EVENTS} usage events.`, 'request'), fault, ids);
    }
    if (request.length === 0) return answer(res, 400, badArgument('The request list is empty.', 'request'), fault, ids);
    const failing = eventErrorIndexes(fault, request.length);
    const result = request.map((raw, i) =>
      failing.has(i)
        ? { status: 'Error', messageTime: NO_MESSAGE_TIME, error: { code: 'InternalServerError', message: 'An error occurred while processing this usage event; send it again.' }, ...echo((raw ?? {}) as Partial<WireUsageEvent>) }
        : processEvent(raw),
    );
    if (opts.shuffleResults) shuffle(result, shuffleRandom);
    return answer(res, 200, { count: result.length, result }, fault, ids);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', url);
    const parts = u.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    if (parts.length === 4 && parts[1] === 'v2.0' && parts[2] === '.well-known' && parts[3] === 'openid-configuration' && method === 'GET') {
      counters.metadataRequests++;
      if (parts[0] !== tenantId) return entraError(res, 400, 'invalid_tenant', 90002, `Tenant '${parts[0]}' not found.`);
      return sendJson(res, 200, openIdConfiguration(parts[0]));
    }
    if (parts.length === 4 && parts[1] === 'discovery' && parts[2] === 'v2.0' && parts[3] === 'keys' && method === 'GET') {
      return sendJson(res, 200, { keys: [] }); // tokens are HS256 with a key only the fake knows
    }
    if (parts.length === 4 && parts[1] === 'oauth2' && parts[2] === 'v2.0' && parts[3] === 'token') {
      if (method !== 'POST') return sendJson(res, 405, { error: 'invalid_request', error_description: 'Use POST.' });
      if (parts[0] !== tenantId) {
        counters.tokenRequests++;
        await readBody(req);
        return entraError(res, 400, 'invalid_tenant', 90002, `Tenant '${parts[0]}' not found.`);
      }
      return tokenEndpoint(req, res);
    }
    const endpoints: Record<string, [string, MeteringEndpoint]> = {
      '/api/usageEvent': ['POST', 'usageEvent'],
      '/api/batchUsageEvent': ['POST', 'batchUsageEvent'],
      '/api/usageEvents': ['GET', 'usageEvents'],
    };
    const found = endpoints[u.pathname];
    if (!found) return sendJson(res, 404, { code: 'NotFound', message: `No route for ${method} ${u.pathname}.` });
    if (found[0] !== method) return sendJson(res, 405, { code: 'MethodNotAllowed', message: `Use ${found[0]} for ${u.pathname}.` });
    return metering(req, res, found[1], u.searchParams);
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, { code: 'InternalServerError', message: `fake-metering: ${err instanceof Error ? err.message : String(err)}` });
    });
  });

  return {
    url,
    tenantId,
    clientId,
    clientSecret,
    counters,
    credential: (secret?: string) =>
      new ClientSecretCredential(tenantId, clientId, secret ?? clientSecret, { authorityHost: url, disableInstanceDiscovery: true }),
    accepted: () => acceptedList.map((a) => ({ ...a })),
    acceptedCount: (key) => newCounts.get(typeof key === 'string' ? key : usageKey(eventResource(key) ?? '', key.dimension, key.effectiveStartTime)) ?? 0,
    acceptedCounts: () => new Map(newCounts),
    injectAccepted: (events) =>
      events.map((e) => {
        const resource = eventResource(e);
        if (!resource) throw new TypeError('injectAccepted: an event needs a resourceId or resourceUri');
        return {
          ...record({
            resourceField: e.resourceUri !== undefined ? 'resourceUri' : 'resourceId',
            resource,
            quantity: e.quantity,
            dimension: e.dimension,
            effectiveStartTime: e.effectiveStartTime,
            planId: e.planId,
            usageEventId: e.usageEventId,
            messageTime: e.messageTime ?? new Date(now()).toISOString(),
            injected: true,
            reconStatus: e.reconStatus,
            processedQuantity: e.processedQuantity,
          }),
        };
      }),
    inject: (...faults) => {
      faultQueue.push(...faults);
    },
    pendingFaults: () => faultQueue.length,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

// ------------------------------------------------------------------ helpers

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function badArgument(message: string, target: string): WireError {
  return { message: 'One or more errors have occurred.', target, details: [{ message, target, code: 'BadArgument' }], code: 'BadArgument' };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export async function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseBasicAuth(value: string | undefined): { id: string; secret: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(value ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : { id: decodeURIComponent(text.slice(0, i)), secret: decodeURIComponent(text.slice(i + 1)) };
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function subscriptionOf(resource: string): string {
  return /\/subscriptions\/([^/]+)/i.exec(resource)?.[1] ?? '';
}


function shuffle<T>(list: T[], random: () => number): void {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
}
