import { Controller, Headers, HttpCode, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ROLES, UnauthenticatedError } from '../../../../libs/core/src';
import { AnyRole } from '../auth/principal';
import { bearerToken, sessionCookie, sessionMaxAge } from './queues-board';
import { Input } from '../validation/input';

/**
 * A browser cannot send a bearer header when it navigates to the BullMQ dashboard
 * (/admin/queues, mounted by mountQueuesBoard): this puts the caller's token in an
 * HttpOnly cookie scoped to the board, which the board's guard accepts.
 */
@ApiTags('admin')
@ApiBearerAuth()
@Controller('admin/queues')
export class QueuesBoardController {
  @Post('session')
  @Input({})
  @HttpCode(200)
  @AnyRole(ROLES.sre)
  @ApiOperation({
    summary: 'Platform.SRE only: set the BullMQ dashboard session cookie (HttpOnly, Secure, SameSite=Strict, Path=/admin/queues, at most 1 h), then open /admin/queues',
  })
  session(@Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) reply: FastifyReply) {
    // The global AuthGuard has verified this very header (Platform.SRE); only the header counts here, not a cookie.
    const token = bearerToken(authorization);
    if (token === undefined) throw new UnauthenticatedError('unauthenticated', 'authentication failed: missing bearer token');
    const maxAge = sessionMaxAge(token);
    reply.header('set-cookie', sessionCookie(token, maxAge)).header('cache-control', 'no-store');
    return { expiresAt: new Date(Date.now() + maxAge * 1000).toISOString() };
  }
}
