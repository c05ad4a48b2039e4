import type { Db } from './prisma';
import { SnapshotState, type SnapshotKind } from '../model';
import type { Cluster, Snapshot } from '../generated/prisma/client';
import { SealedValueError, type SealBinding, type SecretBox } from '../envelope';

/** What a snapshot's data key and frames are bound to: its cluster and its own id. */
export function snapshotBinding(clusterId: string, snapshotId: string): SealBinding {
  return { purpose: 'snapshot', fields: [clusterId, snapshotId] };
}

/**
 * Snapshot rows as the worker takes, stores and prunes them: where the blob is, its size, checksum
 * and raft index. Read by id across tenants: system-only, the API's module does not provide it
 * (the API's are TenantSnapshotRepository's).
 */
export class SnapshotRepository {
  constructor(private readonly db: Db) {}

  /**
   * Re-wraps the data key of every sealed snapshot wrapped by a KEK other than the active
   * one (the blobs are untouched). Conditional updates: idempotent, resumable, safe with
   * several workers. Returns how many moved and the snapshots that could not be.
   */
  async rewrapKeys(box: SecretBox): Promise<{ rewrapped: number; failed: { clusterId: string; snapshotId: string; reason: string }[] }> {
    const out = { rewrapped: 0, failed: [] as { clusterId: string; snapshotId: string; reason: string }[] };
    const rows = await this.db.snapshot.findMany({
      where: { kekId: { not: null }, NOT: { kekId: box.activeKekId } },
      select: { id: true, clusterId: true, kekId: true, wrappedKey: true },
      orderBy: { id: 'asc' },
    });
    for (const row of rows) {
      if (!row.kekId || !row.wrappedKey) continue;
      try {
        const moved = box.rewrap(row.kekId, row.wrappedKey, snapshotBinding(row.clusterId, row.id));
        if (!moved) continue;
        const { count } = await this.db.snapshot.updateMany({
          where: { id: row.id, kekId: row.kekId, wrappedKey: { equals: row.wrappedKey } },
          data: { kekId: moved.kekId, wrappedKey: Buffer.from(moved.wrappedKey) },
        });
        out.rewrapped += count;
      } catch (e) {
        out.failed.push({ clusterId: row.clusterId, snapshotId: row.id, reason: e instanceof SealedValueError ? e.message : (e as Error).name });
      }
    }
    return out;
  }

  static blobKey(clusterId: string, snapshotId: string): string {
    return `${clusterId}/${snapshotId}.snap`;
  }

  get(id: string): Promise<Snapshot | null> {
    return this.db.snapshot.findUnique({ where: { id } });
  }

  /** A pre-restore snapshot the restore operation takes itself (created once; the id comes from the operation's params). */
  async ensurePending(cluster: Cluster, id: string, name: string, kind: SnapshotKind, operationId: string): Promise<Snapshot> {
    await this.db.snapshot.createMany({
      data: [{ id, tenantId: cluster.tenantId, clusterId: cluster.id, name, kind, state: SnapshotState.Pending, blobKey: SnapshotRepository.blobKey(cluster.id, id), operationId }],
      skipDuplicates: true,
    });
    return this.db.snapshot.findUniqueOrThrow({ where: { id } });
  }

  /** `size` and `sha256` are those of the stored (sealed) blob; `sealedBy` the KEK id and wrapped data key that open it. */
  async markAvailable(id: string, size: number, sha256: string, consulIndex: bigint, sealedBy: { kekId: string; wrappedKey: Buffer }): Promise<void> {
    await this.db.snapshot.update({
      where: { id },
      data: { state: SnapshotState.Available, size: BigInt(size), sha256, consulIndex, kekId: sealedBy.kekId, wrappedKey: Buffer.from(sealedBy.wrappedKey) },
    });
  }

  async setState(id: string, state: SnapshotState): Promise<void> {
    await this.db.snapshot.update({ where: { id }, data: { state } });
  }

  /** Available snapshots of one kind beyond the newest `keep`: what retention prunes. */
  beyondRetention(clusterId: string, kind: SnapshotKind, keep: number): Promise<Snapshot[]> {
    return this.db.snapshot.findMany({ where: { clusterId, kind, state: SnapshotState.Available }, orderBy: { createdAt: 'desc' }, skip: keep });
  }

  /** Every snapshot of a cluster whose blob may exist (for delete). */
  withBlobs(clusterId: string): Promise<Snapshot[]> {
    return this.db.snapshot.findMany({ where: { clusterId, state: { not: SnapshotState.Deleted } } });
  }


}
