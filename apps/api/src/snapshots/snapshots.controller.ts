import { Body, Controller, Headers, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ROUTES, type BodyOf } from '../../../../libs/contracts/src';
import { Caller, type Principal } from '../auth/principal';
import { accepted } from '../accepted';
import { Route } from '../validation/input';
import { SnapshotsService } from './snapshots.service';

@Controller()
export class SnapshotsController {
  constructor(private readonly service: SnapshotsService) {}

  @Route(ROUTES.takeSnapshot)
  async create(
    @Caller() caller: Principal, @Param('clusterId') clusterId: string, @Body() body: BodyOf<typeof ROUTES.takeSnapshot>, @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const taken = await this.service.create(caller, clusterId, body?.name, key);
    return accepted(reply, taken.operation, taken);
  }

  @Route(ROUTES.listSnapshots)
  list(@Caller() caller: Principal, @Param('clusterId') clusterId: string) {
    return this.service.list(caller, clusterId);
  }

  @Route(ROUTES.renameSnapshot)
  rename(@Caller() caller: Principal, @Param('clusterId') clusterId: string, @Param('snapshotId') snapshotId: string, @Body() body: BodyOf<typeof ROUTES.renameSnapshot>) {
    return this.service.rename(caller, clusterId, snapshotId, body.name);
  }

  @Route(ROUTES.deleteSnapshot)
  async delete(@Caller() caller: Principal, @Param('clusterId') clusterId: string, @Param('snapshotId') snapshotId: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const operation = await this.service.delete(caller, clusterId, snapshotId);
    return accepted(reply, operation, { operation });
  }

  @Route(ROUTES.restoreSnapshot)
  async restore(
    @Caller() caller: Principal, @Param('clusterId') clusterId: string, @Param('snapshotId') snapshotId: string,
    @Body() body: BodyOf<typeof ROUTES.restoreSnapshot>, @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const operation = await this.service.restore(caller, clusterId, snapshotId, body?.takeSnapshot ?? true);
    return accepted(reply, operation, { operation });
  }
}
