import { Body, Controller, Delete, Get, Param, Patch, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ROLES } from '../../../../libs/core/src';
import { AnyRole, Caller, type Principal } from '../auth/principal';
import { SnapshotsService } from './snapshots.service';
import { Input, body, optionalBody, params, uuid } from '../validation/input';
import { z } from 'zod';

function accepted(reply: FastifyReply, a: { location: string; body: unknown }) {
  reply.status(202).header('Location', a.location);
  return a.body;
}

const CLUSTER = params({ clusterId: uuid('the cluster id') });
const SNAPSHOT = params({ clusterId: uuid('the cluster id'), snapshotId: uuid('the snapshot id') });
const NAME = z.string({ error: 'name must be a string' });

@ApiTags('snapshots')
@ApiBearerAuth()
@Controller('v1/clusters/:clusterId/snapshots')
export class SnapshotsController {
  constructor(private readonly service: SnapshotsService) {}

  @Post()
  @AnyRole(ROLES.write)
  @Input({ params: CLUSTER, body: optionalBody({ name: NAME.optional() }) })
  @ApiOperation({ summary: 'Take a manual snapshot (202 with the operation); body { name? }' })
  async create(@Caller() caller: Principal, @Param('clusterId') clusterId: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    return accepted(reply, await this.service.create(caller, clusterId, body));
  }

  @Get()
  @AnyRole(ROLES.read, ROLES.write)
  @Input({ params: CLUSTER })
  list(@Caller() caller: Principal, @Param('clusterId') clusterId: string) {
    return this.service.list(caller, clusterId);
  }

  @Patch(':snapshotId')
  @AnyRole(ROLES.write)
  @Input({ params: SNAPSHOT, body: body({ name: NAME.nullish() }) })
  @ApiOperation({ summary: 'Rename a snapshot; body { name }' })
  rename(@Caller() caller: Principal, @Param('clusterId') clusterId: string, @Param('snapshotId') snapshotId: string, @Body() body: unknown) {
    return this.service.rename(caller, clusterId, snapshotId, body);
  }

  @Delete(':snapshotId')
  @AnyRole(ROLES.write)
  @Input({ params: SNAPSHOT })
  async delete(@Caller() caller: Principal, @Param('clusterId') clusterId: string, @Param('snapshotId') snapshotId: string, @Res({ passthrough: true }) reply: FastifyReply) {
    return accepted(reply, await this.service.delete(caller, clusterId, snapshotId));
  }

  @Post(':snapshotId/restore')
  @AnyRole(ROLES.write)
  @Input({ params: SNAPSHOT, body: optionalBody({ takeSnapshot: z.boolean({ error: 'takeSnapshot must be true or false' }).optional() }) })
  @ApiOperation({ summary: 'Restore a snapshot; a pre-restore snapshot is taken first unless { takeSnapshot: false }' })
  async restore(@Caller() caller: Principal, @Param('clusterId') clusterId: string, @Param('snapshotId') snapshotId: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    return accepted(reply, await this.service.restore(caller, clusterId, snapshotId, body));
  }
}
