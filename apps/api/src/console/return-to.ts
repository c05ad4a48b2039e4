import { ValidationError } from '../../../../libs/core/src';

const BASE = 'https://console.invalid';

/**
 * Where a sign-in returns: only a path on the console's own origin. Refused (400, not silently
 * replaced) when it could lead elsewhere: an absolute URL, a scheme-relative `//host`, a
 * backslash (browsers read `/\host` as `//host`), control characters, or more than 2 KB.
 * Returns the normalised path, query and fragment; `/` when none is given.
 */
export function safeReturnTo(raw: unknown): string {
  if (raw === undefined || raw === '') return '/';
  const fail = (why: string) =>
    new ValidationError('invalid_returnTo', `returnTo must be a path on this console, such as /clusters (${why})`, { field: 'returnTo' });
  if (typeof raw !== 'string') throw fail('give it once');
  if (raw.length > 2048) throw fail('at most 2048 characters');
  if (!raw.startsWith('/') || raw.startsWith('//')) throw fail('it must start with a single /');
  if (raw.includes('\\') || [...raw].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) throw fail('no backslashes or control characters');
  let url: URL;
  try {
    url = new URL(raw, BASE);
  } catch {
    throw fail('not a valid path');
  }
  if (url.origin !== BASE) throw fail('it leads to another origin');
  return `${url.pathname}${url.search}${url.hash}`;
}
