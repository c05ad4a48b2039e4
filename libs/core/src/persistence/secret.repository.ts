import type { Db } from './prisma';
import type { Prisma } from '../generated/prisma/client';
import { SEAL_FORMAT, SealedValueError, type SealBinding, type SecretBox } from '../envelope';
import { SecretName } from '../model';

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
  rewrapped: number;
  /** Rows still sealed in format 1 (no binding): left as they are, refused on read, re-sealed only by an operator (resealFormat1). */
  unbound: number;
  /** Rows that could not be moved (cluster id and name only); they stay as they are and are refused on read. */
  failed: { clusterId: string; name: string; reason: string }[];
}

/** A row sealed in format 1, as an operator's check lists it: where it is, never what it holds. */
export interface UnboundSecret {
  clusterId: string;
  name: string;
  createdAt: Date;
}

/** What the operator's re-seal of format-1 rows did (rows by cluster id and name only). */
export interface ResealReport {
  resealed: { clusterId: string; name: string }[];
  failed: AtRestReport['failed'];
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

  /** replace, inside the caller's transaction (a value written with the row that refers to it). */
  async replaceIn(tx: Prisma.TransactionClient, clusterId: string, name: string, value: string): Promise<void> {
    const row = this.sealed(clusterId, name, value);
    await tx.clusterSecret.upsert({ where: { clusterId_name: { clusterId, name } }, create: { clusterId, name, ...row }, update: row });
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
      throw new SecretUnreadableError(clusterId, name,
        `sealed in format ${row.format} (not bound to its row), which is no longer opened; an operator re-seals it only after checking where it came from (npm run secrets-at-rest -- reseal-format-1)`);
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

  /**
   * A deleted cluster's secrets. The audit export's SAS stays: the export still has the cluster's
   * last events to write, and removes it itself once it has (AuditExportRepository.retireDrained).
   */
  async deleteAll(clusterId: string): Promise<void> {
    await this.db.clusterSecret.deleteMany({ where: { clusterId, name: { not: SecretName.AuditExportSas } } });
  }

  /**
   * The worker's start-up step for secrets at rest, safe to run again and from several
   * processes at once (every write is conditional on the row still being what was read):
   * every data key wrapped by a KEK other than the active one is re-wrapped by the active
   * KEK (payloads untouched). Interrupted, it resumes where it stopped. Rows sealed in
   * format 1 are not opened: nothing in such a value says which row it was sealed for, so
   * re-sealing it here would bind a value copied into another cluster or name to that row.
   * They are counted, refused on read, and re-sealed only by an operator (resealFormat1).
   */
  async maintainAtRest(): Promise<AtRestReport> {
    const report: AtRestReport = { rewrapped: 0, unbound: await this.countUnbound(), failed: [] };
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

  /** How many rows are sealed in format 1 (what the worker's cluster_secrets_unbound gauge shows). */
  countUnbound(): Promise<number> {
    return this.db.clusterSecret.count({ where: { format: { not: SEAL_FORMAT } } });
  }

  /** The rows sealed in format 1: cluster, name and when stored, never a value. */
  listUnbound(clusterId?: string): Promise<UnboundSecret[]> {
    return this.db.clusterSecret.findMany({
      where: { format: { not: SEAL_FORMAT }, ...(clusterId ? { clusterId } : {}) },
      select: { clusterId: true, name: true, createdAt: true },
      orderBy: [{ clusterId: 'asc' }, { name: 'asc' }],
    });
  }

  /**
   * The operator's explicit step for rows sealed in format 1 (before 2026-12-02): each is opened
   * without a binding and re-sealed bound to the row it is in, so the operator runs it only for
   * rows known to be where they were sealed (listUnbound shows them; a format-1 row that appeared
   * after the migration is a copy, not a leftover). `clusterId` narrows it to one cluster. Each
   * write is conditional on the row being unchanged since it was read.
   */
  async resealFormat1(clusterId?: string): Promise<ResealReport> {
    const result: ResealReport = { resealed: [], failed: [] };
    const rows = await this.db.clusterSecret.findMany({
      where: { format: { not: SEAL_FORMAT }, ...(clusterId ? { clusterId } : {}) },
      orderBy: [{ clusterId: 'asc' }, { name: 'asc' }],
    });
    for (const row of rows) {
      try {
        const value = this.box.openLegacy(row, `cluster secret ${row.name} of cluster ${row.clusterId}`);
        const { count } = await this.db.clusterSecret.updateMany({
          where: { clusterId: row.clusterId, name: row.name, format: row.format, kekId: row.kekId, wrappedKey: { equals: row.wrappedKey } },
          data: this.sealed(row.clusterId, row.name, value),
        });
        if (count) result.resealed.push({ clusterId: row.clusterId, name: row.name });
      } catch (e) {
        result.failed.push({ clusterId: row.clusterId, name: row.name, reason: e instanceof SealedValueError ? e.message : (e as Error).name });
      }
    }
    return result;
  }

  private sealed(clusterId: string, name: string, value: string) {
    const s = this.box.seal(value, bindingOf(clusterId, name));
    return { format: SEAL_FORMAT, kekId: s.kekId, wrappedKey: Buffer.from(s.wrappedKey), iv: Buffer.from(s.iv), tag: Buffer.from(s.tag), ciphertext: Buffer.from(s.ciphertext) };
  }
}
