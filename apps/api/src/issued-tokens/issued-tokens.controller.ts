import { Body, Controller, Delete, Get, Header, HttpCode, Param, Post, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse, ApiBearerAuth, ApiBody, ApiCreatedResponse, ApiForbiddenResponse, ApiGoneResponse, ApiOkResponse, ApiOperation, ApiResponse, ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ROLES } from '../../../../libs/core/src';
import { AnyRole, Caller, type Principal } from '../auth/principal';
import { send } from '../clusters/clusters.controller';
import { CreateTokenBody, IssuedTokenListView, TokenPendingView, TokenRevokeView, TokenSecretView } from './openapi';
import { IssuedTokensService } from './issued-tokens.service';
import { Input, optionalBody, params, uuid } from '../validation/input';
import { z } from 'zod';

const CLUSTER_ID = params({ id: uuid('the cluster id') });
const OPERATION_ID = params({ id: uuid('the operation id') });

@ApiTags('tokens')
@ApiBearerAuth()
@Controller('v1')
export class IssuedTokensController {
  constructor(private readonly service: IssuedTokensService) {}

  @Post('clusters/:id/tokens')
  @AnyRole(ROLES.write)
  @Input({ params: CLUSTER_ID, body: optionalBody({ description: z.string({ error: 'description must be a string' }).optional() }) })
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Create an ACL management token. 201 with its secret when it is made within TOKEN_WAIT_MS (default 30 s); else 202 with the operation and a collect link, where the secret is handed out once',
  })
  @ApiBody({ type: CreateTokenBody, required: false })
  @ApiCreatedResponse({ type: TokenSecretView, description: 'Made in time: the secret, shown this once (the collect link then answers 410)' })
  @ApiAcceptedResponse({ type: TokenPendingView, description: 'Still being made: collect the secret through the operation once it has Succeeded' })
  async create(@Caller() caller: Principal, @Param('id') id: string, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    return send(reply, await this.service.create(caller, id, body));
  }

  @Post('operations/:id/token')
  @HttpCode(200)
  @AnyRole(ROLES.write, ROLES.sre)
  @Input({ params: OPERATION_ID })
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: "Collect the secret of the token a create-token operation made: once, by the user who asked for it (or an operator, Platform.SRE of the operator's tenant). "
      + 'A POST because it uses the secret up: with the console session it needs X-CSRF-Token like every change. A second collect, or one after the collection window '
      + '(TOKEN_COLLECT_WINDOW_MS, the token is then revoked), answers 410',
  })
  @ApiOkResponse({ type: TokenSecretView })
  @ApiForbiddenResponse({ description: 'token_not_requester: another user of the tenant (nothing is handed out or used up); forbidden: a role is missing; csrf_required' })
  @ApiGoneResponse({ description: 'token_already_collected | token_expired_uncollected | token_revoked | token_unavailable: the secret is not handed out again; revoke the token and create a new one' })
  collect(@Caller() caller: Principal, @Param('id') id: string) {
    return this.service.collect(caller, id);
  }

  /** The former collect route: a GET must not use a secret up (a link, an image or a prefetch would). Kept to say so. */
  @Get('operations/:id/token')
  @AnyRole(ROLES.read, ROLES.write, ROLES.sre)
  @Input({ params: OPERATION_ID })
  @ApiOperation({ summary: 'No longer collects: answers 405 with Allow: POST. Collect with POST /v1/operations/{id}/token', deprecated: true })
  @ApiResponse({ status: 405, description: 'method_not_allowed: use POST; nothing was read or used up' })
  collectByGet(@Param('id') id: string): never {
    return this.service.collectByGet(id);
  }

  @Get('clusters/:id/tokens')
  @AnyRole(ROLES.read, ROLES.write)
  @Input({ params: CLUSTER_ID })
  @ApiOperation({ summary: 'The tokens made through the control plane on this cluster, newest first (never their secrets)' })
  @ApiOkResponse({ type: IssuedTokenListView })
  list(@Caller() caller: Principal, @Param('id') id: string) {
    return this.service.list(caller, id);
  }

  @Delete('clusters/:id/tokens/:accessorId')
  @AnyRole(ROLES.write)
  @Input({ params: params({ id: uuid('the cluster id'), accessorId: uuid('a token AccessorID (as GET /v1/clusters/{id}/tokens lists them)', 'invalid_accessor_id') }) })
  @ApiOperation({
    summary: 'Revoke a token made through the control plane: 202 with a revoke-token operation that deletes it in Consul (repeated while it runs: the same operation). The management token and tokens made elsewhere are refused',
  })
  @ApiAcceptedResponse({ type: TokenRevokeView })
  async revoke(@Caller() caller: Principal, @Param('id') id: string, @Param('accessorId') accessorId: string, @Res({ passthrough: true }) reply: FastifyReply) {
    return send(reply, await this.service.revoke(caller, id, accessorId));
  }
}
