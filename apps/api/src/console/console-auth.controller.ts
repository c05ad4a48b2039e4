import { ROUTES, type QueryOf } from '../../../../libs/contracts/src';
import { Controller, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnauthenticatedError } from '../../../../libs/core/src';
import { ConsoleAuthService } from './console-auth.service';
import { ConsoleOrigin, ConsoleSessions, csrfRequired } from './console-sessions';
import { consoleLocation } from './return-to';
import { isDomainError, sendError } from './pages';
import { csrfMatches } from './session-secret';
import { Route } from '../validation/input';

const notSignedIn = () => new UnauthenticatedError('not_signed_in', 'no console session: sign in at /auth/login');

/**
 * The console's sign-in and session. Public routes: they read the session cookie themselves
 * (the bearer guard does not apply), and answer browsers with pages, scripts with JSON.
 */
@Controller()
export class ConsoleAuthController {
  constructor(private readonly auth: ConsoleAuthService, private readonly sessions: ConsoleSessions, private readonly origin: ConsoleOrigin) {}

  @Route(ROUTES.login)
  async login(@Query('returnTo') returnTo: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply) {
    try {
      const { url, setCookie } = await this.auth.login(returnTo, req.headers.cookie);
      return reply.header('cache-control', 'no-store').header('set-cookie', setCookie).redirect(url, 302);
    } catch (e) {
      if (isDomainError(e)) return sendError(req, reply, e);
      throw e;
    }
  }

  @Route(ROUTES.callback)
  async callback(@Query() query: QueryOf<typeof ROUTES.callback>, @Req() req: FastifyRequest, @Res() reply: FastifyReply) {
    try {
      const { secret, session, returnTo } = await this.auth.callback(query, req.headers.cookie);
      const maxAge = Math.floor((session.expiresAt.getTime() - Date.now()) / 1000);
      return reply
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer')
        .header('set-cookie', this.sessions.cookie(secret, maxAge))
        .redirect(consoleLocation(this.origin.value, returnTo), 302);
    } catch (e) {
      if (isDomainError(e)) return sendError(req, reply, e, [{ href: '/auth/login', label: 'Sign in again' }, { href: '/', label: 'Back to the console' }]);
      throw e;
    }
  }

  @Route(ROUTES.session)
  async session(@Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const found = await this.sessions.resolve(req.headers.cookie);
    reply.header('cache-control', 'no-store');
    if (!found) throw notSignedIn();
    return this.auth.view(found.session, found.secret);
  }

  @Route(ROUTES.logout)
  async logout(@Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const found = await this.sessions.resolve(req.headers.cookie);
    if (!found) throw notSignedIn();
    if (!csrfMatches(found.secret, req.headers['x-csrf-token'])) throw csrfRequired();
    await this.auth.logout(found.secret);
    reply.header('set-cookie', this.sessions.clearCookie()).header('cache-control', 'no-store');
  }
}
