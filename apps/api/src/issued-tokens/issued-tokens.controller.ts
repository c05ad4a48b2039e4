import { Body, Controller, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ROUTES, type BodyOf } from '../../../../libs/contracts/src';
import { Caller, type Principal } from '../auth/principal';
import { accepted } from '../accepted';
import { Route } from '../validation/input';
import { IssuedTokensService } from './issued-tokens.service';

@Controller()
export class IssuedTokensController {
  constructor(private readonly service: IssuedTokensService) {}

  @Route(ROUTES.createToken)
  async create(@Caller() caller: Principal, @Param('id') id: string, @Body() body: BodyOf<typeof ROUTES.createToken>, @Res({ passthrough: true }) reply: FastifyReply) {
    reply.header('Cache-Control', 'no-store');
    const r = await this.service.create(caller, id, body?.description);
    if ('made' in r) {
      reply.status(201);
      return r.made;
    }
    return accepted(reply, r.pending.operation, r.pending);
  }

  @Route(ROUTES.collectToken)
  collect(@Caller() caller: Principal, @Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    reply.header('Cache-Control', 'no-store');
    return this.service.collect(caller, id);
  }

  /** The former collect route: a GET must not use a secret up (a link, an image or a prefetch would). Kept to say so. */
  @Route(ROUTES.collectTokenByGet)
  collectByGet(@Param('id') id: string): never {
    return this.service.collectByGet(id);
  }

  @Route(ROUTES.listTokens)
  list(@Caller() caller: Principal, @Param('id') id: string) {
    return this.service.list(caller, id);
  }

  @Route(ROUTES.revokeToken)
  async revoke(@Caller() caller: Principal, @Param('id') id: string, @Param('accessorId') accessorId: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const r = await this.service.revoke(caller, id, accessorId);
    return accepted(reply, { id: r.operationId }, r.answer);
  }
}
