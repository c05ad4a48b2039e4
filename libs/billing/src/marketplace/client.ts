/**
 * A client of the Azure Marketplace metered billing API for the marketplace exporter.
 *
 * Every call is retried as a whole on 5xx, 408, 429 (honouring Retry-After), timeouts and
 * connection errors. Retrying is safe because the API keeps one event per resource, dimension
 * and hour: an event recorded by an attempt whose answer was lost comes back as Duplicate, with
 * the first attempt's usageEventId, which counts as success.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AccessToken, TokenCredential } from '@azure/identity';
import {
  MAX_BATCH_EVENTS,
  METERING_API_VERSION,
  METERING_SCOPE,
  eventResource,
  usageKey,
  type UsageEventSummary,
  type WireBatchResponse,
  type WireError,
  type WireUsageEvent,
  type WireUsageEventResult,
} from './wire';

export { MAX_BATCH_EVENTS, METERING_SCOPE, type UsageEventSummary } from './wire';

/** One hour of usage of one resource on one dimension. Exactly one of resourceUri / resourceId. */
export type UsageEvent = (
  | { resourceUri: string; resourceId?: undefined }
  | { resourceId: string; resourceUri?: undefined }
) & {
  quantity: number;
  dimension: string;
  /** UTC, ISO 8601; the API dedupes on its hour. */
  effectiveStartTime: string;
  planId: string;
};

/** What became of one event. `accepted` and `duplicate` both mean "billed". */
export type EventOutcome =
  | { kind: 'accepted'; status: 'Accepted'; usageEventId: string }
  | { kind: 'duplicate'; status: 'Duplicate'; usageEventId: string | null }
  | { kind: 'expired'; status: 'Expired' }
  /** Transient: a per-event `Error`, or the whole call failed after all attempts (status `CallFailed`). Send again later. */
  | { kind: 'retry'; status: string; message: string }
  /** Permanent: ResourceNotFound, InvalidDimension, InvalidQuantity, BadArgument, ... Sending again will not help. */
  | { kind: 'rejected'; status: string; message: string };

/** Status of a `retry` outcome when the whole call, not the event, failed. */
export const CALL_FAILED = 'CallFailed';

export interface MeteringClientOptions {
  /** e.g. https://marketplaceapi.microsoft.com (no trailing /api). */
  baseUrl: string;
  credential: TokenCredential;
  /** Per attempt, including reading the answer. Default 30 s. */
  timeoutMs?: number;
  /** Attempts per call, the first included. Default 4. */
  maxAttempts?: number;
  /** Exponential backoff between attempts (with jitter). Default 500 ms doubling up to 20 s. */
  backoff?: { baseMs: number; maxMs: number };
  /** A Retry-After longer than this ends the call instead of waiting. Default 60 s. */
  maxRetryAfterMs?: number;
  fetch?: typeof fetch;
  /** Jitter source, [0, 1). Default Math.random. */
  random?: () => number;
}

/** Where the time went, for benchmarks. */
export interface MeteringClientStats {
  /** HTTP requests sent to the metering API (every attempt). */
  calls: number;
  /** Of those, the ones that repeated an earlier attempt. */
  retries: number;
  /** Time spent waiting on the metering API (request sent → answer read). */
  httpMs: number;
  /** Time spent sleeping between attempts. */
  backoffMs: number;
  /** Tokens asked of the credential (the client caches them until near expiry). */
  tokenRequests: number;
}

/** A call the client cannot turn into per-event outcomes: an unexpected answer, or a listing that failed. */
export class MeteringError extends Error {
  override readonly name: string = 'MeteringError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** No token could be had, or the API refused it: a configuration problem, not an event's. */
export class MeteringAuthError extends MeteringError {
  override readonly name = 'MeteringAuthError';
}

/** All attempts of a call failed transiently. */
class AttemptsExhausted extends Error {}

interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** undefined when the body is not JSON. */
  json: unknown;
}

const TOKEN_REFRESH_MARGIN_MS = 2 * 60_000;

