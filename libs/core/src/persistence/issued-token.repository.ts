import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import type { SecretRepository } from './secret.repository';
import { insertOperation } from './operation-writer';
import { IssuedTokenState, OperationKind, OperationState, SecretName, TokenRevokeReason } from '../model';
import type { IssuedToken, Operation, Prisma } from '../generated/prisma/client';

type Tx = Prisma.TransactionClient;

/** The name a token's sealed ids wait under: `issued-token:<operation id>`. */
const PREFIX = SecretName.issuedToken('');

/** What a collect found; only `collected` carries the secret. */
export type CollectOutcome =
  | { outcome: 'collected'; token: IssuedToken; secretId: string }
  | { outcome: 'not-found' }
  | { outcome: 'creating'; token: IssuedToken }
  | { outcome: 'already-collected'; token: IssuedToken }
  /** The collection window passed: revoked, or about to be by the worker's sweeper. */
  | { outcome: 'expired'; token: IssuedToken }
  | { outcome: 'revoked'; token: IssuedToken }
  | { outcome: 'secret-missing'; token: IssuedToken }
  /** Someone of the tenant other than the user who asked for the token: nothing handed out, nothing changed. */
  | { outcome: 'not-requester'; token: IssuedToken };

/**
 * Who collects a secret: the user who asked for the token (the row's tenant and `createdBy`,
 * the object id the create-token operation recorded), or an operator (Platform.SRE of the
 * operator's tenant, decided by the API), who may collect any tenant's.
 */
export type TokenCollector =
  | { as: 'requester'; tenantId: string; userId: string }
  | { as: 'operator'; tenantId: string; userId: string };

/**
 * Who asks for a revoke: a tenant's caller, for a token of theirs on the cluster they named (any
 * other is not found), or the worker's sweeper. Always said: a request that names neither does
 * not compile.
 */
export type RevokeAsker = { tenantId: string; clusterId: string } | { sweep: true };

/** What a revoke request found: a new revoke operation, or why there is none. */
export type RevokeOutcome =
  | { outcome: 'requested'; operation: Operation; token: IssuedToken }
  | { outcome: 'not-found' }
  | { outcome: 'pending'; token: IssuedToken; operationId: string }
  | { outcome: 'revoked'; token: IssuedToken }
  | { outcome: 'creating'; token: IssuedToken }
  /** Only for the sweeper: the row no longer qualifies (collected meanwhile, or not due). */
  | { outcome: 'not-due'; token: IssuedToken };

export interface NewIssuedToken {
  accessorId: string;
  clusterId: string;
  tenantId: string;
  operationId: string;
  description: string;
  createdBy: string;
}

/**
 * Tokens customers made through the control plane. The row never holds the
 * secret: that waits sealed in ClusterSecret (`issued-token:<operation id>`)
 * until it is collected, once, or the token is revoked. Every decision about
 * one token (collect, revoke, the sweeper's) is taken under that token's row
 * lock, so two of them never both win.
 */
export class IssuedTokenRepository {
  constructor(private readonly db: Db, private readonly secrets: SecretRepository) {}

  /** The ids were chosen and sealed: the row exists before the token does in Consul (a retry writes nothing new). */
  async recordCreating(t: NewIssuedToken): Promise<void> {
    await this.db.issuedToken.createMany({ data: [{ ...t, state: IssuedTokenState.Creating }], skipDuplicates: true });
  }

  /** The token exists in Consul: its secret may be collected for `windowMs` from now (the database's clock). */
  async activate(operationId: string, windowMs: number): Promise<void> {
    await this.db.$executeRaw`
      UPDATE "IssuedToken" SET "state" = ${IssuedTokenState.Active},
        "collectBy" = (now() AT TIME ZONE 'UTC') + ${windowMs} * interval '1 millisecond'
      WHERE "operationId" = ${operationId}::uuid AND "state" = ${IssuedTokenState.Creating}`;
  }

  findByOperation(operationId: string): Promise<IssuedToken | null> {
    return this.db.issuedToken.findUnique({ where: { operationId } });
  }

  get(accessorId: string): Promise<IssuedToken | null> {
    return this.db.issuedToken.findUnique({ where: { accessorId } });
  }

