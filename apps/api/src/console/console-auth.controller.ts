import { Controller, Get, HttpCode, Post, Query, Req, Res } from '@nestjs/common';
import { ApiCookieAuth, ApiExcludeEndpoint, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnauthenticatedError } from '../../../../libs/core/src';
import { Public } from '../auth/principal';
import { ConsoleAuthService } from './console-auth.service';
import { ConsoleOrigin, ConsoleSessions, SESSION_COOKIE, csrfRequired } from './console-sessions';
import { consoleLocation } from './return-to';
import { isDomainError, sendError } from './pages';
import { csrfMatches } from './session-secret';
import { Input, query } from '../validation/input';
import { z } from 'zod';

const TEXT = z.string({ error: 'given once, as text' }).max(4096).optional();
/** What an OpenID provider sends back; Entra ID adds more (session_state, iss), which is taken and ignored. */
const CALLBACK_QUERY = z.looseObject({ code: TEXT, state: TEXT, error: TEXT, error_description: TEXT });

const notSignedIn = () => new UnauthenticatedError('not_signed_in', 'no console session: sign in at /auth/login');

/**
 * The console's sign-in and session. Public routes: they read the session cookie themselves
 * (the bearer guard does not apply), and answer browsers with pages, scripts with JSON.
 */
@ApiTags('console')
@Public()
@Controller('auth')
export class ConsoleAuthController {
  constructor(private readonly auth: ConsoleAuthService, private readonly sessions: ConsoleSessions, private readonly origin: ConsoleOrigin) {}

  @Get('login')
  @Input({ query: query({ returnTo: TEXT }) })
  @ApiOperation({ summary: 'Start the console sign-in: 302 to the identity provider (OpenID Connect, code + PKCE). returnTo: a path on the console (default /)' })
  async login(@Query('returnTo') returnTo: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply) {
    try {
      const { url, setCookie } = await this.auth.login(returnTo, req.headers.cookie);
      return reply.header('cache-control', 'no-store').header('set-cookie', setCookie).redirect(url, 302);
    } catch (e) {
      if (isDomainError(e)) return sendError(req, reply, e);
      throw e;
    }
  }

  @Get('callback')
  @Input({ query: CALLBACK_QUERY })
  @ApiExcludeEndpoint()
  async callback(@Query() query: Record<string, unknown>, @Req() req: FastifyRequest, @Res() reply: FastifyReply) {
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

  @Get('session')
  @Input({})
  @ApiCookieAuth(SESSION_COOKIE)
  @ApiOperation({ summary: 'The signed-in user, the CSRF token for changes (X-CSRF-Token), the expiry, and whether the user is an operator; 401 not_signed_in' })
  async session(@Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const found = await this.sessions.resolve(req.headers.cookie);
    reply.header('cache-control', 'no-store');
    if (!found) throw notSignedIn();
    return this.auth.view(found.session, found.secret);
  }

  @Post('logout')
  @Input({})
  @HttpCode(204)
  @ApiCookieAuth(SESSION_COOKIE)
  @ApiOperation({ summary: 'Sign out (needs X-CSRF-Token): the session ends, its Consul UI tokens are revoked, the cookie is cleared' })
  async logout(@Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    const found = await this.sessions.resolve(req.headers.cookie);
    if (!found) throw notSignedIn();
    if (!csrfMatches(found.secret, req.headers['x-csrf-token'])) throw csrfRequired();
    await this.auth.logout(found.secret);
    reply.header('set-cookie', this.sessions.clearCookie()).header('cache-control', 'no-store');
  }
}
