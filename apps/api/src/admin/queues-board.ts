import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BoardServerAdapter } from '@bull-board/fastify';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, NotFoundError, ROLES, UnauthenticatedError, UnavailableError, errorBody, type Config, type OperationsQueue } from '../../../../libs/core/src';
import { AuthenticationError, IdentityProviderUnavailableError, type BearerAuthenticator, type Principal } from '../auth/bearer-authenticator';
import { cookieValue } from '../auth/cookies';
import { missingRole } from '../auth/principal';
import { ConsoleOrigin, ConsoleSessions, csrfRequired, isMutating, principalOf } from '../console/console-sessions';
import { csrfMatches } from '../console/session-secret';
import { AUTHENTICATOR, CONFIG, QUEUE } from '../tokens';

/** Where the BullMQ dashboard lives: its page, its static assets and its JSON API (`/api/...`). */
export const QUEUES_BOARD_PATH = '/admin/queues';
/** The cookie `POST /admin/queues/session` sets, holding the caller's bearer token for browser navigation. */
export const QUEUES_SESSION_COOKIE = 'hcs_queues_session';
/** The longest a board session cookie lives (never longer than the token in it). */
export const QUEUES_SESSION_MAX_AGE_S = 3600;

const BEARER = /^[ \t]*bearer[ \t]+(\S+)[ \t]*$/i;

/** The bearer token of an `Authorization` header, if it has the form of one. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
}

/** A `Set-Cookie` value for the board session; `maxAgeS` 0 clears it. */
export function sessionCookie(token: string, maxAgeS: number): string {
  return `${QUEUES_SESSION_COOKIE}=${token}; Path=${QUEUES_BOARD_PATH}; Max-Age=${maxAgeS}; HttpOnly; Secure; SameSite=Strict`;
}

/** Seconds the token in a session cookie may live: an hour, or less if the (already verified) token expires sooner. */
export function sessionMaxAge(token: string, nowMs = Date.now()): number {
  let exp: unknown;
  try {
    exp = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown }).exp;
  } catch {
    exp = undefined;
  }
  const left = typeof exp === 'number' ? Math.floor(exp - nowMs / 1000) : QUEUES_SESSION_MAX_AGE_S;
  return Math.max(0, Math.min(QUEUES_SESSION_MAX_AGE_S, left));
}

/** The API's error shape, as the Nest error filter writes it (raw Fastify routes do not pass through it). */
function sendError(reply: FastifyReply, e: DomainError): FastifyReply {
  if (e.status === 401) reply.header('WWW-Authenticate', 'Bearer error="invalid_token"');
  return reply
    .status(e.status)
    .header('cache-control', 'no-store')
    .send(errorBody(e));
}

/**
 * Bearer authentication as the rest of the API (AuthGuard), plus, when there is no
 * Authorization header, the board session cookie or else the console's session cookie, and the
 * Platform.SRE role from the operator's tenant (missingRole). With the console cookie a change
 * (the board's retry, clean, pause...) must come from the console's own origin: the board's
 * page sends no X-CSRF-Token, but a browser sends Origin with every such request.
 */
async function authorize(
  authenticator: BearerAuthenticator, sessions: ConsoleSessions, origin: ConsoleOrigin, operatorTenantId: string | undefined, req: FastifyRequest,
): Promise<DomainError | undefined> {
  const fromCookie = req.headers.authorization === undefined ? cookieValue(req.headers.cookie, QUEUES_SESSION_COOKIE) : undefined;
  if (req.headers.authorization === undefined && fromCookie === undefined) {
    const found = await sessions.resolve(req.headers.cookie);
    if (found) {
      if (isMutating(req.method) && req.headers.origin !== origin.value && !csrfMatches(found.secret, req.headers['x-csrf-token'])) return csrfRequired();
      return missingRole(principalOf(found.session), [ROLES.sre], operatorTenantId);
    }
  }
  let principal: Principal;
  try {
    principal = await authenticator.authenticate(fromCookie === undefined ? { headers: req.headers } : { headers: { authorization: `Bearer ${fromCookie}` } });
  } catch (e) {
    if (e instanceof AuthenticationError) return new UnauthenticatedError('unauthenticated', `authentication failed: ${e.reason}`);
    if (e instanceof IdentityProviderUnavailableError) return new UnavailableError('identity_provider_unavailable', 'tokens cannot be checked right now; try again shortly');
    throw e;
  }
  return missingRole(principal, [ROLES.sre], operatorTenantId);
}

/**
 * Mounts the BullMQ dashboard (@bull-board) over the API's operations queue (the one the
 * API enqueues on: same Redis connection, same QUEUE_PREFIX) at /admin/queues. Every route
 * under it, known or not, first passes the Platform.SRE check above. The session cookie is
 * set by QueuesBoardController (POST /admin/queues/session), a Nest route outside this scope
 * that takes the Authorization header only.
 */
export function mountQueuesBoard(app: NestFastifyApplication): void {
  const queue = app.get<OperationsQueue>(QUEUE);
  const authenticator = app.get<BearerAuthenticator>(AUTHENTICATOR);
  const { OPERATOR_TENANT_ID } = app.get<Config>(CONFIG);
  const sessions = app.get(ConsoleSessions);
  const consoleOrigin = app.get(ConsoleOrigin);
  const serverAdapter = new BoardServerAdapter();
  serverAdapter.setBasePath(QUEUES_BOARD_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(queue, { description: `Redis key prefix ${queue.opts.prefix ?? 'bull'}` })],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Managed Consul queues' } },
  });

  const fastify = app.getHttpAdapter().getInstance() as unknown as FastifyInstance;
  void fastify.register(
    async (scope) => {
      scope.addHook('onRequest', async (req, reply) => {
        const denied = await authorize(authenticator, sessions, consoleOrigin, OPERATOR_TENANT_ID, req);
        if (denied) {
          // A session cookie that no longer authenticates is of no use to the browser: drop it.
          if (denied.status === 401 && req.headers.authorization === undefined && cookieValue(req.headers.cookie, QUEUES_SESSION_COOKIE) !== undefined) {
            reply.header('set-cookie', sessionCookie('', 0));
          }
          return sendError(reply, denied);
        }
        reply.header('cache-control', 'no-store');
        return undefined;
      });
      scope.setNotFoundHandler((req, reply) => sendError(reply, new NotFoundError('not_found', `no route ${req.method} ${req.url.split('?')[0]!}`)));
      await scope.register(serverAdapter.registerPlugin());
    },
    { prefix: QUEUES_BOARD_PATH },
  );
}