  /** Newest first, scoped to the tenant. */
  listForCluster(tenantId: string, clusterId: string, limit = 500): Promise<IssuedToken[]> {
    return this.db.issuedToken.findMany({ where: { tenantId, clusterId }, orderBy: [{ createdAt: 'desc' }, { accessorId: 'asc' }], take: limit });
  }

  /**
   * Hands the secret of the token made by create-token operation `operationId`
   * out once: under the row's lock it is read and deleted, the row marked
   * collected and the audit event written, in one transaction. A concurrent
   * collect waits for the lock and then finds it collected. A requester sees
   * only its tenant's rows and only the tokens it asked for; anyone else is
   * refused before anything is read.
   */
  async collect(operationId: string, collector: TokenCollector, via: 'wait' | 'collect'): Promise<CollectOutcome> {
    const tenantOnly = collector.as === 'requester' ? collector.tenantId : null;
    return this.db.$transaction(async (tx) => {
      const locked = await tx.$queryRaw<{ open: boolean }[]>`
        SELECT ("collectBy" IS NOT NULL AND "collectBy" > (now() AT TIME ZONE 'UTC')) AS "open"
        FROM "IssuedToken" WHERE "operationId" = ${operationId}::uuid AND (${tenantOnly}::text IS NULL OR "tenantId" = ${tenantOnly}) FOR UPDATE`;
      if (locked.length === 0) return { outcome: 'not-found' };
      const token = await tx.issuedToken.findUniqueOrThrow({ where: { operationId } });
      if (collector.as === 'requester' && token.createdBy !== collector.userId) return { outcome: 'not-requester', token };
      if (token.collectedAt) return { outcome: 'already-collected', token };
      if (token.revokeReason === TokenRevokeReason.Uncollected) return { outcome: 'expired', token };
      if (token.revokeRequestedAt || token.state === IssuedTokenState.Revoking || token.state === IssuedTokenState.Revoked) return { outcome: 'revoked', token };
      if (token.state === IssuedTokenState.Creating) return { outcome: 'creating', token };
      if (!locked[0]!.open) return { outcome: 'expired', token };
      const sealed = await this.secrets.takeIn(tx, token.clusterId, SecretName.issuedToken(operationId));
      if (sealed === null) return { outcome: 'secret-missing', token };
      const { secretId } = JSON.parse(sealed) as { secretId: string };
      await tx.$executeRaw`
        UPDATE "IssuedToken" SET "collectedAt" = (now() AT TIME ZONE 'UTC'), "collectedBy" = ${collector.userId}
        WHERE "operationId" = ${operationId}::uuid`;
      const details = { accessorId: token.accessorId, via, ...(collector.as === 'operator' ? { operatorTenantId: collector.tenantId } : {}) };
      await tx.auditEvent.create({
        data: { id: randomUUID(), tenantId: token.tenantId, clusterId: token.clusterId, operationId, actor: collector.userId, action: 'cluster.token.collected', details },
      });
      return { outcome: 'collected', token: await tx.issuedToken.findUniqueOrThrow({ where: { operationId } }), secretId };
    });
  }

