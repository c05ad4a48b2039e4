import { ValidationError } from '../../../../libs/core/src';

const BASE = 'https://console.invalid';

/** Characters a browser strips from a URL (tab, newline) or reads as a path separator (backslash), and every other control character. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const UNSAFE = /[\u0000-\u001f\u007f\\]/;

/**
 * A same-origin path as a browser would follow it: starts with one `/` (never `//` or `/\`,
 * which a browser reads as another host), has no character a browser strips or rewrites, and
 * is its own WHATWG normal form, so no later parse (ours or the browser's) turns it into
 * something else.
 */
export function isConsolePath(value: string): boolean {
  if (!value.startsWith('/') || value.startsWith('//') || UNSAFE.test(value)) return false;
  let url: URL;
  try {
    url = new URL(value, BASE);
  } catch {
    return false;
  }
  return url.origin === BASE && `${url.pathname}${url.search}${url.hash}` === value;
}

/**
 * Where a sign-in returns: only a path on the console's own origin. Refused (400, not silently
 * replaced) when it could lead elsewhere: an absolute URL, a scheme-relative `//host`, a
 * backslash (browsers read `/\host` as `//host`), control characters, or more than 2 KB.
 * The decision is made on the value that is kept and sent, after the normalisation a browser
 * also does (dot segments, percent-encoded dots: `/%2e%2e//evil.example` normalises to
 * `//evil.example`, another host), not only on what was given.
 * Returns the normalised path, query and fragment; `/` when none is given.
 */
export function safeReturnTo(raw: unknown): string {
  if (raw === undefined || raw === '') return '/';
  const fail = (why: string) =>
    new ValidationError('invalid_returnTo', `returnTo must be a path on this console, such as /clusters (${why})`, { field: 'returnTo' });
  if (typeof raw !== 'string') throw fail('give it once');
  if (raw.length > 2048) throw fail('at most 2048 characters');
  if (!raw.startsWith('/') || raw.startsWith('//')) throw fail('it must start with a single /');
  if (UNSAFE.test(raw)) throw fail('no backslashes or control characters');
  let url: URL;
  try {
    url = new URL(raw, BASE);
  } catch {
    throw fail('not a valid path');
  }
  if (url.origin !== BASE) throw fail('it leads to another origin');
  const normalised = `${url.pathname}${url.search}${url.hash}`;
  if (!isConsolePath(normalised)) throw fail('once its dot segments and percent-encodings are resolved it leads to another origin');
  return normalised;
}

/**
 * The Location of a redirect to a console path: absolute, on the console's own origin, so a
 * browser never reads it as a host of its own. A path that is not a console path (a value
 * stored before these rules) goes to the console's home instead.
 */
export function consoleLocation(consoleOrigin: string, path: string): string {
  const location = `${consoleOrigin}${isConsolePath(path) ? path : '/'}`;
  return new URL(location).origin === new URL(consoleOrigin).origin ? location : `${consoleOrigin}/`;
}
