import { Body, Controller, Delete, Get, Header, Headers, HttpCode, Param, Patch, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ROLES } from '../../../../libs/core/src';
import { AnyRole, Caller, type Principal } from '../auth/principal';
import { ClustersService, type Answer } from './clusters.service';
import { ClusterView, CreateClusterBody, CreateTokenBody, UpdateClusterBody } from './openapi';
import { Input, body, optionalBody, params, uuid } from '../validation/input';
import { z } from 'zod';
import { CREATE_CLUSTER_BODY, UPDATE_CLUSTER_BODY } from './inputs';

function send(reply: FastifyReply, a: Answer): unknown {
  reply.status(a.status);
  if (a.location) reply.header('Location', a.location);
  return a.body;
}

const CLUSTER_ID = params({ id: uuid('the cluster id') });

@ApiTags('clusters')
@ApiBearerAuth()
@Controller('v1/clusters')
export class ClustersController {
  constructor(private readonly service: ClustersService) {}

  @Post()
  @AnyRole(ROLES.write)
  @Input({ body: CREATE_CLUSTER_BODY })
  @ApiOperation({ summary: 'Create a cluster (202 with the create operation)' })
  @ApiBody({ type: CreateClusterBody })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Retrying with the same key returns the same answer' })
  async create(@Caller() caller: Principal, @Body() body: unknown, @Headers('idempotency-key') key: string | undefined, @Res({ passthrough: true }) reply: FastifyReply) {
    return send(reply, await this.service.create(caller, body, key));
  }

  @Get()
  @AnyRole(ROLES.read, ROLES.write)
  @Input({})
  @ApiOperation({ summary: "List the caller's tenant's clusters" })
  list(@Caller() caller: Principal) {
    return this.service.list(caller);
  }

  @Get(':id')
  @AnyRole(ROLES.read, ROLES.write)
  @Input({ params: CLUSTER_ID })
  @ApiOkResponse({ type: ClusterView })
  get(@Caller() caller: Principal, @Param('id') id: string) {
    return this.service.get(caller, id);
  }

  @Patch(':id')
  @AnyRole(ROLES.write)
  @Input({ params: CLUSTER_ID, body: UPDATE_CLUSTER_BODY })
  @ApiOperation({
    summary: 'Change a cluster: { snapshotPolicy: { intervalHours 1-24, retention 1-365 } } and { upgradePolicy: { mode, window } } (200) and/or { tier } (202 with a scale operation)',
  })
  @ApiBody({ type: UpdateClusterBody })
  async update(@Caller() caller: Principal, @Param('id') id: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    return send(reply, await this.service.update(caller, id, body));
  }

  @Delete(':id')
  @AnyRole(ROLES.write)
  @Input({ params: CLUSTER_ID })
  @HttpCode(202)
  async delete(@Caller() caller: Principal, @Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    return send(reply, await this.service.delete(caller, id));
  }

  @Post(':id/upgrade')
  @AnyRole(ROLES.write)
  @Input({ params: CLUSTER_ID, body: body({ consulVersion: z.string({ error: 'consulVersion must be a string (GET /v1/versions)' }).nullish() }) })
  @ApiOperation({ summary: 'Rolling upgrade to { consulVersion } from GET /v1/versions (202 with the operation)' })
  async upgrade(@Caller() caller: Principal, @Param('id') id: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    return send(reply, await this.service.upgrade(caller, id, body));
  }

  @Post(':id/rotate')
  @AnyRole(ROLES.write)
  @Input({ params: CLUSTER_ID, body: body({ what: z.string({ error: 'what must be a string' }).nullish() }) })
  @ApiOperation({ summary: 'Rotate { what: gossip-key | certificates | management-token | ca } with no downtime (202 with the operation)' })
  async rotate(@Caller() caller: Principal, @Param('id') id: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    return send(reply, await this.service.rotate(caller, id, body));
  }

  @Get(':id/client-config')
  @AnyRole(ROLES.read, ROLES.write)
  @Input({ params: CLUSTER_ID })
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'What a Consul client agent needs to join: CA, servers and (Clusters.ReadWrite only) the gossip key; ready to write as a client config' })
  clientConfig(@Caller() caller: Principal, @Param('id') id: string) {
    return this.service.clientConfig(caller, id);
  }

  @Post(':id/tokens')
  @AnyRole(ROLES.write)
  @Input({ params: CLUSTER_ID, body: optionalBody({ description: z.string({ error: 'description must be a string' }).max(256, 'description must be at most 256 characters').optional() }) })
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Create a new ACL management token; its secret is shown once' })
  @ApiBody({ type: CreateTokenBody, required: false })
  async createToken(@Caller() caller: Principal, @Param('id') id: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const description = body && typeof body === 'object' ? (body as { description?: string }).description : undefined;
    return send(reply, await this.service.createToken(caller, id, description));
  }
}
