import { ApiError } from '../../../libs/contracts/src';

/** The API refused (4xx) or failed (5xx): the contracts' ApiError, from its `{ error }` body. */
export { ApiError };

/** No answer from the API: refused, reset, DNS, or too slow. */
export class ApiUnreachable extends Error {
  constructor(
    readonly api: string,
    reason: string,
  ) {
    super(`cannot reach the API at ${api}: ${reason}`);
  }
}

const REQUEST_TIMEOUT_MS = 60_000;

function reasonOf(e: unknown): string {
  if (e instanceof Error && e.name === 'TimeoutError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = (e as { cause?: unknown }).cause;
  if (cause instanceof Error) return cause.message;
  return e instanceof Error ? e.message : String(e);
}

/** The REST API over fetch, with the caller's bearer token. Answers are the API's JSON, typed by the caller. */
export class ApiClient {
  private readonly base: string;

  constructor(
    base: string,
    private readonly token: string,
  ) {
    this.base = base.replace(/\/+$/, '');
  }

  /** `headers`: request headers of the route's own (a token a route writes into its answer travels there, never in the URL). */
  get<T>(path: string, headers: Record<string, string> = {}): Promise<T> {
    return this.send<T>('GET', path, undefined, headers);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.send<T>('POST', path, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>('PATCH', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>('PUT', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.send<T>('DELETE', path);
  }

  /** A GET whose answer is text (an invoice's CSV), returned as is; errors are the API's JSON as usual. */
  async getText(path: string, type = 'text/csv'): Promise<string> {
    return (await this.exchange('GET', path, undefined, `${type}, application/json;q=0.5`)).text;
  }

  private async send<T>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
    const { status, text } = await this.exchange(method, path, body, 'application/json', extra);
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined) throw new Error(`the API answered ${method} ${path} with ${status} and no JSON`);
    return parsed as T;
  }

  /** One request; a status of 400 or more becomes an ApiError from the `{ error }` body. */
  private async exchange(method: string, path: string, body: unknown, accept: string, extra: Record<string, string> = {}): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = { ...extra, authorization: `Bearer ${this.token}`, accept };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let status: number;
    let text: string;
    try {
      const res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      status = res.status;
      text = await res.text();
    } catch (e) {
      throw new ApiUnreachable(this.base, reasonOf(e));
    }
    if (status >= 400) throw ApiError.from(status, text);
    return { status, text };
  }
}
