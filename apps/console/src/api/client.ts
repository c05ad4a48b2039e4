import { ApiError } from '../../../../libs/contracts/src';

export { ApiError };

// The session's CSRF token, kept in memory only (never in storage): sent on every change.
let csrfToken: string | null = null;
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export interface Answer<T> {
  status: number;
  body: T;
}

/** A same-origin call with the session cookie; a non-2xx answer throws an ApiError. */
export async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
  const h: Record<string, string> = { accept: 'application/json', ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) h['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'The control plane could not be reached. Check your connection, then try again.');
  }
  const text = await res.text();
  if (!res.ok) throw ApiError.from(res.status, text, res.statusText);
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed as T };
}

export const get = async <T>(path: string): Promise<T> => (await call<T>('GET', path)).body;
export const post = async <T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T> => (await call<T>('POST', path, body ?? {}, headers)).body;
export const patch = async <T>(path: string, body: unknown): Promise<T> => (await call<T>('PATCH', path, body)).body;
export const put = async <T>(path: string, body: unknown): Promise<T> => (await call<T>('PUT', path, body)).body;
export const del = async <T>(path: string): Promise<T> => (await call<T>('DELETE', path)).body;
