import { z } from 'zod';
import { instant, uuid } from './fields';
import { ACCEPTED, CLUSTER_PATH, IDEMPOTENCY_HEADER, OPERATION } from './operations';
import { ROLE, body, optionalBody, route } from './route';

/** A snapshot's name: 1 to 128 letters, digits, spaces or . : ( ) - _. */
export const SNAPSHOT_NAME = /^[\w .:()-]{1,128}$/u;
const name = z.string({ error: 'name must be 1 to 128 letters, digits, spaces or . : ( ) - _' })
  .regex(SNAPSHOT_NAME, 'name must be 1 to 128 letters, digits, spaces or . : ( ) - _').meta({ example: 'before the migration' });

export const SNAPSHOT = z.strictObject({
  id: z.uuid(),
  clusterId: z.uuid(),
  name: z.string(),
  kind: z.string().meta({ description: 'manual, scheduled, pre-upgrade or pre-restore' }),
  state: z.string().meta({ description: 'Pending, Available, Failed or Deleted' }),
  size: z.number().nullable().meta({ description: 'Bytes' }),
  sha256: z.string().nullable(),
  consulIndex: z.string().nullable().meta({ description: 'The Raft index the snapshot was taken at (a decimal string)' }),
  createdAt: instant,
}).meta({ id: 'Snapshot' });
export type SnapshotView = z.output<typeof SNAPSHOT>;

const ONE = CLUSTER_PATH.extend({ snapshotId: uuid('the snapshot id') });

export const SNAPSHOT_ROUTES = {
  takeSnapshot: route({
    id: 'takeSnapshot', method: 'POST', path: '/v1/clusters/{clusterId}/snapshots', tag: 'snapshots', auth: 'bearer', roles: [ROLE.write],
    summary: 'Take a manual snapshot (202 with the operation); body { name? }', params: CLUSTER_PATH, body: optionalBody({ name: name.optional() }),
    headers: IDEMPOTENCY_HEADER, answers: { 202: z.strictObject({ snapshot: SNAPSHOT, operation: OPERATION }) },
  }),
  listSnapshots: route({
    id: 'listSnapshots', method: 'GET', path: '/v1/clusters/{clusterId}/snapshots', tag: 'snapshots', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: "The cluster's snapshots, newest first", params: CLUSTER_PATH, answers: { 200: z.strictObject({ snapshots: z.array(SNAPSHOT) }) },
  }),
  renameSnapshot: route({
    id: 'renameSnapshot', method: 'PATCH', path: '/v1/clusters/{clusterId}/snapshots/{snapshotId}', tag: 'snapshots', auth: 'bearer', roles: [ROLE.write],
    summary: 'Rename a snapshot; body { name }', params: ONE, body: body({ name }), answers: { 200: SNAPSHOT },
  }),
  deleteSnapshot: route({
    id: 'deleteSnapshot', method: 'DELETE', path: '/v1/clusters/{clusterId}/snapshots/{snapshotId}', tag: 'snapshots', auth: 'bearer', roles: [ROLE.write],
    summary: 'Delete a snapshot (202 with the operation that deletes its blob)', params: ONE, answers: { 202: ACCEPTED },
  }),
  restoreSnapshot: route({
    id: 'restoreSnapshot', method: 'POST', path: '/v1/clusters/{clusterId}/snapshots/{snapshotId}/restore', tag: 'snapshots', auth: 'bearer', roles: [ROLE.write],
    summary: 'Restore a snapshot; a pre-restore snapshot is taken first unless { takeSnapshot: false }', params: ONE,
    body: optionalBody({ takeSnapshot: z.boolean({ error: 'takeSnapshot must be true or false' }).default(true) }), answers: { 202: ACCEPTED },
  }),
};