export class MeteringClient {
  private readonly baseUrl: string;
  private readonly credential: TokenCredential;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly maxRetryAfterMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly random: () => number;
  private cachedToken?: AccessToken;
  private tokenInFlight?: Promise<AccessToken>;
  private readonly counters: MeteringClientStats = { calls: 0, retries: 0, httpMs: 0, backoffMs: 0, tokenRequests: 0 };

  constructor(opts: MeteringClientOptions) {
    if (!/^https?:\/\//.test(opts.baseUrl)) throw new TypeError(`MeteringClient: baseUrl must be an http(s) URL, got "${opts.baseUrl}"`);
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.credential = opts.credential;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 4);
    this.backoff = opts.backoff ?? { baseMs: 500, maxMs: 20_000 };
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
    this.fetchImpl = opts.fetch ?? globalThis.fetch;
    this.random = opts.random ?? Math.random;
  }

  /** A copy of the counters since construction (or the last resetStats). */
  get stats(): MeteringClientStats {
    return { ...this.counters };
  }

  resetStats(): void {
    Object.assign(this.counters, { calls: 0, retries: 0, httpMs: 0, backoffMs: 0, tokenRequests: 0 });
  }

  /**
   * Sends up to 25 events in one `POST /api/batchUsageEvent`; the outcomes are in the order of
   * `events`. Throws (before any request) on more than 25 events; throws MeteringAuthError when
   * no token can be had or the API refuses it, MeteringError on an answer it cannot interpret.
   */
  async batchUsageEvent(events: readonly UsageEvent[]): Promise<EventOutcome[]> {
    if (events.length > MAX_BATCH_EVENTS) {
      throw new RangeError(`batchUsageEvent takes at most ${MAX_BATCH_EVENTS} events, got ${events.length}`);
    }
    if (events.length === 0) return [];
    const request = events.map(toWire);
    let answer: HttpAnswer;
    try {
      answer = await this.call('POST', '/api/batchUsageEvent', {}, { request });
    } catch (err) {
      if (err instanceof AttemptsExhausted) return events.map(() => ({ kind: 'retry', status: CALL_FAILED, message: err.message }));
      throw err;
    }
    if (answer.status === 400) {
      const { status, message } = describeError(answer.json, 'BadArgument', answer.status);
      return events.map(() => ({ kind: 'rejected', status, message: this.redact(message) }));
    }
    if (answer.status < 200 || answer.status > 299) throw this.unexpected('batchUsageEvent', answer);
    const body = answer.json as Partial<WireBatchResponse> | undefined;
    if (!body || !Array.isArray(body.result)) {
      const message = 'the batch answer had no result list; its events may or may not be recorded, send them again';
      return events.map(() => ({ kind: 'retry', status: CALL_FAILED, message }));
    }
    return matchResults(request, body.result).map((result) =>
      result ? this.outcomeOf(result) : { kind: 'retry', status: CALL_FAILED, message: 'the batch answer had no result for this event' },
    );
  }

  /** Sends one event with `POST /api/usageEvent` (409 Conflict → duplicate). */
  async usageEvent(event: UsageEvent): Promise<EventOutcome> {
    const wire = toWire(event);
    // The single-event API names the resource `resourceId` whatever the offer type.
    const body: WireUsageEvent = { resourceId: eventResource(wire), quantity: wire.quantity, dimension: wire.dimension, effectiveStartTime: wire.effectiveStartTime, planId: wire.planId };
    let answer: HttpAnswer;
    try {
      answer = await this.call('POST', '/api/usageEvent', {}, body);
    } catch (err) {
      if (err instanceof AttemptsExhausted) return { kind: 'retry', status: CALL_FAILED, message: err.message };
      throw err;
    }
    if (answer.status >= 200 && answer.status <= 299) {
      const result = answer.json as WireUsageEventResult | undefined;
      if (!result || typeof result !== 'object') return { kind: 'retry', status: CALL_FAILED, message: 'the answer had no body; send the event again' };
      return this.outcomeOf({ status: 'Accepted', ...result });
    }
    if (answer.status === 409) {
      const error = (answer.json ?? {}) as WireError;
      return { kind: 'duplicate', status: 'Duplicate', usageEventId: error.additionalInfo?.acceptedMessage?.usageEventId ?? null };
    }
    if (answer.status === 400) {
      const { status, message } = describeError(answer.json, 'BadArgument', answer.status);
      if (isExpired(answer.json, status)) return { kind: 'expired', status: 'Expired' };
      return { kind: 'rejected', status, message: this.redact(message) };
    }
    throw this.unexpected('usageEvent', answer);
  }

