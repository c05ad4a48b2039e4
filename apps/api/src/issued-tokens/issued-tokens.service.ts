import { Inject, Injectable } from '@nestjs/common';
import {
  TenantClusterRepository, ClusterState, ConflictError, ForbiddenError, GoneError, IssuedTokenRepository, MethodNotAllowedError, NotFoundError, OperationKind, TenantOperationRepository,
  OperationState, ROLES, SecretName, SecretRepository, TERMINAL_OPERATION_STATES, TokenRevokeReason, UnprocessableError, isUuid,
  type CollectOutcome, type Config, type Operation, type TokenCollector,
} from '../../../../libs/core/src';
import { missingRole, type Principal } from '../auth/principal';
import type { AnswerOf, PendingTokenView, ROUTES, TokenSecretView } from '../../../../libs/contracts/src';
import { ClustersService } from '../clusters/clusters.service';
import { operationView } from '../clusters/views';
import { OperationDispatcher } from '../operation.dispatcher';
import { CONFIG } from '../tokens';
import { collectLink, issuedTokenView } from './views';

/** States in which a cluster's servers answer, so a token can be made or revoked. */
const SERVING: ReadonlySet<string> = new Set([ClusterState.Running, ClusterState.Updating]);

/**
 * Tokens customers make through the control plane. The worker creates them
 * (POST queues a create-token operation); their secret is handed out once,
 * either in the answer to POST when the operation ends within TOKEN_WAIT_MS,
 * or later through POST /v1/operations/{id}/token, by the user who asked for
 * it or an operator. Revoking queues a
 * revoke-token operation. The API never talks to the cluster itself.
 */
