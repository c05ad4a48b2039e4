import { createHash } from 'node:crypto';
import { SnapshotRepository, SnapshotState } from '../../../libs/core/src';
import { ChecksumMismatchError, SnapshotNotFoundError, type SnapshotStore } from '../../../libs/provisioner/src';
import type { ClusterTarget } from './cluster-target';
import { PermanentError } from './flows/flow';

/** Taking, verifying and removing a cluster's snapshots: Consul's snapshot API on one side, blob storage on the other. */
export class ClusterSnapshots {
  constructor(private readonly target: ClusterTarget, private readonly snapshots: SnapshotRepository, private readonly store: SnapshotStore) {}

  /** Takes the snapshot a Pending row stands for; a retry after it became Available does nothing. */
  async take(snapshotId: string): Promise<string> {
    const row = await this.snapshots.get(snapshotId);
    if (!row) throw new PermanentError('snapshot_gone', `snapshot ${snapshotId} no longer exists`);
    if (row.state === SnapshotState.Available) return `already taken (${row.size} bytes)`;
    const spec = await this.target.spec(row.clusterId);
    const { data, index } = await this.target.local.saveSnapshot(spec, await this.target.loadSecrets(row.clusterId));
    const sha256 = createHash('sha256').update(data).digest('hex');
    await this.store.put(row.blobKey, data, sha256);
    await this.snapshots.markAvailable(row.id, data.length, sha256, index);
    return `${data.length} bytes at index ${index}, sha256 ${sha256.slice(0, 12)}`;
  }

  /** Downloads a snapshot and checks it against the checksum recorded when it was taken. */
  async fetchVerified(snapshotId: string): Promise<Buffer> {
    const row = await this.snapshots.get(snapshotId);
    if (!row || row.state !== SnapshotState.Available || !row.sha256) {
      throw new PermanentError('snapshot_unavailable', `snapshot ${snapshotId} is not available to restore`);
    }
    try {
      return await this.store.get(row.blobKey, row.sha256);
    } catch (e) {
      // Retrying cannot mend a blob that is gone or is not what was stored.
      if (e instanceof ChecksumMismatchError) throw new PermanentError('snapshot_checksum_mismatch', `snapshot ${snapshotId} failed its checksum check: ${e.message}`);
      if (e instanceof SnapshotNotFoundError) throw new PermanentError('snapshot_missing', `snapshot ${snapshotId} is missing from storage`);
      throw e;
    }
  }

  async remove(snapshotId: string): Promise<void> {
    const row = await this.snapshots.get(snapshotId);
    if (!row || row.state === SnapshotState.Deleted) return;
    await this.store.delete(row.blobKey);
    await this.snapshots.setState(row.id, SnapshotState.Deleted);
  }
}