  /**
   * Queues a revoke-token operation for a token, under its row lock and in one
   * transaction with the operation, its audit event, the row's new state
   * (Revoking) and the deletion of a secret still waiting to be collected.
   * `sweep`: the worker's own revocation of a token nobody collected in time
   * (or whose create failed); it goes ahead only while that still holds.
   */
  async requestRevoke(accessorId: string, actor: string, reason: TokenRevokeReason, asker: RevokeAsker): Promise<RevokeOutcome> {
    return this.db.$transaction(async (tx) => {
      const locked = await tx.$queryRaw<{ due: boolean; createEnded: boolean }[]>`
        SELECT ("collectBy" IS NOT NULL AND "collectBy" <= (now() AT TIME ZONE 'UTC')) AS "due",
          EXISTS (SELECT 1 FROM "Operation" o WHERE o."id" = t."operationId" AND o."state" IN ('Failed', 'Canceled')) AS "createEnded"
        FROM "IssuedToken" t WHERE t."accessorId" = ${accessorId}::uuid FOR UPDATE OF t`;
      if (locked.length === 0) return { outcome: 'not-found' };
      const token = await tx.issuedToken.findUniqueOrThrow({ where: { accessorId } });
      if ('tenantId' in asker && (token.tenantId !== asker.tenantId || token.clusterId !== asker.clusterId)) return { outcome: 'not-found' };
      if (token.state === IssuedTokenState.Revoked) return { outcome: 'revoked', token };
      if (token.state === IssuedTokenState.Revoking && token.revokeOperationId) return { outcome: 'pending', token, operationId: token.revokeOperationId };
      const { due, createEnded } = locked[0]!;
      if (token.state === IssuedTokenState.Creating && !createEnded) return { outcome: 'creating', token };
      if ('sweep' in asker && (token.collectedAt || !(createEnded || due))) return { outcome: 'not-due', token };
      const operation = await this.queueRevoke(tx, token, actor, reason);
      const updated = await tx.issuedToken.update({
        where: { accessorId },
        data: {
          state: IssuedTokenState.Revoking, revokeOperationId: operation.id, revokeReason: token.revokeReason ?? reason,
          ...(token.revokeRequestedAt ? {} : { revokeRequestedAt: operation.createdAt }),
        },
      });
      // A secret nobody collected is never handed out once its token is being revoked.
      await tx.clusterSecret.deleteMany({ where: { clusterId: token.clusterId, name: SecretName.issuedToken(token.operationId) } });
      return { outcome: 'requested', operation, token: updated };
    });
  }

  private async queueRevoke(tx: Tx, token: IssuedToken, actor: string, reason: TokenRevokeReason): Promise<Operation> {
    const id = randomUUID();
    const params = { accessorId: token.accessorId, reason };
    const op = await insertOperation(tx, { id, tenantId: token.tenantId, clusterId: token.clusterId, kind: OperationKind.RevokeToken, requestedBy: actor, params });
    await tx.auditEvent.create({
      data: { id: randomUUID(), tenantId: token.tenantId, clusterId: token.clusterId, operationId: id, actor, action: 'cluster.token.revoke.requested', details: params },
    });
    return op;
  }

  /**
   * The sweeper's candidates on clusters that run: tokens not collected whose
   * window has passed, or whose create failed. Each is decided again under
   * its lock by requestRevoke (a collect may win meanwhile).
   */
  async dueForRevoke(limit = 100): Promise<{ accessorId: string; reason: TokenRevokeReason }[]> {
    const rows = await this.db.$queryRaw<{ accessorId: string; createEnded: boolean }[]>`
      SELECT t."accessorId"::text AS "accessorId", (t."state" = ${IssuedTokenState.Creating}) AS "createEnded"
      FROM "IssuedToken" t JOIN "Cluster" c ON c."id" = t."clusterId"
      WHERE t."collectedAt" IS NULL AND t."state" <> ${IssuedTokenState.Revoked} AND c."state" IN ('Running', 'Updating')
        AND ((t."state" = ${IssuedTokenState.Active} AND t."collectBy" <= (now() AT TIME ZONE 'UTC'))
          OR (t."state" = ${IssuedTokenState.Creating} AND EXISTS (
            SELECT 1 FROM "Operation" o WHERE o."id" = t."operationId" AND o."state" IN ('Failed', 'Canceled'))))
      ORDER BY t."collectBy" NULLS FIRST LIMIT ${limit}`;
    return rows.map((r) => ({ accessorId: r.accessorId, reason: r.createEnded ? TokenRevokeReason.CreateFailed : TokenRevokeReason.Uncollected }));
  }

  /**
   * Tokens left Revoking by a revoke operation that ended without its failure
   * hook (the reconciler failed it, or it was canceled) are Active again, so
   * they can be revoked anew. Returns how many.
   */
  async releaseEndedRevokes(): Promise<number> {
    return this.db.$executeRaw`
      UPDATE "IssuedToken" t SET "state" = ${IssuedTokenState.Active}, "revokeOperationId" = NULL
      FROM "Operation" o
      WHERE t."state" = ${IssuedTokenState.Revoking} AND o."id" = t."revokeOperationId" AND o."state" IN ('Failed', 'Canceled')`;
  }

