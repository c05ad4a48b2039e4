import type { Db } from './prisma';
import { OperationState, type OperationError, type OperationStep } from '../model';
import { Prisma, type Operation } from '../generated/prisma/client';

/** Operation rows: the truth for every job; the step log and progress live here. */
export class OperationRepository {
  constructor(private readonly db: Db) {}

  findForTenant(tenantId: string, id: string): Promise<Operation | null> {
    return this.db.operation.findFirst({ where: { id, tenantId } });
  }

  get(id: string): Promise<Operation | null> {
    return this.db.operation.findUnique({ where: { id } });
  }

  /** Queued or Running operations: what the reconciler makes sure has a job. */
  listUnfinished(limit = 1000): Promise<Pick<Operation, 'id' | 'state' | 'updatedAt'>[]> {
    return this.db.operation.findMany({
      where: { state: { in: [OperationState.Queued, OperationState.Running] } },
      select: { id: true, state: true, updatedAt: true },
      orderBy: { seq: 'asc' },
      take: limit,
    });
  }

  async start(id: string): Promise<Operation> {
    return this.db.operation.update({
      where: { id },
      data: { state: OperationState.Running, attempts: { increment: 1 }, startedAt: new Date() },
    });
  }

  async saveSteps(id: string, steps: OperationStep[], progress: number, currentStep: string | null): Promise<void> {
    await this.db.operation.update({ where: { id }, data: { steps: steps as unknown as object[], progress, currentStep } });
  }

  /** Ends the operation and frees its cluster's lock in one transaction: nothing sees it ended but still holding the cluster. */
  async succeed(id: string, result?: Record<string, unknown>): Promise<void> {
    await this.db.$transaction([
      this.db.operation.update({
        where: { id },
        data: { state: OperationState.Succeeded, progress: 100, currentStep: null, finishedAt: new Date(), error: Prisma.DbNull, ...(result ? { result: result as object } : {}) },
      }),
      this.db.cluster.updateMany({ where: { lockedByOperationId: id }, data: { lockedByOperationId: null } }),
    ]);
  }

  async fail(id: string, error: OperationError): Promise<void> {
    await this.db.$transaction([
      this.db.operation.update({ where: { id }, data: { state: OperationState.Failed, finishedAt: new Date(), error: error as unknown as object } }),
      this.db.cluster.updateMany({ where: { lockedByOperationId: id }, data: { lockedByOperationId: null } }),
    ]);
  }

  /** Records the last error of an attempt that will be retried, without ending the operation. */
  async noteRetry(id: string, error: OperationError): Promise<void> {
    await this.db.operation.update({ where: { id }, data: { error: { ...error, retrying: true } } });
  }
}
