import { createHash } from 'node:crypto';
import { SealedValueError, SnapshotRepository, SnapshotState, openBuffer, sealBuffer, snapshotBinding, type SecretBox } from '../../../../libs/core/src';
import { ChecksumMismatchError, SnapshotNotFoundError, type SnapshotStore } from '../../../../libs/provisioner/src';
import type { ClusterContext } from './cluster-context';
import type { ClusterTarget } from './cluster-target';
import { PermanentError } from './flows/flow';

/**
 * Taking, verifying and removing a cluster's snapshots: Consul's snapshot API on one side,
 * blob storage on the other. A snapshot holds every ACL secret and the whole KV store: it is
 * sealed here, in the worker, with a data key of its own (chunked AES-256-GCM, bound to the
 * cluster id and snapshot id) before it is uploaded; the wrapped data key is kept on the row.
 */
export class ClusterSnapshots {
  constructor(private readonly target: ClusterTarget, private readonly snapshots: SnapshotRepository, private readonly store: SnapshotStore, private readonly box: SecretBox) {}

  /** Where the cluster's snapshots are: its target's own storage (Azure: its storage account), else the control plane's. */
  private async storeOf(clusterId: string): Promise<SnapshotStore | 'gone'> {
    return (await this.target.snapshotStore(clusterId)) ?? this.store;
  }

  private async liveStoreOf(clusterId: string): Promise<SnapshotStore> {
    const store = await this.storeOf(clusterId);
    if (store === 'gone') throw new PermanentError('snapshot_storage_gone', `the snapshot storage of cluster ${clusterId} was deleted with its resources`);
    return store;
  }

  /** Takes the snapshot a Pending row stands for through its cluster's Consul API; a retry after it became Available does nothing. */
  async take(snapshotId: string, cluster: ClusterContext): Promise<string> {
    const row = await this.snapshots.get(snapshotId);
    if (!row) throw new PermanentError('snapshot_gone', `snapshot ${snapshotId} no longer exists`);
    if (row.state === SnapshotState.Available) return `already taken (${row.size} bytes)`;
    const { data, index } = await cluster.consul.saveSnapshot();
    const binding = snapshotBinding(row.clusterId, row.id);
    const { kekId, dataKey, wrappedKey } = this.box.newDataKey(binding);
    const sealed = sealBuffer(dataKey, binding, data);
    dataKey.fill(0);
    const sha256 = createHash('sha256').update(sealed).digest('hex');
    await (await this.liveStoreOf(row.clusterId)).put(row.blobKey, sealed, sha256);
    await this.snapshots.markAvailable(row.id, sealed.length, sha256, index, { kekId, wrappedKey });
    return `${data.length} bytes at index ${index}, sealed ${sealed.length} bytes, sha256 ${sha256.slice(0, 12)}`;
  }

  /** Downloads a snapshot and checks it against the checksum recorded when it was taken. */
  async fetchVerified(snapshotId: string): Promise<Buffer> {
    const row = await this.snapshots.get(snapshotId);
    if (!row || row.state !== SnapshotState.Available || !row.sha256) {
      throw new PermanentError('snapshot_unavailable', `snapshot ${snapshotId} is not available to restore`);
    }
    if (!row.kekId || !row.wrappedKey) {
      throw new PermanentError('snapshot_unsealed', `snapshot ${snapshotId} was stored unsealed (taken before snapshots were sealed) and is not restored; take a new one`);
    }
    let sealed: Buffer;
    try {
      sealed = await (await this.liveStoreOf(row.clusterId)).get(row.blobKey, row.sha256);
    } catch (e) {
      // Retrying cannot mend a blob that is gone or is not what was stored.
      if (e instanceof ChecksumMismatchError) throw new PermanentError('snapshot_checksum_mismatch', `snapshot ${snapshotId} failed its checksum check: ${e.message}`);
      if (e instanceof SnapshotNotFoundError) throw new PermanentError('snapshot_missing', `snapshot ${snapshotId} is missing from storage`);
      throw e;
    }
    // Every frame is authenticated and the end checked before anything is returned: a
    // tampered or truncated blob never reaches Consul.
    try {
      const binding = snapshotBinding(row.clusterId, row.id);
      const dataKey = this.box.unwrapDataKey(row.kekId, row.wrappedKey, binding);
      try {
        return openBuffer(dataKey, binding, sealed);
      } finally {
        dataKey.fill(0);
      }
    } catch (e) {
      if (e instanceof SealedValueError) throw new PermanentError('snapshot_integrity', `snapshot ${snapshotId} of cluster ${row.clusterId} cannot be opened: ${e.message}`);
      throw e;
    }
  }

  async remove(snapshotId: string): Promise<void> {
    const row = await this.snapshots.get(snapshotId);
    if (!row || row.state === SnapshotState.Deleted) return;
    const store = await this.storeOf(row.clusterId);
    // Storage deleted with the cluster took the blob with it.
    if (store !== 'gone') await store.delete(row.blobKey);
    await this.snapshots.setState(row.id, SnapshotState.Deleted);
  }
}