  /**
   * `GET /api/usageEvents` for reconciliation: what the marketplace recorded between `from` and
   * `to`, one entry per resource, dimension, plan and day. `resourceUri` narrows it to one
   * resource (sent to the API and applied here, since the API documents no such filter).
   */
  async listUsageEvents(opts: { from: Date | string; to: Date | string; resourceUri?: string }): Promise<UsageEventSummary[]> {
    const query: Record<string, string> = { usageStartDate: isoTime(opts.from), usageEndDate: isoTime(opts.to) };
    if (opts.resourceUri) query.resourceUri = opts.resourceUri;
    let answer: HttpAnswer;
    try {
      answer = await this.call('GET', '/api/usageEvents', query);
    } catch (err) {
      if (err instanceof AttemptsExhausted) throw new MeteringError(`listing usage events failed: ${err.message}`);
      throw err;
    }
    if (answer.status !== 200) throw this.unexpected('usageEvents', answer);
    if (!Array.isArray(answer.json)) throw new MeteringError('listing usage events: the answer is not a list');
    const list = answer.json as UsageEventSummary[];
    const wanted = opts.resourceUri?.toLowerCase();
    return wanted === undefined ? list : list.filter((e) => typeof e.usageResourceId === 'string' && e.usageResourceId.toLowerCase() === wanted);
  }

  private outcomeOf(result: WireUsageEventResult): EventOutcome {
    const status = result.status ?? 'Error';
    switch (status) {
      case 'Accepted':
        return { kind: 'accepted', status: 'Accepted', usageEventId: String(result.usageEventId ?? '') };
      case 'Duplicate':
        return { kind: 'duplicate', status: 'Duplicate', usageEventId: result.error?.additionalInfo?.acceptedMessage?.usageEventId ?? result.usageEventId ?? null };
      case 'Expired':
        return { kind: 'expired', status: 'Expired' };
      case 'Error': {
        const message = describeError(result.error, status).message;
        return { kind: 'retry', status, message: this.redact(message) };
      }
      default: {
        // ResourceNotFound, ResourceNotAuthorized, ResourceNotActive, InvalidDimension,
        // InvalidQuantity, BadArgument and anything new: the event itself is wrong.
        const message = describeError(result.error, status).message;
        return { kind: 'rejected', status, message: this.redact(message) };
      }
    }
  }