@Injectable()
export class IssuedTokensService {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly dispatcher: OperationDispatcher,
    private readonly clusters: ClustersService,
    private readonly clusterRows: TenantClusterRepository,
    private readonly operations: TenantOperationRepository,
    private readonly tokens: IssuedTokenRepository,
    private readonly secrets: SecretRepository,
  ) {}

  async create(caller: Principal, clusterId: string, description: string | undefined): Promise<{ made: TokenSecretView } | { pending: PendingTokenView }> {
    const cluster = await this.clusters.require(caller, clusterId);
    if (cluster.state !== ClusterState.Running) throw new ConflictError('cluster_not_running', `the cluster is ${cluster.state}; a token is available once it is Running`);
    const op = await this.clusterRows.addOperation(cluster, OperationKind.CreateToken, caller.userId, 'cluster.token.requested', {
      description: description || `created by ${caller.name} through the control plane`,
    });
    await this.dispatcher.dispatch(op.id);
    const done = await this.waitForOperation(caller.tenantId, op.id, this.config.TOKEN_WAIT_MS);
    if (done.state === OperationState.Succeeded) {
      // Handed out in this answer: marked collected, so the collect link answers 410 from now on.
      const r = await this.tokens.collect(op.id, { as: 'requester', tenantId: caller.tenantId, userId: caller.userId }, 'wait');
      if (r.outcome !== 'collected') throw refusal(r, op.id);
      return { made: secretView(r) };
    }
    if (TERMINAL_OPERATION_STATES.has(done.state)) throw failed(done);
    // Still running: the caller collects the secret once through the operation.
    return {
      pending: {
        operation: operationView(done),
        collect: collectLink(op.id),
        message: `the token is still being created; once the operation has Succeeded, POST ${collectLink(op.id)} hands its secret out once, to you (it is revoked if nobody collects it in time)`,
      },
    };
  }

  /**
   * POST /v1/operations/{id}/token: the secret, once, to the user who asked for the token (the
   * create-token operation's tenant and requestedBy) or to an operator, who finds any tenant's.
   * Anyone else is refused before anything is read, so nothing is burnt.
   */
  async collect(caller: Principal, operationId: string) {
    const operator = missingRole(caller, [ROLES.sre], this.config.OPERATOR_TENANT_ID) === undefined;
    const op = !isUuid(operationId) ? null
      : operator ? await this.operations.findForOperator(operationId) : await this.operations.findForTenant(caller.tenantId, operationId);
    if (!op) throw new NotFoundError('operation_not_found', `no operation ${operationId}`);
    if (op.kind !== OperationKind.CreateToken) {
      throw new NotFoundError('token_not_found', `operation ${op.id} is a ${op.kind} operation; only create-token operations have a token to collect`);
    }
    const requester = op.tenantId === caller.tenantId && op.requestedBy === caller.userId;
    if (!requester && !operator) throw notRequester(op.id, op.clusterId);
    if (!TERMINAL_OPERATION_STATES.has(op.state)) throw notReady(op);
    if (op.state !== OperationState.Succeeded) throw failed(op);
    const collector: TokenCollector = requester
      ? { as: 'requester', tenantId: caller.tenantId, userId: caller.userId }
      : { as: 'operator', tenantId: caller.tenantId, userId: caller.userId };
    const r = await this.tokens.collect(op.id, collector, 'collect');
    if (r.outcome !== 'collected') throw refusal(r, op.id);
    return secretView(r);
  }

  /** GET /v1/operations/{id}/token, the collect route until collecting became a POST: 405 saying so, so a script learns what changed (nothing is read). */
  collectByGet(operationId: string): never {
    const link = collectLink(operationId);
    throw new MethodNotAllowedError('POST', 'method_not_allowed',
      `a token's secret is collected with POST ${link} (with the console's session, also the X-CSRF-Token header); GET no longer hands it out, so that a link cannot use up a secret`,
      { allow: ['POST'] });
  }

  async list(caller: Principal, clusterId: string) {
    const cluster = await this.clusters.require(caller, clusterId);
    return { tokens: (await this.tokens.listForCluster(caller.tenantId, cluster.id)).map(issuedTokenView) };
  }

  /** DELETE /v1/clusters/{id}/tokens/{accessorId}: a revoke-token operation (repeating it while it runs returns the same one). */
  async revoke(caller: Principal, clusterId: string, accessorId: string): Promise<{ operationId: string; answer: AnswerOf<typeof ROUTES.revokeToken, 202> }> {
    const cluster = await this.clusters.require(caller, clusterId);
    const id = accessorId.toLowerCase();
    if (!SERVING.has(cluster.state)) throw new ConflictError('cluster_not_running', `the cluster is ${cluster.state}; tokens can be revoked while it is Running`);
    const r = await this.tokens.requestRevoke(id, caller.userId, TokenRevokeReason.Requested, { tenantId: caller.tenantId, clusterId: cluster.id });
    switch (r.outcome) {
      case 'requested':
        await this.dispatcher.dispatch(r.operation.id);
        return { operationId: r.operation.id, answer: { operation: operationView(r.operation), token: issuedTokenView(r.token) } };
      case 'pending': {
        const op = await this.operations.findForTenant(caller.tenantId, r.operationId);
        return { operationId: r.operationId, answer: { ...(op ? { operation: operationView(op) } : {}), token: issuedTokenView(r.token) } };
      }
      case 'revoked':
        throw new ConflictError('token_already_revoked', `token ${id} was already revoked (${r.token.revokedAt?.toISOString() ?? 'earlier'})`, { accessorId: id, revokedAt: r.token.revokedAt?.toISOString() ?? null });
      case 'creating':
        throw new ConflictError('token_not_ready', `token ${id} is still being created by operation ${r.token.operationId}; revoke it once that operation has ended`, { operationId: r.token.operationId });
      default:
        if (await this.isManagementToken(cluster.id, id)) {
          throw new ConflictError('management_token', `token ${id} is the cluster's management token, which the control plane runs the cluster with; it cannot be revoked, rotate it instead (POST /v1/clusters/${cluster.id}/rotate { "what": "management-token" })`, { accessorId: id });
        }
        throw new NotFoundError('token_not_found',
          `no token ${id} was made through the control plane on this cluster (GET /v1/clusters/${cluster.id}/tokens lists those); the management token is rotated with POST /rotate, and tokens made in Consul directly are revoked there`,
          { accessorId: id });
    }
  }

  /** Known AccessorIDs of the cluster's management tokens (kept sealed by the worker since its first rotation or restore). */
  private async isManagementToken(clusterId: string, accessorId: string): Promise<boolean> {
    const raw = await this.secrets.get(clusterId, SecretName.ManagementTokenAccessors);
    const ids = raw ? (JSON.parse(raw) as { accessorIds?: unknown }).accessorIds : undefined;
    return Array.isArray(ids) && ids.includes(accessorId);
  }

  private async waitForOperation(tenantId: string, id: string, timeoutMs: number): Promise<Operation> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const op = await this.operations.findForTenant(tenantId, id);
      if (!op) throw new Error(`operation ${id} vanished`);
      if (TERMINAL_OPERATION_STATES.has(op.state) || Date.now() >= deadline) return op;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

