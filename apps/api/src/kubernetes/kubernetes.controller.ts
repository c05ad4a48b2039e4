import { Controller, Headers, Param, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ROUTES, type QueryOf } from '../../../../libs/contracts/src';
import { Caller, type Principal } from '../auth/principal';
import { Route } from '../validation/input';
import { KubernetesService } from './kubernetes.service';

@Controller()
export class KubernetesController {
  constructor(private readonly service: KubernetesService) {}

  @Route(ROUTES.kubernetesConfig)
  config(
    @Caller() caller: Principal, @Param('id') id: string, @Query() query: QueryOf<typeof ROUTES.kubernetesConfig>,
    @Headers('x-consul-token') bootstrapToken: string | undefined, @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    // The answer holds the gossip key (and the token when one was sent): nothing may keep it.
    reply.header('Cache-Control', 'no-store');
    return this.service.config(caller, id, { bootstrapToken, k8sAuthMethodHost: query.k8sAuthMethodHost });
  }
}