  /**
   * Tokens an earlier version left behind: it sealed a token's ids, created it
   * and, when the API gave up waiting, never handed it out nor deleted the
   * sealed copy (a Succeeded create-token operation with its secret still
   * there and no row). Each gets a row that is due at once, so the sweeper
   * revokes it. Returns how many were adopted.
   */
  async adoptLeftovers(limit = 100): Promise<number> {
    const rows = await this.db.$queryRaw<{ clusterId: string; operationId: string }[]>`
      SELECT s."clusterId"::text AS "clusterId", o."id"::text AS "operationId"
      FROM "ClusterSecret" s JOIN "Operation" o ON o."id"::text = substr(s."name", ${PREFIX.length + 1})
      WHERE s."name" LIKE ${`${PREFIX}%`} AND o."clusterId" = s."clusterId" AND o."kind" = ${OperationKind.CreateToken}
        AND o."state" = ${OperationState.Succeeded}
        AND NOT EXISTS (SELECT 1 FROM "IssuedToken" t WHERE t."operationId" = o."id")
      LIMIT ${limit}`;
    let adopted = 0;
    for (const r of rows) {
      const sealed = await this.secrets.get(r.clusterId, SecretName.issuedToken(r.operationId));
      const op = await this.db.operation.findUnique({ where: { id: r.operationId } });
      if (!sealed || !op) continue;
      const { accessorId } = JSON.parse(sealed) as { accessorId: string };
      const description = String((op.params as { description?: unknown } | null)?.description ?? 'created through the control plane');
      const { count } = await this.db.issuedToken.createMany({
        data: [{ accessorId, clusterId: r.clusterId, tenantId: op.tenantId, operationId: op.id, description, createdBy: op.requestedBy, createdAt: op.createdAt, state: IssuedTokenState.Active, collectBy: op.finishedAt ?? op.createdAt }],
        skipDuplicates: true,
      });
      adopted += count;
    }
    return adopted;
  }

  /** The revoke operation succeeded: Consul rejects the token. Only that operation's success counts. */
  async markRevoked(accessorId: string, revokeOperationId: string): Promise<void> {
    await this.db.$executeRaw`
      UPDATE "IssuedToken" SET "state" = ${IssuedTokenState.Revoked}, "revokedAt" = (now() AT TIME ZONE 'UTC')
      WHERE "accessorId" = ${accessorId}::uuid AND "revokeOperationId" = ${revokeOperationId}::uuid AND "state" = ${IssuedTokenState.Revoking}`;
  }

  /** The revoke operation failed for good: the token is Active again (revoked anew by a DELETE, or by the sweeper if uncollected). */
  async revokeFailed(accessorId: string, revokeOperationId: string): Promise<void> {
    await this.db.issuedToken.updateMany({
      where: { accessorId, revokeOperationId, state: IssuedTokenState.Revoking },
      data: { state: IssuedTokenState.Active, revokeOperationId: null },
    });
  }

  /** The cluster is gone, and its tokens with it. */
  async revokeAllOfDeletedCluster(clusterId: string): Promise<void> {
    await this.db.$executeRaw`
      UPDATE "IssuedToken" SET "state" = ${IssuedTokenState.Revoked}, "revokedAt" = (now() AT TIME ZONE 'UTC'),
        "revokeRequestedAt" = COALESCE("revokeRequestedAt", (now() AT TIME ZONE 'UTC')),
        "revokeReason" = COALESCE("revokeReason", ${TokenRevokeReason.ClusterDeleted})
      WHERE "clusterId" = ${clusterId}::uuid AND "state" <> ${IssuedTokenState.Revoked}`;
  }

  /** AccessorIDs of the cluster's revoked tokens: a restored snapshot may bring them back. */
  async revokedAccessors(clusterId: string): Promise<string[]> {
    const rows = await this.db.issuedToken.findMany({ where: { clusterId, state: IssuedTokenState.Revoked }, select: { accessorId: true } });
    return rows.map((r) => r.accessorId);
  }
}
