import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { dropTestDatabase, testConfig, waitFor } from '../../../../test/support/stack';
import { ClusterRepository } from './cluster.repository';
import { OperationRepository } from './operation.repository';
import { TenantClusterRepository } from './tenant-cluster.repository';
import { TenantOperationRepository } from './tenant-operation.repository';
import { closeDb, createDb, type Db } from './prisma';

const TENANT = 'c1a1c1a1-0000-4000-8000-00000000000c';

// The claim statement and the cancel against real PostgreSQL, interleaved on
// separate connections: a third connection holds the operation's row so that
// the two queue up behind it in a chosen order, then lets go.
describe('claim and cancel racing (real statements)', () => {
  let url: string;
  let db: Db;
  let holder: pg.Client;
  let holderPid: number;
  let monitor: pg.Client; // not the holder's: inside a transaction, pg_stat_activity is read once and cached
  let clusters: ClusterRepository;
  let tenantClusters: TenantClusterRepository;
  let operations: OperationRepository;
  let tenantOperations: TenantOperationRepository;

  before(async () => {
    url = (await testConfig({})).DATABASE_URL;
    db = createDb(url, 6);
    clusters = new ClusterRepository(db);
    tenantClusters = new TenantClusterRepository(db);
    operations = new OperationRepository(db);
    tenantOperations = new TenantOperationRepository(db);
    holder = new pg.Client({ connectionString: url });
    await holder.connect();
    monitor = new pg.Client({ connectionString: url });
    await monitor.connect();
    holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  });
  after(async () => {
    await holder.end();
    await monitor.end();
    await closeDb(db);
    await dropTestDatabase(url);
  });

  /** A Running cluster (its create ended) with a queued mutating operation (a scale). */
  async function queuedScale(name: string) {
    const { cluster, operation: create } = await tenantClusters.createWithOperation({
      tenantId: TENANT, subscriptionId: randomUUID(), resourceGroup: 'rg', name, region: 'westeurope', datacenter: name,
      consulVersion: '1.8.7', tier: 'development', serverCount: 1, publicEndpoint: false, createdBy: 'test',
    });
    const [claimed] = await operations.claimMany([create.id]);
    assert.equal(claimed?.id, create.id);
    await operations.succeedMany([{ id: create.id, claimId: claimed!.claimId!, result: null, steps: null }]);
    const scale = await tenantClusters.addOperation(cluster, 'scale', 'test', 'test');
    return { cluster, scale };
  }

  /** What the other connections to this database are waiting for (the holder's own is left out). */
  const waiting = async () => {
    const { rows } = await monitor.query<{ w: string }>(
      `SELECT coalesce(wait_event_type, '-') || ':' || coalesce(wait_event, '-') || ':' || left(query, 40) AS w
       FROM pg_stat_activity WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), $1) AND state <> 'idle'`, [holderPid]);
    return rows.map((r) => r.w);
  };
  const lockWaits = (ws: string[]) => ws.filter((w) => w.startsWith('Lock:')).length;

  /** Holds the operation's row, lets `first` then `second` queue behind it (in that order), and lets go. */
  async function interleave<A, B>(operationId: string, first: () => Promise<A>, second: () => Promise<B>): Promise<[A, B]> {
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "Operation" WHERE "id" = $1 FOR UPDATE`, [operationId]);
    const a = first();
    a.catch(() => undefined);
    await waitFor('the first statement to wait for the row', waiting, (ws) => lockWaits(ws) >= 1, 10_000, 10);
    const b = second();
    b.catch(() => undefined);
    await waitFor('the second statement to wait', waiting, (ws) => lockWaits(ws) >= 2, 10_000, 10);
    await holder.query('COMMIT');
    return [await a, await b];
  }

  it('a cancel that commits first leaves no lock: the claim gets nothing and the cluster is free', async () => {
    const { cluster, scale } = await queuedScale('cancel-first');
    const [canceled, claimed] = await interleave(scale.id, () => tenantOperations.cancelQueued(scale, 'test'), () => operations.claimMany([scale.id]));
    assert.equal(canceled, true);
    assert.deepEqual(claimed, [null]);
    assert.equal((await operations.get(scale.id))!.state, 'Canceled');
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, null, 'no lock is left held by a canceled operation');
    // And the cluster takes its next mutating operation.
    const next = await tenantClusters.addOperation(cluster, 'scale', 'test', 'test');
    assert.equal((await operations.claimMany([next.id]))[0]?.id, next.id);
  });

  it('a claim that goes first wins: the cancel finds it Running and the lock is the running operation\'s', async () => {
    const { cluster, scale } = await queuedScale('claim-first');
    const [claimed, canceled] = await interleave(scale.id, () => operations.claimMany([scale.id]), () => tenantOperations.cancelQueued(scale, 'test'));
    assert.equal(canceled, false);
    assert.equal(claimed[0]?.id, scale.id);
    assert.equal((await operations.get(scale.id))!.state, 'Running');
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, scale.id);
  });

  it('a Running operation with a live lease is not claimed again; once it lapsed it is, and the first claim\'s writes change nothing', async () => {
    const { cluster, scale } = await queuedScale('lease');
    const [first] = await operations.claimMany([scale.id], { owner: 'worker-a', leaseMs: 60_000 });
    assert.equal(first?.claimedBy, 'worker-a');
    assert.ok(first?.claimId && first.leaseUntil && first.leaseUntil.getTime() > Date.now() + 30_000);
    assert.deepEqual(await operations.claimMany([scale.id], { owner: 'worker-b', leaseMs: 60_000 }), [null], 'a live lease is not taken over');
    assert.deepEqual([...await operations.renewLeases([{ id: scale.id, claimId: first.claimId }], 60_000)], [first.claimId], 'its owner renews it');

    // The lease lapses (its runner paused or gone): the next claim takes it, with a claim id of its own.
    await db.$executeRaw`UPDATE "Operation" SET "leaseUntil" = (now() AT TIME ZONE 'UTC') - interval '1 second' WHERE "id" = ${scale.id}::uuid`;
    const [second] = await operations.claimMany([scale.id], { owner: 'worker-b', leaseMs: 60_000 });
    assert.equal(second?.id, scale.id);
    assert.equal(second.claimedBy, 'worker-b');
    assert.notEqual(second.claimId, first.claimId);
    assert.equal(second.attempts, 2);
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, scale.id, 'the lock stays with the operation');

    // The first claim's writes: none changes the row.
    const before = await operations.get(scale.id);
    const a = { id: scale.id, claimId: first.claimId };
    assert.equal((await operations.saveStepsMany([{ ...a, steps: '[{"name":"stale","state":"Running"}]', progress: 50, currentStep: 'stale' }])).size, 0);
    assert.equal((await operations.renewLeases([a], 60_000)).size, 0);
    assert.equal(await operations.noteRetry(scale.id, first.claimId, { code: 'step_failed', message: 'stale' }), false);
    assert.equal(await operations.fail(scale.id, { code: 'step_failed', message: 'stale' }, first.claimId), false);
    assert.equal((await operations.succeedMany([{ ...a, result: '{"stale":true}', steps: '[]' }])).size, 0);
    assert.equal(await operations.fail(scale.id, { code: 'worker_lost', message: 'no claim' }, null), false, 'nor does an unclaimed fail while a lease is live');
    const after = await operations.get(scale.id);
    assert.deepEqual({ ...after, updatedAt: null }, { ...before, updatedAt: null });
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, scale.id);

    // The second claim's writes do.
    assert.equal((await operations.saveStepsMany([{ id: scale.id, claimId: second.claimId!, steps: '[]', progress: 10, currentStep: 'x' }])).size, 1);
    assert.equal((await operations.succeedMany([{ id: scale.id, claimId: second.claimId!, result: null, steps: '[]' }])).size, 1);
    assert.equal((await operations.get(scale.id))!.state, 'Succeeded');
    assert.equal((await clusters.get(cluster.id))!.lockedByOperationId, null);
  });

  it('the sweeper frees locks held by ended or vanished operations, and only those', async () => {
    const ended = await queuedScale('sweep-ended');
    const live = await queuedScale('sweep-live');
    const [running] = await operations.claimMany([live.scale.id]);
    assert.equal(running?.id, live.scale.id);
    // What an older race left: a lock held by a Canceled operation, and one by an operation id that no row has.
    await db.operation.update({ where: { id: ended.scale.id }, data: { state: 'Canceled', finishedAt: new Date() } });
    await db.cluster.update({ where: { id: ended.cluster.id }, data: { lockedByOperationId: ended.scale.id } });
    const gone = await queuedScale('sweep-gone');
    await db.cluster.update({ where: { id: gone.cluster.id }, data: { lockedByOperationId: randomUUID() } });
    const freed = await clusters.releaseLocksOfEndedOperations();
    assert.deepEqual(freed.sort(), [ended.cluster.id, gone.cluster.id].sort());
    assert.equal((await clusters.get(live.cluster.id))!.lockedByOperationId, live.scale.id, 'a running operation keeps its lock');
    assert.deepEqual(await clusters.releaseLocksOfEndedOperations(), []);
  });
});
