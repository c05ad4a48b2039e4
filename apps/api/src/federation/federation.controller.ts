import { Controller, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ROUTES } from '../../../../libs/contracts/src';
import { Caller, type Principal } from '../auth/principal';
import { Route } from '../validation/input';
import { FederationService } from './federation.service';

@Controller()
export class FederationController {
  constructor(private readonly service: FederationService) {}

  @Route(ROUTES.createFederationToken)
  issueToken(@Caller() caller: Principal, @Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    // A bearer secret, shown this once.
    reply.header('Cache-Control', 'no-store');
    return this.service.issueToken(caller, id);
  }

  @Route(ROUTES.getFederation)
  federation(@Caller() caller: Principal, @Param('id') id: string) {
    return this.service.federation(caller, id);
  }
}