  /**
   * One call with its attempts. Returns the first answer that is not worth retrying; throws
   * AttemptsExhausted when every attempt failed transiently, MeteringAuthError on 401/403 twice.
   */
  private async call(method: 'GET' | 'POST', path: string, query: Record<string, string>, body?: unknown): Promise<HttpAnswer> {
    const url = new URL(this.baseUrl + path);
    url.searchParams.set('api-version', METERING_API_VERSION);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const correlationId = randomUUID();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let refreshedAfterRefusal = false;
    let sent = 0;
    for (let attempt = 1; ; attempt++) {
      const token = await this.token();
      if (sent++ > 0) this.counters.retries++;
      let failure: string;
      let retryAfterMs: number | undefined;
      try {
        const answer = await this.attempt(method, url, payload, token, correlationId);
        if (answer.status === 401 || answer.status === 403) {
          // Our cached token may have been revoked early: drop it and try once more with a fresh one.
          this.cachedToken = undefined;
          if (!refreshedAfterRefusal) {
            refreshedAfterRefusal = true;
            attempt--;
            continue;
          }
          const { message } = describeError(answer.json, String(answer.status), answer.status);
          throw new MeteringAuthError(`the metering API refused our token (HTTP ${answer.status}): ${this.redact(message)}`, answer.status);
        }
        if (!isRetryable(answer)) return answer;
        failure = answer.status >= 200 && answer.status <= 299 ? `HTTP ${answer.status} with an unreadable body` : `HTTP ${answer.status}: ${this.redact(describeError(answer.json, String(answer.status), answer.status).message)}`;
        retryAfterMs = parseRetryAfter(answer.headers.get('retry-after'));
      } catch (err) {
        if (err instanceof MeteringAuthError) throw err;
        failure = this.redact(err instanceof Error ? err.message : String(err));
      }
      if (attempt >= this.maxAttempts) throw new AttemptsExhausted(`${failure} (gave up after ${attempt} attempt${attempt === 1 ? '' : 's'})`);
      if (retryAfterMs !== undefined && retryAfterMs > this.maxRetryAfterMs) {
        throw new AttemptsExhausted(`${failure}; Retry-After ${Math.ceil(retryAfterMs / 1000)} s is longer than we wait (${Math.ceil(this.maxRetryAfterMs / 1000)} s)`);
      }
      const delay = retryAfterMs ?? this.backoffDelay(attempt);
      this.counters.backoffMs += delay;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /** One HTTP request; throws an Error with a readable message on timeout or connection failure. */
  private async attempt(method: string, url: URL, payload: string | undefined, token: string, correlationId: string): Promise<HttpAnswer> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    const started = performance.now();
    this.counters.calls++;
    try {
      const res = await this.fetchImpl(url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          'x-ms-requestid': randomUUID(),
          'x-ms-correlationid': correlationId,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: payload,
        signal: controller.signal,
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json };
    } catch (err) {
      if (controller.signal.aborted) throw new Error(`no answer within ${this.timeoutMs} ms (timed out)`, { cause: err });
      throw new Error(`connection failed: ${networkCause(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
      this.counters.httpMs += performance.now() - started;
    }
  }

  /** A bearer token, cached until shortly before it expires; concurrent callers share one request. */
  private async token(): Promise<string> {
    const cached = this.cachedToken;
    if (cached && Date.now() < cached.expiresOnTimestamp - TOKEN_REFRESH_MARGIN_MS) return cached.token;
    this.tokenInFlight ??= this.fetchToken().finally(() => {
      this.tokenInFlight = undefined;
    });
    return (await this.tokenInFlight).token;
  }

  private async fetchToken(): Promise<AccessToken> {
    this.counters.tokenRequests++;
    let token: AccessToken | null;
    try {
      token = await this.credential.getToken(METERING_SCOPE);
    } catch (err) {
      // Identity errors carry Entra's AADSTS text, never the secret; the cause is left out so
      // nothing request-shaped ends up in our logs.
      const name = err instanceof Error ? err.name : 'Error';
      const message = err instanceof Error ? err.message : String(err);
      throw new MeteringAuthError(`could not get a token for the marketplace metering API (${METERING_SCOPE}): ${name}: ${this.redact(message)}`);
    }
    if (!token?.token) throw new MeteringAuthError(`the credential returned no token for ${METERING_SCOPE}`);
    this.cachedToken = token;
    return token;
  }

  /** Exponential backoff with "equal jitter": half the step fixed, half random. */
  private backoffDelay(attempt: number): number {
    const step = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (attempt - 1));
    return Math.round(step / 2 + (this.random() * step) / 2);
  }

  private unexpected(operation: string, answer: HttpAnswer): MeteringError {
    const { message } = describeError(answer.json, String(answer.status), answer.status);
    return new MeteringError(`${operation}: unexpected HTTP ${answer.status} from the metering API: ${this.redact(message)}`, answer.status);
  }

  /** Whatever a message says, it never carries a bearer token. */
  private redact(message: string): string {
    let out = message.replace(/Bearer\s+[\w\-.~+/]+=*/gi, 'Bearer [redacted]').replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, '[redacted]');
    const token = this.cachedToken?.token;
    if (token) out = out.split(token).join('[redacted]');
    return out;
  }
}

function toWire(event: UsageEvent): WireUsageEvent {
  const resource = event.resourceUri ?? event.resourceId;
  if (typeof resource !== 'string' || resource === '') throw new TypeError('a usage event needs a resourceUri or a resourceId');
  const rest = { quantity: event.quantity, dimension: event.dimension, effectiveStartTime: event.effectiveStartTime, planId: event.planId };
  return event.resourceUri !== undefined ? { resourceUri: event.resourceUri, ...rest } : { resourceId: resource, ...rest };
}

/**
 * Pairs each request with its result by resource, dimension and hour, since the documentation
 * does not promise the results come back in order. Same-key requests take same-key results in
 * order; anything left over is paired by position among the leftovers.
 */
function matchResults(request: WireUsageEvent[], results: WireUsageEventResult[]): Array<WireUsageEventResult | undefined> {
  const byKey = new Map<string, number[]>();
  results.forEach((r, i) => {
    for (const key of resultKeys(r)) {
      const list = byKey.get(key) ?? [];
      list.push(i);
      byKey.set(key, list);
    }
  });
  const used = new Set<number>();
  const matched: Array<WireUsageEventResult | undefined> = request.map((e) => {
    const list = byKey.get(usageKey(eventResource(e) ?? '', e.dimension, e.effectiveStartTime)) ?? [];
    const index = list.find((i) => !used.has(i));
    if (index === undefined) return undefined;
    used.add(index);
    return results[index];
  });
  const leftovers = results.filter((_, i) => !used.has(i));
  return matched.map((m) => m ?? leftovers.shift());
}

function resultKeys(r: WireUsageEventResult): string[] {
  const echoed = r.error?.additionalInfo?.acceptedMessage;
  const dimension = r.dimension ?? echoed?.dimension;
  const start = r.effectiveStartTime ?? echoed?.effectiveStartTime;
  if (typeof dimension !== 'string' || typeof start !== 'string') return [];
  const resources = [r.resourceUri, r.resourceId, echoed?.resourceUri, echoed?.resourceId].filter((x): x is string => typeof x === 'string' && x !== '');
  return [...new Set(resources.map((res) => usageKey(res, dimension, start)))];
}

function isRetryable(answer: HttpAnswer): boolean {
  if (answer.status === 408 || answer.status === 429 || answer.status >= 500) return true;
  // A 2xx whose body we could not read: the events may be recorded; sending again is safe.
  return answer.status >= 200 && answer.status <= 299 && answer.json === undefined;
}

/** Retry-After in seconds or as an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** `code: message (detail; detail)` from an API error object, whatever parts it has. */
function describeError(body: unknown, fallbackCode: string, httpStatus?: number): { status: string; message: string } {
  const error = (body && typeof body === 'object' ? body : {}) as WireError;
  const status = typeof error.code === 'string' && error.code !== '' ? error.code : fallbackCode;
  const details = Array.isArray(error.details)
    ? error.details.map((d) => [d.target, d.message].filter((x) => typeof x === 'string' && x !== '').join(': ')).filter((d) => d !== '')
    : [];
  const head = typeof error.message === 'string' && error.message !== '' ? error.message : httpStatus ? `HTTP ${httpStatus}` : 'no message';
  return { status, message: `${status}: ${head}${details.length ? ` (${details.join('; ')})` : ''}` };
}

function isExpired(body: unknown, status: string): boolean {
  if (status === 'Expired') return true;
  const error = (body && typeof body === 'object' ? body : {}) as WireError;
  return (error.details ?? []).some((d) => d.code === 'Expired');
}

function isoTime(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : value;
}

function networkCause(err: unknown): string {
  const cause = err instanceof Error ? (err as Error & { cause?: unknown }).cause : undefined;
  if (cause && typeof cause === 'object') {
    const c = cause as { code?: unknown; message?: unknown };
    if (typeof c.code === 'string') return typeof c.message === 'string' ? `${c.code} (${c.message})` : c.code;
    if (typeof c.message === 'string') return c.message;
  }
  return err instanceof Error ? err.message : String(err);
}
