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
  /** `mc_session=<value>`, for a Cookie header. */
  cookie: string;
  /** The raw Set-Cookie header the callback answered with. */
  setCookie: string;
  csrfToken: string;
  session: { user: { tenantId: string; userId: string; name: string; roles: string[] }; csrfToken: string; expiresAt: string; operator: boolean };
}

export async function manual(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { redirect: 'manual', ...init });
}

/** The authorization request the API redirects to, and the sign-in page's hidden request id. */
export async function openSignInPage(apiUrl: string, returnTo = '/'): Promise<{ authorizeUrl: URL; requestId: string; page: string }> {
  const login = await manual(`${apiUrl}/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
  assert.equal(login.status, 302, `GET /auth/login: ${login.status} ${await login.text()}`);
  const authorizeUrl = new URL(login.headers.get('location')!);
  const pageRes = await fetch(authorizeUrl);
  const page = await pageRes.text();
  assert.equal(pageRes.status, 200, `the sign-in page: ${pageRes.status} ${page.slice(0, 300)}`);
  const requestId = /name="request" value="([^"]+)"/.exec(page)?.[1];
  assert.ok(requestId, 'the sign-in page has a request id');
  return { authorizeUrl, requestId, page };
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
  const { authorizeUrl, requestId } = await openSignInPage(apiUrl, returnTo);
  const callback = await submitSignIn(authorizeUrl, requestId, who);
  const res = await manual(callback);
  assert.equal(res.status, 302, `GET /auth/callback: ${res.status} ${await res.text()}`);
  assert.equal(res.headers.get('location'), returnTo);
  const setCookie = res.headers.get('set-cookie') ?? '';
  const value = /^mc_session=([^;]+)/.exec(setCookie)?.[1];
  assert.ok(value, 'the callback sets mc_session');
  const cookie = `mc_session=${value}`;
  const s = await fetch(`${apiUrl}/auth/session`, { headers: { cookie } });
  assert.equal(s.status, 200);
  const session = (await s.json()) as SignedIn['session'];
  return { cookie, setCookie, csrfToken: session.csrfToken, session };
}
