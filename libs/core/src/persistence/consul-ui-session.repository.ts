import { randomUUID } from 'node:crypto';
import { deleteOnce, type Db } from './prisma';
import { ClusterState, SecretName } from '../model';
import { ROLES } from '../catalog';
import type { Prisma } from '../generated/prisma/client';
import type { ConsoleSession, ConsoleSsoCode, ConsulUiSession } from '../generated/prisma/client';

export type { ConsoleSsoCode, ConsulUiSession };

export type UiAccess = 'read' | 'write';

/** Why a Consul UI session was revoked (recorded on the row and in the audit event). */
export type UiRevokeReason = 'sign-out' | 'expired' | 'console-session-ended' | 'role-lost' | 'cluster-deleted' | 'cluster-restored' | 'sign-in-failed';

export interface NewUiSession {
  id: string;
  tokenHash: string;
  clusterId: string;
  consoleSessionId: string;
  tenantId: string;
  userId: string;
  userName: string;
  access: UiAccess;
  accessorId: string;
  expiresAt: Date;
}

/** A UI session as the proxy checks it: with its console session and what it needs of the cluster. */
export type UiSessionWithContext = ConsulUiSession & {
  consoleSession: ConsoleSession | null;
  cluster: { tenantId: string; state: string; caCertPem: string | null; servers: { address: string; apiEndpoint: string | null }[] };
};

const ENDED_CLUSTER_STATES = [ClusterState.Deleting, ClusterState.Deleted];

/**
 * UI sessions whose console session no longer holds the role their token was made for (write:
 * Clusters.ReadWrite; read: Clusters.Read or Clusters.ReadWrite): a new sign-in with fewer
 * roles rewrote the roles of the user's live sessions (ConsoleSessionRepository.createSession).
 */
const ROLE_LOST: Prisma.ConsulUiSessionWhereInput = {
  OR: [
    { access: 'write', consoleSession: { is: { NOT: { roles: { has: ROLES.write } } } } },
    { access: 'read', consoleSession: { is: { NOT: { roles: { hasSome: [ROLES.read, ROLES.write] } } } } },
  ],
};

/**
 * One-time SSO codes and Consul UI sessions. Codes and sessions are found by the SHA-256 of
 * their value. Redeeming a code is one DELETE ... RETURNING (once, whoever asks first).
 * Revocation is two-phase: `markRevoked` at once (the proxy refuses the session from then on),
 * `finishRevocation` once the worker has deleted the token in Consul (the row, its sealed
 * secret and the audit event in one statement).
 */
export class ConsulUiSessionRepository {
  constructor(private readonly db: Db) {}

  async createCode(c: Omit<ConsoleSsoCode, 'createdAt'>): Promise<void> {
    await this.db.consoleSsoCode.create({ data: c });
  }

  /** Takes a code out, once. null: unknown or already used; `expired`: it was there but too old (gone either way). */
  async redeemCode(codeHash: string, now = new Date()): Promise<{ code: ConsoleSsoCode; expired: boolean } | null> {
    const code = await deleteOnce(() => this.db.consoleSsoCode.delete({ where: { codeHash } }));
    return code && { code, expired: code.expiresAt.getTime() <= now.getTime() };
  }

  async create(s: NewUiSession): Promise<ConsulUiSession> {
    return this.db.consulUiSession.create({ data: s });
  }

  async findByTokenHash(tokenHash: string): Promise<UiSessionWithContext | null> {
    return this.db.consulUiSession.findUnique({
      where: { tokenHash },
      include: { consoleSession: true, cluster: { select: { tenantId: true, state: true, caCertPem: true, servers: { select: { address: true, apiEndpoint: true }, orderBy: { index: 'asc' } } } } },
    });
  }

  async get(id: string): Promise<ConsulUiSession | null> {
    return this.db.consulUiSession.findUnique({ where: { id } });
  }

  /** Marks sessions revoked (those not marked yet keep their first reason); returns the ids now marked, to hand to the worker. */
  async markRevoked(where: { id: string } | { consoleSessionId: string } | { clusterId: string }, reason: UiRevokeReason): Promise<string[]> {
    const [rows] = await this.db.$transaction([
      this.db.consulUiSession.findMany({ where: { ...where, revokedAt: null }, select: { id: true } }),
      this.db.consulUiSession.updateMany({ where: { ...where, revokedAt: null }, data: { revokedAt: new Date(), revokeReason: reason } }),
    ]);
    return rows.map((r) => r.id);
  }

  /**
   * At a sign-in that brought fewer roles: the user's UI sessions whose console session lost the
   * role of their token are marked revoked; returns their ids, to hand to the worker (which
   * deletes the tokens in Consul, where they could be used without the proxy).
   */
  async markRoleLost(tenantId: string, userId: string, now = new Date()): Promise<string[]> {
    const where: Prisma.ConsulUiSessionWhereInput = { tenantId, userId, revokedAt: null, ...ROLE_LOST };
    const [rows] = await this.db.$transaction([
      this.db.consulUiSession.findMany({ where, select: { id: true } }),
      this.db.consulUiSession.updateMany({ where, data: { revokedAt: now, revokeReason: 'role-lost' } }),
    ]);
    return rows.map((r) => r.id);
  }

