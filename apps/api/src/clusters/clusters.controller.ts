import { Body, Controller, Headers, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ROUTES, type BodyOf } from '../../../../libs/contracts/src';
import { accepted } from '../accepted';
import { Caller, type Principal } from '../auth/principal';
import { Route } from '../validation/input';
import { ClustersService } from './clusters.service';

@Controller()
export class ClustersController {
  constructor(private readonly service: ClustersService) {}

  @Route(ROUTES.createCluster)
  async create(@Caller() caller: Principal, @Body() body: BodyOf<typeof ROUTES.createCluster>, @Headers('idempotency-key') key: string | undefined, @Res({ passthrough: true }) reply: FastifyReply) {
    const created = await this.service.create(caller, body, key);
    return accepted(reply, created.operation, created);
  }

  @Route(ROUTES.listClusters)
  list(@Caller() caller: Principal) {
    return this.service.list(caller);
  }

  @Route(ROUTES.getCluster)
  get(@Caller() caller: Principal, @Param('id') id: string) {
    return this.service.get(caller, id);
  }

  @Route(ROUTES.updateCluster)
  async update(@Caller() caller: Principal, @Param('id') id: string, @Body() body: BodyOf<typeof ROUTES.updateCluster>, @Res({ passthrough: true }) reply: FastifyReply) {
    const { cluster, operation } = await this.service.update(caller, id, body);
    if (!operation) return cluster;
    return accepted(reply, operation, { cluster, operation });
  }

  @Route(ROUTES.deleteCluster)
  async delete(@Caller() caller: Principal, @Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const operation = await this.service.delete(caller, id);
    return accepted(reply, operation, { operation });
  }

  @Route(ROUTES.upgradeCluster)
  async upgrade(@Caller() caller: Principal, @Param('id') id: string, @Body() body: BodyOf<typeof ROUTES.upgradeCluster>, @Res({ passthrough: true }) reply: FastifyReply) {
    const operation = await this.service.upgrade(caller, id, body.consulVersion);
    return accepted(reply, operation, { operation });
  }

  @Route(ROUTES.rotateCluster)
  async rotate(
    @Caller() caller: Principal, @Param('id') id: string, @Body() body: BodyOf<typeof ROUTES.rotateCluster>, @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const answer = await this.service.rotate(caller, id, body.what, key);
    return accepted(reply, answer.operation, answer);
  }

  @Route(ROUTES.clientConfig)
  clientConfig(@Caller() caller: Principal, @Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    reply.header('Cache-Control', 'no-store');
    return this.service.clientConfig(caller, id);
  }
}
