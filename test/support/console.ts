import assert from 'node:assert/strict';

/**
 * Signing in to the console the way a browser does, over HTTP: /auth/login, the local issuer's
 * sign-in page (its form submitted), /auth/callback, then GET /auth/session for the CSRF token.
 */

export interface ConsoleUser {
  user: string;
  tenantId: string;
  roles: string[];
}

export interface SignedIn {
  /** `__Host-mc_session=<value>`, for a Cookie header. */
  cookie: string;
  /** The raw Set-Cookie header the callback answered with. */
  setCookie: string;
  csrfToken: string;
  session: { user: { tenantId: string; userId: string; name: string; roles: string[] }; csrfToken: string; expiresAt: string; operator: boolean };
}

export async function manual(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { redirect: 'manual', ...init });
}

/** The login binding cookie a /auth/login answer set, for a Cookie header (`__Host-mc_login=<value>`). */
export function loginCookieOf(res: Response): string {
  const set = res.headers.get('set-cookie') ?? '';
  const value = /^__Host-mc_login=([A-Za-z0-9_-]{43}); Path=\/; Max-Age=600; HttpOnly; Secure; SameSite=Lax$/.exec(set)?.[1];
  assert.ok(value, `GET /auth/login sets the browser's sign-in binding: ${set}`);
  return `__Host-mc_login=${value}`;
}

/**
 * The authorization request the API redirects to, the sign-in page's hidden request id, and the
 * browser's login binding cookie (which the callback needs). `browser`: a binding cookie already held.
 */
export async function openSignInPage(apiUrl: string, returnTo = '/', browser?: string): Promise<{ authorizeUrl: URL; requestId: string; page: string; browser: string }> {
  const login = await manual(`${apiUrl}/auth/login?returnTo=${encodeURIComponent(returnTo)}`, browser ? { headers: { cookie: browser } } : {});
  assert.equal(login.status, 302, `GET /auth/login: ${login.status} ${await login.text()}`);
  const authorizeUrl = new URL(login.headers.get('location')!);
  const held = loginCookieOf(login);
  const pageRes = await fetch(authorizeUrl);
  const page = await pageRes.text();
  assert.equal(pageRes.status, 200, `the sign-in page: ${pageRes.status} ${page.slice(0, 300)}`);
  const requestId = /name="request" value="([^"]+)"/.exec(page)?.[1];
  assert.ok(requestId, 'the sign-in page has a request id');
  return { authorizeUrl, requestId, page, browser: held };
}

/** Submits the sign-in form; returns the issuer's redirect (the API's /auth/callback URL). */
export async function submitSignIn(authorizeUrl: URL, requestId: string, who: ConsoleUser | 'cancel'): Promise<string> {
  const form = new URLSearchParams({ request: requestId });
  if (who === 'cancel') form.set('action', 'cancel');
  else {
    form.set('action', 'sign-in');
    form.set('user', who.user);
    form.set('tenant', who.tenantId);
    for (const r of who.roles) form.append('role', r);
  }
  const res = await manual(new URL('/authorize', authorizeUrl).toString(), { method: 'POST', body: form });
  assert.equal(res.status, 302, `the sign-in form: ${res.status} ${await res.text()}`);
  return res.headers.get('location')!;
}

export async function signIn(apiUrl: string, who: ConsoleUser, returnTo = '/'): Promise<SignedIn> {
  const { authorizeUrl, requestId, browser } = await openSignInPage(apiUrl, returnTo);
  const callback = await submitSignIn(authorizeUrl, requestId, who);
  const res = await manual(callback, { headers: { cookie: browser } });
  assert.equal(res.status, 302, `GET /auth/callback: ${res.status} ${await res.text()}`);
  assert.equal(res.headers.get('location'), `${apiUrl}${returnTo}`, 'back where the sign-in started, on the console\'s own origin');
  const setCookie = res.headers.get('set-cookie') ?? '';
  const value = /^__Host-mc_session=([^;]+)/.exec(setCookie)?.[1];
  assert.ok(value, 'the callback sets __Host-mc_session');
  const cookie = `__Host-mc_session=${value}`;
  const s = await fetch(`${apiUrl}/auth/session`, { headers: { cookie } });
  assert.equal(s.status, 200);
  const session = (await s.json()) as SignedIn['session'];
  return { cookie, setCookie, csrfToken: session.csrfToken, session };
}