  /**
   * Signs a console session out: its UI sessions are marked revoked and the session row deleted,
   * in one transaction (no UI session outlives its console session unmarked). Returns the
   * deleted session (null if there was none) and every UI session of it still to revoke.
   */
  async endConsoleSession(tokenHash: string): Promise<{ session: ConsoleSession | null; uiSessionIds: string[] }> {
    return this.db.$transaction(async (tx) => {
      const session = await tx.consoleSession.findUnique({ where: { tokenHash } });
      if (!session) return { session: null, uiSessionIds: [] };
      await tx.consulUiSession.updateMany({ where: { consoleSessionId: session.id, revokedAt: null }, data: { revokedAt: new Date(), revokeReason: 'sign-out' } });
      const ui = await tx.consulUiSession.findMany({ where: { consoleSessionId: session.id }, select: { id: true } });
      await tx.consoleSession.delete({ where: { id: session.id } });
      return { session, uiSessionIds: ui.map((u) => u.id) };
    });
  }

  /**
   * The worker's sweep: marks what is due (expired tokens, console sessions that ended or
   * expired, roles lost, clusters being deleted) and returns every revoked session still to finish.
   */
  async markDue(now = new Date(), limit = 500): Promise<string[]> {
    await this.db.$transaction([
      this.db.consulUiSession.updateMany({ where: { revokedAt: null, expiresAt: { lte: now } }, data: { revokedAt: now, revokeReason: 'expired' } }),
      this.db.consulUiSession.updateMany({
        where: { revokedAt: null, OR: [{ consoleSessionId: null }, { consoleSession: { expiresAt: { lte: now } } }] },
        data: { revokedAt: now, revokeReason: 'console-session-ended' },
      }),
      this.db.consulUiSession.updateMany({ where: { revokedAt: null, ...ROLE_LOST }, data: { revokedAt: now, revokeReason: 'role-lost' } }),
      this.db.consulUiSession.updateMany({ where: { revokedAt: null, cluster: { state: { in: ENDED_CLUSTER_STATES } } }, data: { revokedAt: now, revokeReason: 'cluster-deleted' } }),
    ]);
    const rows = await this.db.consulUiSession.findMany({ where: { revokedAt: { not: null } }, select: { id: true }, orderBy: { revokedAt: 'asc' }, take: limit });
    return rows.map((r) => r.id);
  }

  /** Every UI session of a cluster (the delete flow revokes them all). */
  async idsForCluster(clusterId: string): Promise<string[]> {
    const rows = await this.db.consulUiSession.findMany({ where: { clusterId }, select: { id: true } });
    return rows.map((r) => r.id);
  }

  /**
   * The token is gone from Consul: the session row, its sealed secret and the audit event of the
   * revocation in one statement, so the event is written exactly when the row goes (a repeat, or
   * a second worker, finds no row and writes nothing). false when the row was already gone.
   */
  async finishRevocation(id: string, details: Record<string, unknown>): Promise<boolean> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      WITH gone AS (
        DELETE FROM "ConsulUiSession" WHERE "id" = ${id}::uuid AND "revokedAt" IS NOT NULL
        RETURNING "id", "clusterId", "tenantId", "userId", "userName", "accessorId", "revokeReason"
      ), secret AS (
        DELETE FROM "ClusterSecret" s USING gone WHERE s."clusterId" = gone."clusterId" AND s."name" = ${SecretName.consulUiToken(id)}
      )
      INSERT INTO "AuditEvent" ("id", "tenantId", "clusterId", "actor", "action", "details")
      SELECT ${randomUUID()}::uuid, gone."tenantId", gone."clusterId", 'system:consul-ui-sso', 'consul-ui.sso.revoked',
             jsonb_build_object('uiSessionId', gone."id", 'userId', gone."userId", 'name', gone."userName", 'accessorId', gone."accessorId", 'reason', gone."revokeReason") || ${JSON.stringify(details)}::jsonb
      FROM gone
      RETURNING "id"`;
    return rows.length > 0;
  }

  /** Sealed UI token secrets whose session row never came to be (a sign-in cut short between the two writes), older than a minute. */
  async deleteOrphanSecrets(): Promise<number> {
    return this.db.$executeRaw`
      DELETE FROM "ClusterSecret" s
      WHERE s."name" LIKE 'consul-ui-token:%' AND s."createdAt" < (now() AT TIME ZONE 'UTC') - interval '1 minute'
        AND NOT EXISTS (SELECT 1 FROM "ConsulUiSession" u WHERE s."name" = 'consul-ui-token:' || u."id"::text)`;
  }

  async deleteExpiredCodes(now = new Date()): Promise<number> {
    return (await this.db.consoleSsoCode.deleteMany({ where: { expiresAt: { lte: now } } })).count;
  }
}
