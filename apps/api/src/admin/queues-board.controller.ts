import { ROUTES } from '../../../../libs/contracts/src';
import { Controller, Headers, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { UnauthenticatedError } from '../../../../libs/core/src';
import { bearerToken, sessionCookie, sessionMaxAge } from './queues-board';
import { Route } from '../validation/input';

/**
 * A browser cannot send a bearer header when it navigates to the BullMQ dashboard
 * (/admin/queues, mounted by mountQueuesBoard): this puts the caller's token in an
 * HttpOnly cookie scoped to the board, which the board's guard accepts.
 */
@Controller()
export class QueuesBoardController {
  @Route(ROUTES.queuesSession)
  session(@Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) reply: FastifyReply) {
    // The global AuthGuard has verified this very header (Platform.SRE); only the header counts here, not a cookie.
    const token = bearerToken(authorization);
    if (token === undefined) throw new UnauthenticatedError('unauthenticated', 'authentication failed: missing bearer token');
    const maxAge = sessionMaxAge(token);
    reply.header('set-cookie', sessionCookie(token, maxAge)).header('cache-control', 'no-store');
    return { expiresAt: new Date(Date.now() + maxAge * 1000).toISOString() };
  }
}