function secretView(r: Extract<CollectOutcome, { outcome: 'collected' }>): TokenSecretView {
  return { accessorId: r.token.accessorId, secretId: r.secretId, description: r.token.description, operationId: r.token.operationId };
}

function notReady(op: Operation) {
  return new ConflictError('token_not_ready', `the token is still being created (operation ${op.state}${op.currentStep ? `, step ${op.currentStep}` : ''}); collect it once GET /v1/operations/${op.id} shows Succeeded`, { state: op.state });
}

function failed(op: Operation) {
  const err = (op.error ?? {}) as { message?: string };
  return new UnprocessableError('token_failed', `the token could not be created (operation ${op.state}): ${err.message ?? 'unknown reason'}; ask for a new one`, { operationId: op.id });
}

function notRequester(operationId: string, clusterId: string) {
  return new ForbiddenError('token_not_requester',
    `only the user who asked for this token (or an operator) may collect its secret; create a token of your own with POST /v1/clusters/${clusterId}/tokens`,
    { operationId });
}

/** Why a collect handed nothing out, as the error the caller gets. */
function refusal(r: Exclude<CollectOutcome, { outcome: 'collected' }>, operationId: string) {
  if (r.outcome === 'not-found') return new NotFoundError('token_not_found', `no token was recorded for operation ${operationId}`);
  const t = r.token;
  if (r.outcome === 'not-requester') return notRequester(operationId, t.clusterId);
  const fresh = `create a new one with POST /v1/clusters/${t.clusterId}/tokens`;
  const details = { accessorId: t.accessorId, operationId };
  switch (r.outcome) {
    case 'creating':
      return new ConflictError('token_not_ready', `token ${t.accessorId} is still being created; collect it once GET /v1/operations/${operationId} shows Succeeded`, details);
    case 'already-collected':
      return new GoneError('token_already_collected',
        `the secret of token ${t.accessorId} was handed out at ${t.collectedAt?.toISOString()}; a secret is shown once. If it was lost, revoke the token (DELETE /v1/clusters/${t.clusterId}/tokens/${t.accessorId}) and ${fresh}`,
        { ...details, collectedAt: t.collectedAt?.toISOString() });
    case 'expired':
      return new GoneError('token_expired_uncollected',
        `token ${t.accessorId} was not collected before ${t.collectBy?.toISOString() ?? 'its deadline'}; it is revoked in Consul (state ${t.state.toLowerCase()}) and its secret is gone: ${fresh}`,
        { ...details, collectBy: t.collectBy?.toISOString() ?? null, state: t.state.toLowerCase() });
    case 'revoked':
      return new GoneError('token_revoked', `token ${t.accessorId} was revoked (${t.revokeReason ?? 'requested'}) before its secret was collected: ${fresh}`, { ...details, state: t.state.toLowerCase() });
    case 'secret-missing':
      return new GoneError('token_unavailable', `the secret of token ${t.accessorId} is no longer kept; revoke it (DELETE /v1/clusters/${t.clusterId}/tokens/${t.accessorId}) and ${fresh}`, details);
  }
}
