import { httpRequest } from './stack';

/** One try of a request on one API replica: its answer's status, or the connection error it met. */
export interface Attempt {
  api: number;
  at: number;
  status?: number;
  error?: string;
}

/** A request as the client made it, with every try. */
export interface SentRequest {
  method: string;
  path: string;
  key?: string;
  attempts: Attempt[];
  status?: number;
  body?: any;
}

/** What a connection that broke looks like through fetch (undici): refused, reset, closed under it. */
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** The connection error behind a failed fetch, or undefined when it is anything else. */
export function connectionError(e: unknown): string | undefined {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code && CONNECTION_ERRORS.has(cause.code)) return cause.code;
  if (/socket hang up|other side closed/i.test(cause?.message ?? '')) return cause!.message;
  return undefined;
}

/**
 * The client a customer should write against several API replicas: requests go round-robin
 * across them, and a request whose connection broke (a replica killed under it, or not yet back)
 * is sent again to the next one, a POST with the same Idempotency-Key, so it is answered once
 * and never done twice. Every try is kept for the test to check.
 */
export class RoundRobinClient {
  readonly sent: SentRequest[] = [];
  /** Requests awaiting an answer from each replica now. */
  readonly inFlight: number[];
  private turn = 0;

  constructor(private readonly bases: readonly string[], private readonly token: string, private readonly maxAttempts = 30) {
    this.inFlight = bases.map(() => 0);
  }

  async send(method: string, path: string, opts: { body?: unknown; key?: string } = {}): Promise<{ status: number; body: any }> {
    const r: SentRequest = { method, path, key: opts.key, attempts: [] };
    this.sent.push(r);
    for (;;) {
      const api = this.turn++ % this.bases.length;
      this.inFlight[api]++;
      try {
        const res = await httpRequest(this.bases[api], method, path, { token: this.token, body: opts.body, headers: opts.key ? { 'idempotency-key': opts.key } : {} });
        r.attempts.push({ api, at: Date.now(), status: res.status });
        r.status = res.status;
        r.body = res.body;
        return res;
      } catch (e) {
        const code = connectionError(e);
        if (!code) throw e;
        r.attempts.push({ api, at: Date.now(), error: code });
        if (r.attempts.length >= this.maxAttempts) throw new Error(`${method} ${path}: no answer after ${r.attempts.length} tries: ${JSON.stringify(r.attempts)}`, { cause: e });
      } finally {
        this.inFlight[api]--;
      }
      // A short back-off before the next replica (all of them may be restarting at once).
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, 20 * r.attempts.length)));
    }
  }
}
