import type { Db } from './prisma';
import type { Prisma } from '../generated/prisma/client';
import { SEAL_FORMAT, SealedValueError, type SealBinding, type SecretBox } from '../envelope';

/** The associated data of a cluster secret: its cluster and its name. */
function bindingOf(clusterId: string, name: string): SealBinding {
  return { purpose: 'cluster-secret', fields: [clusterId, name] };
}

/** A cluster secret that cannot be opened; names the row (cluster id, secret name), never the value. */
export class SecretUnreadableError extends Error {
  override name = 'SecretUnreadableError';
  constructor(readonly clusterId: string, readonly secretName: string, reason: string) {
    super(`cluster secret ${secretName} of cluster ${clusterId} cannot be opened: ${reason}`);
  }
}

/** What a pass over the rows at rest did. */
export interface AtRestReport {
  resealed: number;
  rewrapped: number;
  /** Rows that could not be moved (cluster id and name only); they stay as they are and are refused on read. */
  failed: { clusterId: string; name: string; reason: string }[];
}

/** A cluster's secrets, sealed with envelope encryption (bound to cluster id and name) before they reach the database. */
export class SecretRepository {
  constructor(private readonly db: Db, private readonly box: SecretBox) {}

  /** Stores a secret unless one of that name exists; returns the stored value either way. */
  async putIfAbsent(clusterId: string, name: string, create: () => string | Promise<string>): Promise<string> {
    const existing = await this.get(clusterId, name);
    if (existing !== null) return existing;
    await this.db.clusterSecret.createMany({ data: [{ clusterId, name, ...this.sealed(clusterId, name, await create()) }], skipDuplicates: true });
    const stored = await this.get(clusterId, name);
    if (stored === null) throw new Error(`secret ${name} vanished after being stored`);
    return stored;
  }

  /** Replaces a secret's value (a new server certificate, a rotated key), sealed afresh. */
  async replace(clusterId: string, name: string, value: string): Promise<void> {
    const row = this.sealed(clusterId, name, value);
    await this.db.clusterSecret.upsert({ where: { clusterId_name: { clusterId, name } }, create: { clusterId, name, ...row }, update: row });
  }

  async get(clusterId: string, name: string): Promise<string | null> {
    return this.openRow(clusterId, name, await this.db.clusterSecret.findUnique({ where: { clusterId_name: { clusterId, name } } }));
  }

  /**
   * Reads a secret and deletes it, inside the caller's transaction: a value handed out once.
   * The caller serializes takers (a row lock it holds); should the value not open, the caller's
   * transaction is rolled back and the secret stays.
   */
  async takeIn(tx: Prisma.TransactionClient, clusterId: string, name: string): Promise<string | null> {
    const value = this.openRow(clusterId, name, await tx.clusterSecret.findUnique({ where: { clusterId_name: { clusterId, name } } }));
    if (value !== null) await tx.clusterSecret.deleteMany({ where: { clusterId, name } });
    return value;
  }

  private openRow(clusterId: string, name: string, row: Parameters<SecretBox['open']>[0] & { format: number } | null): string | null {
    if (!row) return null;
    if (row.format !== SEAL_FORMAT) {
      throw new SecretUnreadableError(clusterId, name, `sealed in format ${row.format} (no binding); the worker re-seals such rows once at start, then they are refused`);
    }
    try {
      return this.box.open(row, bindingOf(clusterId, name));
    } catch (e) {
      if (e instanceof SealedValueError) throw new SecretUnreadableError(clusterId, name, e.message.replace(/^cluster-secret [^:]*: /, ''));
      throw e;
    }
  }

  async delete(clusterId: string, name: string): Promise<void> {
    await this.db.clusterSecret.deleteMany({ where: { clusterId, name } });
  }

  async deleteAll(clusterId: string): Promise<void> {
    await this.db.clusterSecret.deleteMany({ where: { clusterId } });
  }

  /**
   * The worker's start-up step for secrets at rest, safe to run again and from several
   * processes at once (every write is conditional on the row still being what was read):
   * 1. rows sealed in format 1 (before bindings) are opened once and re-sealed bound to
   *    the row they are in;
   * 2. every data key wrapped by a KEK other than the active one is re-wrapped by the
   *    active KEK (payloads untouched). Interrupted, it resumes where it stopped.
   */
  async maintainAtRest(): Promise<AtRestReport> {
    const report: AtRestReport = { resealed: 0, rewrapped: 0, failed: [] };
    const legacy = await this.db.clusterSecret.findMany({ where: { format: { not: SEAL_FORMAT } }, orderBy: [{ clusterId: 'asc' }, { name: 'asc' }] });
    for (const row of legacy) {
      try {
        const value = this.box.openLegacy(row, `cluster secret ${row.name} of cluster ${row.clusterId}`);
        const { count } = await this.db.clusterSecret.updateMany({
          where: { clusterId: row.clusterId, name: row.name, format: row.format, kekId: row.kekId, wrappedKey: { equals: row.wrappedKey } },
          data: this.sealed(row.clusterId, row.name, value),
        });
        report.resealed += count;
      } catch (e) {
        report.failed.push({ clusterId: row.clusterId, name: row.name, reason: e instanceof SealedValueError ? e.message : (e as Error).name });
      }
    }
    const stale = await this.db.clusterSecret.findMany({
      where: { format: SEAL_FORMAT, kekId: { not: this.box.activeKekId } },
      select: { clusterId: true, name: true, kekId: true, wrappedKey: true },
      orderBy: [{ clusterId: 'asc' }, { name: 'asc' }],
    });
    for (const row of stale) {
      try {
        const moved = this.box.rewrap(row.kekId, row.wrappedKey, bindingOf(row.clusterId, row.name));
        if (!moved) continue;
        const { count } = await this.db.clusterSecret.updateMany({
          where: { clusterId: row.clusterId, name: row.name, format: SEAL_FORMAT, kekId: row.kekId, wrappedKey: { equals: row.wrappedKey } },
          data: { kekId: moved.kekId, wrappedKey: Buffer.from(moved.wrappedKey) },
        });
        report.rewrapped += count;
      } catch (e) {
        report.failed.push({ clusterId: row.clusterId, name: row.name, reason: e instanceof SealedValueError ? e.message : (e as Error).name });
      }
    }
    return report;
  }

  private sealed(clusterId: string, name: string, value: string) {
    const s = this.box.seal(value, bindingOf(clusterId, name));
    return { format: SEAL_FORMAT, kekId: s.kekId, wrappedKey: Buffer.from(s.wrappedKey), iv: Buffer.from(s.iv), tag: Buffer.from(s.tag), ciphertext: Buffer.from(s.ciphertext) };
  }
}
