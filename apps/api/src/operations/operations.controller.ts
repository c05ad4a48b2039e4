import { ROUTES } from '../../../../libs/contracts/src';
import { Controller, Inject, Param } from '@nestjs/common';
import {
  AuditRepository, TenantClusterRepository, ConflictError, NotFoundError, TenantOperationRepository, OperationState, operationJobId, type OperationsQueue, isUuid
} from '../../../../libs/core/src';
import { Caller, type Principal } from '../auth/principal';
import { operationView } from '../clusters/views';
import { QUEUE } from '../tokens';
import { Route } from '../validation/input';


@Controller()
export class OperationsController {
  constructor(
    private readonly operations: TenantOperationRepository,
    private readonly clusters: TenantClusterRepository,
    private readonly audit: AuditRepository,
    @Inject(QUEUE) private readonly queue: OperationsQueue,
  ) {}

  @Route(ROUTES.getOperation)
  async get(@Caller() caller: Principal, @Param('id') id: string) {
    return operationView(await this.require(caller, id));
  }

  @Route(ROUTES.cancelOperation)
  async cancel(@Caller() caller: Principal, @Param('id') id: string) {
    const op = await this.require(caller, id);
    if (op.state === OperationState.Queued && (await this.operations.cancelQueued(op, caller.userId))) {
      // The job would find the operation Canceled and do nothing; removing it is tidiness.
      await this.queue.remove(operationJobId(op.id)).catch(() => undefined);
      return operationView((await this.operations.findForTenant(caller.tenantId, op.id))!);
    }
    const now = (await this.operations.findForTenant(caller.tenantId, op.id))!;
    if (now.state === OperationState.Running) {
      throw new ConflictError('operation_running', `the operation is running (step ${now.currentStep ?? 'starting'}); a running operation cannot be canceled: its steps would leave the cluster half-changed`, { state: now.state, currentStep: now.currentStep });
    }
    throw new ConflictError('operation_finished', `the operation already ended (${now.state})`, { state: now.state });
  }

  @Route(ROUTES.listOperations)
  async list(@Caller() caller: Principal, @Param('clusterId') clusterId: string) {
    await this.requireCluster(caller, clusterId);
    return { operations: (await this.operations.listForCluster(caller.tenantId, clusterId)).map(operationView) };
  }

  @Route(ROUTES.listEvents)
  async events(@Caller() caller: Principal, @Param('clusterId') clusterId: string) {
    await this.requireCluster(caller, clusterId);
    const rows = await this.audit.listForCluster(caller.tenantId, clusterId);
    return {
      events: rows.map((e) => ({ id: e.id, action: e.action, actor: e.actor, operationId: e.operationId, details: e.details, createdAt: e.createdAt.toISOString() })),
    };
  }

  private async require(caller: Principal, id: string) {
    const op = isUuid(id) ? await this.operations.findForTenant(caller.tenantId, id) : null;
    if (!op) throw new NotFoundError('operation_not_found', `no operation ${id}`);
    return op;
  }

  private async requireCluster(caller: Principal, id: string) {
    const c = isUuid(id) ? await this.clusters.findForTenant(caller.tenantId, id) : null;
    if (!c) throw new NotFoundError('cluster_not_found', `no cluster ${id}`);
    return c;
  }
}
