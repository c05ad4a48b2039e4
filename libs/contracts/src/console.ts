import { z } from 'zod';
import { instant } from './fields';
import { CLUSTER_PATH } from './operations';
import { query, route } from './route';

const TEXT = z.string({ error: 'given once, as text' }).max(4096).optional();

export const SESSION = z.strictObject({
  user: z.strictObject({ tenantId: z.string(), userId: z.string(), name: z.string(), roles: z.array(z.string()) }),
  csrfToken: z.string().meta({ description: 'Send as X-CSRF-Token on every change' }),
  expiresAt: instant,
  operator: z.boolean().meta({ description: "Platform.SRE of the operator's tenant" }),
}).meta({ id: 'Session' });
export type SessionView = z.output<typeof SESSION>;

export const CONSOLE_ROUTES = {
  login: route({
    id: 'login', method: 'GET', path: '/auth/login', tag: 'console', auth: 'none',
    summary: 'Start the console sign-in: 302 to the identity provider (OpenID Connect, code + PKCE). returnTo: a path on the console (default /)',
    query: query({ returnTo: TEXT }), answers: { 302: 'redirect' },
  }),
  callback: route({
    id: 'callback', method: 'GET', path: '/auth/callback', tag: 'console', auth: 'none', hidden: true,
    summary: "The identity provider's redirect back",
    // Entra ID adds more (session_state, iss), which is taken and ignored.
    query: z.looseObject({ code: TEXT, state: TEXT, error: TEXT, error_description: TEXT }), answers: { 302: 'redirect' },
  }),
  session: route({
    id: 'session', method: 'GET', path: '/auth/session', tag: 'console', auth: 'session',
    summary: 'The signed-in user, the CSRF token for changes (X-CSRF-Token), the expiry, and whether the user is an operator; 401 not_signed_in', answers: { 200: SESSION },
  }),
  logout: route({
    id: 'logout', method: 'POST', path: '/auth/logout', tag: 'console', auth: 'session',
    summary: 'Sign out (needs X-CSRF-Token): the session ends, its Consul UI tokens are revoked, the cookie is cleared', answers: { 204: 'empty' },
  }),
  openConsulUi: route({
    id: 'openConsulUi', method: 'GET', path: '/sso/clusters/{clusterId}', tag: 'console', auth: 'session',
    summary: "Open the cluster's Consul UI signed in: 302 to <cluster UI origin>/_sso/start, which comes back with bind=<hash of its binding cookie>; then 302 to <cluster UI origin>/_sso/callback?code=... (a one-time code, ~30 s, redeemed only by that browser); not signed in: to /auth/login",
    params: CLUSTER_PATH,
    query: query({
      bind: z.string({ error: 'given once, as text' }).regex(/^[A-Za-z0-9_-]{43}$/, 'the hash /_sso/start sends: open the Consul UI from the console').optional(),
    }),
    answers: { 302: 'redirect' },
  }),
};
