import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createOperationsQueue, createRedis, operationJobId } from '../libs/core/src';
import { startFakeArm, type FakeApplication, type FakeArm } from './support/fake-arm';
import { WRITE, startStack, testConfig, waitFor, type TestStack } from './support/stack';

const SECRET = randomBytes(32).toString('base64url');
const CUSTOMER_TENANT = 'c0570000-0000-4000-8000-00000000c057';
const SUB = 'a5b5c5d5-0000-4000-8000-0000000000a5';

/** Row counts of everything a notification may write. */
async function fingerprint(s: TestStack): Promise<string> {
  const [c, o, n, a] = await Promise.all([s.db.cluster.count(), s.db.operation.count(), s.db.managedAppNotification.count(), s.db.auditEvent.count()]);
  return JSON.stringify({ clusters: c, operations: o, notifications: n, audit: a });
}

/** How many of this database's sessions wait on a lock. */
async function lockWaiters(s: TestStack): Promise<number> {
  const [row] = await s.db.$queryRaw<Array<{ n: number }>>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
  return row.n;
}

function application(name: string, over: Partial<FakeApplication> = {}, parameters: Record<string, unknown> = {}): FakeApplication {
  return {
    id: `/subscriptions/${SUB}/resourceGroups/rg-${name}/providers/Microsoft.Solutions/applications/${name}`,
    location: 'westeurope',
    managedResourceGroupId: `/subscriptions/${SUB}/resourceGroups/mrg-consul-${name}-20261202`,
    parameters: {
      location: 'westeurope', clusterName: name, datacenter: 'dc1', tier: 'development', consulVersion: '1.8.7', externalEndpoint: false,
      vnetCidr: '172.25.16.0/24', upgradeMode: 'automatic', upgradeWindowDay: 0, upgradeWindowStartHour: 2, upgradeWindowHours: 4,
      snapshotIntervalHours: 6, snapshotRetention: 10, ...parameters,
    },
    outputs: { tenantId: CUSTOMER_TENANT },
    ...over,
  };
}

function notification(app: FakeApplication, eventType: string, provisioningState: string, extra: Record<string, unknown> = {}) {
  return { eventType, applicationId: app.id, eventTime: new Date().toISOString().replace('Z', '1234Z'), provisioningState, ...extra };
}

describe('POST /resource: managed application notifications', () => {
  let s: TestStack;
  let arm: FakeArm;
  const post = (body: unknown, sig: string | null = SECRET) => s.request('POST', `/resource${sig === null ? '' : `?sig=${encodeURIComponent(sig)}`}`, { body });
  /** What the worker leaves when a delete operation finished. */
  const finishDelete = async (operationId: string) => {
    const op = await s.db.operation.update({ where: { id: operationId }, data: { state: 'Succeeded', finishedAt: new Date() } });
    await s.db.cluster.update({ where: { id: op.clusterId }, data: { state: 'Deleted' } });
  };

  before(async () => {
    arm = await startFakeArm();
    s = await startStack({ config: await testConfig({ NOTIFICATION_SECRET: SECRET, ...arm.env() }) });
  });
  after(async () => {
    await s?.close();
    await arm?.close();
  });

  it('PUT Succeeded creates the cluster in the managed resource group and queues its create operation; a repeat changes nothing', async () => {
    const app = application('orders');
    arm.putApplication(app);
    const put = notification(app, 'PUT', 'Succeeded', {
      plan: { publisher: 'contoso', product: 'managed-consul', name: 'standard', version: '1.0.0' },
      billingDetails: { resourceUsageId: 'usage-5f0c2e11-orders' },
    });
    const res = await post(put);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual({ status: res.body.status, outcome: res.body.outcome }, { status: 'processed', outcome: 'created' });
    const cluster = await s.db.cluster.findUniqueOrThrow({ where: { id: res.body.clusterId } });
    assert.equal(cluster.managedApplicationId, app.id.toLowerCase());
    assert.equal(cluster.managedResourceGroupId, app.managedResourceGroupId);
    assert.equal(cluster.managedResourceGroup, 'mrg-consul-orders-20261202');
    assert.equal(cluster.tenantId, CUSTOMER_TENANT, 'the tenant from the application\'s output, not from the caller');
    assert.equal(cluster.subscriptionId, SUB);
    assert.equal(cluster.resourceGroup, 'rg-orders');
    assert.equal(cluster.tier, 'standard', 'the plan decides the tier');
    assert.equal(cluster.serverCount, 3);
    assert.equal(cluster.billingResourceId, 'usage-5f0c2e11-orders', 'metered against billingDetails.resourceUsageId');
    assert.equal(cluster.billingPlanId, 'standard', 'metered under the plan it was bought with');
    assert.equal(cluster.vnetCidr, '172.25.16.0/24');
    assert.deepEqual([cluster.snapshotIntervalHours, cluster.snapshotRetention, cluster.upgradeMode], [6, 10, 'automatic']);
    assert.deepEqual(cluster.upgradeWindow, { dayOfWeek: 0, startHourUtc: 2, hours: 4 });
    assert.equal(cluster.target, 'local', 'the default target');
    const op = await s.db.operation.findUniqueOrThrow({ where: { id: res.body.operationId } });
    assert.deepEqual([op.kind, op.state, op.clusterId, op.requestedBy], ['create', 'Queued', cluster.id, 'azure:managed-application']);
    const redis = createRedis(s.config.REDIS_URL, false);
    const queue = createOperationsQueue(redis, s.config.QUEUE_PREFIX);
    try {
      assert.ok(await queue.getJob(operationJobId(op.id)), 'the create operation is on the queue');
    } finally {
      await queue.close();
      redis.disconnect();
    }
    // The customer sees it in their tenant.
    const list = await s.request('GET', '/v1/clusters', { token: s.token(CUSTOMER_TENANT, WRITE) });
    assert.deepEqual(list.body.clusters.map((c: any) => c.id), [cluster.id]);
    // Its tier is its plan's: another tier would meter a dimension the plan lacks. Refused, nothing written.
    const opsBefore = await s.db.operation.count({ where: { clusterId: cluster.id } });
    const scale = await s.request('PATCH', `/v1/clusters/${cluster.id}`, { token: s.token(CUSTOMER_TENANT, WRITE), body: { tier: 'plus', snapshotPolicy: { intervalHours: 2, retention: 3 } } });
    assert.equal(scale.status, 409, JSON.stringify(scale.body));
    assert.equal(scale.body.error.code, 'tier_is_plan');
    const after = await s.db.cluster.findUniqueOrThrow({ where: { id: cluster.id } });
    assert.deepEqual([after.tier, after.snapshotIntervalHours], ['standard', 6], 'neither the tier nor the policy sent with it changed');
    assert.equal(await s.db.operation.count({ where: { clusterId: cluster.id } }), opsBefore);

    const before = await fingerprint(s);
    const reads = arm.counters.applicationReads;
    const again = await post(put);
    assert.equal(again.status, 200);
    assert.deepEqual({ status: again.body.status, outcome: again.body.outcome, clusterId: again.body.clusterId }, { status: 'duplicate', outcome: 'created', clusterId: cluster.id });
    assert.equal(await fingerprint(s), before, 'a repeated notification writes nothing');
    assert.equal(arm.counters.applicationReads, reads + 1, 'a repeat is checked against ARM like any event (one read)');
    // Another state of the same application finds the cluster rather than making a second one.
    const accepted = await post(notification(app, 'PUT', 'Accepted'));
    assert.deepEqual([accepted.status, accepted.body.outcome, accepted.body.clusterId], [200, 'found', cluster.id]);
    assert.equal(await s.db.cluster.count({ where: { managedApplicationId: app.id.toLowerCase() } }), 1);
  });

  it('PUT Accepted before the application\'s deployment ran waits for Succeeded; Succeeded then creates', async () => {
    const app = application('early', { outputs: {} });
    arm.putApplication(app);
    const accepted = await post(notification(app, 'PUT', 'Accepted'));
    assert.deepEqual([accepted.status, accepted.body.outcome, accepted.body.clusterId], [200, 'waiting', undefined]);
    assert.equal(await s.db.cluster.count({ where: { managedApplicationId: app.id.toLowerCase() } }), 0);
    // Succeeded while ARM does not show the outputs yet: 503, so that Azure sends it again; nothing recorded.
    const notifications = await s.db.managedAppNotification.count();
    const early = await post(notification(app, 'PUT', 'Succeeded'));
    assert.equal(early.status, 503, JSON.stringify(early.body));
    assert.equal(early.body.error.code, 'application_outputs_pending');
    assert.equal(await s.db.managedAppNotification.count(), notifications, 'nothing recorded: the retry acts afresh');
    arm.putApplication({ ...app, outputs: { tenantId: CUSTOMER_TENANT } });
    const succeeded = await post(notification(app, 'PUT', 'Succeeded'));
    assert.equal(succeeded.body.outcome, 'created');
    const cluster = await s.db.cluster.findUniqueOrThrow({ where: { id: succeeded.body.clusterId } });
    assert.equal(cluster.tier, 'development', 'no plan (a service catalog application): the tier parameter');
  });

  it('DELETE Deleting queues the delete; Deleted afterwards queues nothing more', async () => {
    const app = application('retire');
    arm.putApplication(app);
    const created = await post(notification(app, 'PUT', 'Succeeded'));
    const clusterId = created.body.clusterId;
    arm.putApplication({ ...app, provisioningState: 'Deleting' });
    const deleting = await post(notification(app, 'DELETE', 'Deleting'));
    assert.deepEqual([deleting.status, deleting.body.outcome, deleting.body.clusterId], [200, 'delete-requested', clusterId]);
    const op = await s.db.operation.findUniqueOrThrow({ where: { id: deleting.body.operationId } });
    assert.deepEqual([op.kind, op.state, op.requestedBy], ['delete', 'Queued', 'azure:managed-application']);
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } })).state, 'Deleting');
    // Deleted comes once ARM no longer has the application.
    arm.deleteApplication(app.id);
    const deleted = await post(notification(app, 'DELETE', 'Deleted'));
    assert.deepEqual([deleted.status, deleted.body.outcome], [200, 'recorded']);
    assert.equal(await s.db.operation.count({ where: { clusterId, kind: 'delete' } }), 1, 'one delete');
  });

  it('DELETE Deleting deletes a cluster with deletion protection on (Azure deletes its managed resource group whatever we answer), saying so', async () => {
    const app = application('guarded');
    arm.putApplication(app);
    const clusterId = (await post(notification(app, 'PUT', 'Succeeded'))).body.clusterId;
    const customer = s.token(CUSTOMER_TENANT, WRITE);
    assert.equal((await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: customer, body: { deletionProtection: true } })).status, 200);
    const refused = await s.request('DELETE', `/v1/clusters/${clusterId}`, { token: customer });
    assert.deepEqual([refused.status, refused.body.error.code], [409, 'deletion_protected'], 'the API refuses its own delete');

    arm.putApplication({ ...app, provisioningState: 'Deleting' });
    const deleting = await post(notification(app, 'DELETE', 'Deleting'));
    assert.deepEqual([deleting.status, deleting.body.outcome, deleting.body.clusterId], [200, 'delete-requested', clusterId]);
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } })).state, 'Deleting');
    const record = await s.db.managedAppNotification.findFirstOrThrow({ where: { clusterId, eventType: 'DELETE' } });
    assert.match(record.reason ?? '', /deletion protection was on; Azure deletes the managed resource group whatever the answer/);
    const event = await s.db.auditEvent.findFirstOrThrow({ where: { clusterId, action: 'cluster.delete.requested' } });
    assert.deepEqual([event.actor, event.details], ['azure:managed-application', { previousState: 'Creating', deletionProtection: true }]);
  });

  it('the application\'s deletionProtection and upgradePin parameters reach the cluster; a pin the API refuses rejects it; without them, the API\'s defaults', async () => {
    const customer = s.token(CUSTOMER_TENANT, WRITE);
    const app = application('pinned', {}, { deletionProtection: true, upgradePin: 'patch' });
    arm.putApplication(app);
    const made = await post(notification(app, 'PUT', 'Succeeded'));
    assert.deepEqual([made.status, made.body.outcome], [200, 'created'], JSON.stringify(made.body));
    const view = await s.request('GET', `/v1/clusters/${made.body.clusterId}`, { token: customer });
    assert.deepEqual([view.body.deletionProtection, view.body.upgradePolicy.pin, view.body.upgradePolicy.mode], [true, 'patch', 'automatic']);
    const refused = await s.request('DELETE', `/v1/clusters/${made.body.clusterId}`, { token: customer });
    assert.deepEqual([refused.status, refused.body.error.code], [409, 'deletion_protected'], 'protected from the start');

    // The blade's allowed sources become the public endpoint's allowlist; one the API refuses rejects the application.
    const open = application('open', {}, { externalEndpoint: true, publicSources: ' 203.0.113.0/24, 2001:db8::/48' });
    arm.putApplication(open);
    const opened = await post(notification(open, 'PUT', 'Succeeded'));
    assert.deepEqual([opened.status, opened.body.outcome], [200, 'created'], JSON.stringify(opened.body));
    const openView = await s.request('GET', `/v1/clusters/${opened.body.clusterId}`, { token: customer });
    assert.equal(openView.body.publicEndpoint, true);
    assert.deepEqual(openView.body.ipAllowlist, [{ cidr: '203.0.113.0/24', description: 'managed application' }, { cidr: '2001:db8::/48', description: 'managed application' }]);
    const hostBits = application('host-bits', {}, { externalEndpoint: true, publicSources: '203.0.113.7/24' });
    arm.putApplication(hostBits);
    const refusedSources = await post(notification(hostBits, 'PUT', 'Succeeded'));
    assert.deepEqual([refusedSources.status, refusedSources.body.outcome], [200, 'rejected']);

    // An application made before the parameters existed: unprotected, no pin.
    const older = application('older');
    delete older.parameters.deletionProtection;
    delete older.parameters.upgradePin;
    arm.putApplication(older);
    const plain = await post(notification(older, 'PUT', 'Succeeded'));
    const plainView = await s.request('GET', `/v1/clusters/${plain.body.clusterId}`, { token: customer });
    assert.deepEqual([plainView.body.deletionProtection, plainView.body.upgradePolicy.pin], [false, 'none']);

    // A pin outside the API's rule (mainTemplate's allowedValues stop it in Azure; the API checks again): rejected, nothing written.
    const bad = application('bad-pin', {}, { upgradePin: 'major' });
    arm.putApplication(bad);
    const before = await s.db.cluster.count();
    const rejected = await post(notification(bad, 'PUT', 'Succeeded'));
    assert.deepEqual([rejected.status, rejected.body.outcome], [200, 'rejected']);
    assert.match(await s.db.managedAppNotification.findFirstOrThrow({ where: { applicationId: bad.id.toLowerCase() } }).then((n) => n.reason ?? ''), /upgradePolicy\.pin must be one of none, patch, minor/);
    assert.equal(await s.db.cluster.count(), before);
  });

  it('a DELETE notification for an application ARM does not show being deleted is refused, and nothing changes', async () => {
    const app = application('keep');
    arm.putApplication(app);
    const created = await post(notification(app, 'PUT', 'Succeeded'));
    assert.equal(created.body.outcome, 'created');
    const before = await fingerprint(s);
    for (const state of ['Succeeded', 'Accepted', 'Updating']) {
      arm.putApplication({ ...app, provisioningState: state });
      for (const notified of ['Deleting', 'Deleted']) {
        const res = await post(notification(app, 'DELETE', notified));
        assert.equal(res.status, 409, `DELETE ${notified} while ARM shows ${state}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'application_not_deleting');
        assert.match(res.body.error.message, new RegExp(`shows application .* ${state}, not being deleted`));
        assert.deepEqual(res.body.error.details, { field: 'provisioningState', notified: `DELETE ${notified}`, armProvisioningState: state });
      }
    }
    assert.equal(await fingerprint(s), before, 'no notification row, no operation, no audit event');
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: created.body.clusterId } })).state, 'Creating');
    // Once ARM shows the delete, the same notification deletes.
    arm.putApplication({ ...app, provisioningState: 'Deleting' });
    const deleting = await post(notification(app, 'DELETE', 'Deleting'));
    assert.deepEqual([deleting.status, deleting.body.outcome, deleting.body.clusterId], [200, 'delete-requested', created.body.clusterId]);
  });

  it('every event is checked against ARM: an application it does not know, a state it does not show, another managed resource group', async () => {
    const ghost = application('ghost-app');
    const before = await fingerprint(s);
    for (const [eventType, state] of [['PATCH', 'Succeeded'], ['PUT', 'Failed'], ['PATCH', 'Failed'], ['DELETE', 'Failed'], ['PUT', 'Accepted']]) {
      const res = await post(notification(ghost, eventType, state, state === 'Failed' ? { error: { code: 'X', message: 'forged' } } : {}));
      assert.deepEqual([res.status, res.body.error?.code], [400, 'application_not_found'], `${eventType} ${state}: ${JSON.stringify(res.body)}`);
    }
    const app = application('checked');
    arm.putApplication(app);
    const mismatches: Array<[string, string, string]> = [['PUT', 'Failed', 'Succeeded'], ['DELETE', 'Failed', 'Succeeded'], ['PUT', 'Succeeded', 'Deleting'], ['PATCH', 'Succeeded', 'Failed'], ['PUT', 'Accepted', 'Deleted']];
    for (const [eventType, state, armState] of mismatches) {
      arm.putApplication({ ...app, provisioningState: armState });
      const res = await post(notification(app, eventType, state, state === 'Failed' ? { error: { code: 'X', message: 'forged' } } : {}));
      assert.equal(res.status, 409, `${eventType} ${state} while ARM shows ${armState}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'application_state_mismatch');
      assert.equal(res.body.error.details.armProvisioningState, armState);
    }
    assert.equal(await fingerprint(s), before);

    // The live cluster of an application must be in the managed resource group ARM shows for it.
    arm.putApplication(app);
    const created = await post(notification(app, 'PUT', 'Succeeded'));
    const moved = { ...app, managedResourceGroupId: `/subscriptions/${SUB}/resourceGroups/mrg-consul-checked-elsewhere` };
    arm.putApplication(moved);
    const afterCreate = await fingerprint(s);
    for (const [eventType, state] of [['PATCH', 'Succeeded'], ['PUT', 'Succeeded']]) {
      const res = await post(notification(moved, eventType, state));
      assert.deepEqual([res.status, res.body.error?.code, res.body.error?.details?.clusterId], [409, 'managed_resource_group_mismatch', created.body.clusterId], JSON.stringify(res.body));
    }
    arm.putApplication({ ...moved, provisioningState: 'Deleting' });
    const del = await post(notification(moved, 'DELETE', 'Deleting'));
    assert.deepEqual([del.status, del.body.error?.code], [409, 'managed_resource_group_mismatch']);
    assert.equal(await fingerprint(s), afterCreate, 'nothing written, the cluster not deleted');

    // Deleted and created again while the first cluster's delete runs: Azure retries until it is done.
    const first = application('successor');
    arm.putApplication(first);
    const c1 = await post(notification(first, 'PUT', 'Succeeded'));
    arm.putApplication({ ...first, provisioningState: 'Deleting' });
    const deleting = await post(notification(first, 'DELETE', 'Deleting'));
    arm.deleteApplication(first.id);
    const second = application('successor', { managedResourceGroupId: `/subscriptions/${SUB}/resourceGroups/mrg-consul-successor-20261207` });
    arm.putApplication(second);
    const beforeRetry = await fingerprint(s);
    const early = await post(notification(second, 'PUT', 'Succeeded'));
    assert.deepEqual([early.status, early.body.error?.code, early.body.error?.details?.clusterId], [503, 'previous_cluster_deleting', c1.body.clusterId]);
    assert.equal(await fingerprint(s), beforeRetry);
    await finishDelete(deleting.body.operationId);
    const retry = await post(notification(second, 'PUT', 'Succeeded'));
    assert.deepEqual([retry.status, retry.body.outcome], [200, 'created']);
  });

  it('an application deleted and created again under the same id gets a new cluster; repeats within one lifetime stay duplicate', async () => {
    const first = application('phoenix');
    arm.putApplication(first);
    const put = notification(first, 'PUT', 'Succeeded');
    const c1 = await post(put);
    assert.deepEqual([c1.status, c1.body.status, c1.body.outcome], [200, 'processed', 'created']);
    assert.equal((await post(put)).body.status, 'duplicate');
    arm.putApplication({ ...first, provisioningState: 'Deleting' });
    const deleting = await post(notification(first, 'DELETE', 'Deleting'));
    assert.equal(deleting.body.outcome, 'delete-requested');
    arm.deleteApplication(first.id);
    // DELETE Deleted comes when ARM answers 404: it still belongs to the first lifetime.
    const gone = notification(first, 'DELETE', 'Deleted');
    assert.deepEqual([(await post(gone)).body.status, (await post(gone)).body.status], ['processed', 'duplicate']);
    await finishDelete(deleting.body.operationId);

    // The same application id again, in the new managed resource group Azure made for it.
    const second = application('phoenix', { managedResourceGroupId: `/subscriptions/${SUB}/resourceGroups/mrg-consul-phoenix-20261207` });
    arm.putApplication(second);
    const put2 = notification(second, 'PUT', 'Succeeded');
    const c2 = await post(put2);
    assert.deepEqual([c2.status, c2.body.status, c2.body.outcome], [200, 'processed', 'created'], JSON.stringify(c2.body));
    assert.notEqual(c2.body.clusterId, c1.body.clusterId);
    const cluster = await s.db.cluster.findUniqueOrThrow({ where: { id: c2.body.clusterId } });
    assert.deepEqual([cluster.managedResourceGroupId, cluster.state], [second.managedResourceGroupId, 'Creating']);
    assert.deepEqual([(await post(put2)).body.status, (await post(put)).body.status], ['duplicate', 'duplicate'], 'a repeat within the second lifetime, whatever its eventTime');
    arm.putApplication({ ...second, provisioningState: 'Deleting' });
    const deleting2 = await post(notification(second, 'DELETE', 'Deleting'));
    assert.deepEqual([deleting2.body.status, deleting2.body.outcome, deleting2.body.clusterId], ['processed', 'delete-requested', c2.body.clusterId]);
    arm.deleteApplication(second.id);
    assert.equal((await post(notification(second, 'DELETE', 'Deleted'))).body.status, 'processed');
    assert.equal(await s.db.managedAppNotification.count({ where: { applicationId: first.id.toLowerCase() } }), 6, 'three events in each lifetime');
  });

  it('DELETE notifications at the same moment queue one delete', async () => {
    const app = application('twice');
    arm.putApplication(app);
    const created = await post(notification(app, 'PUT', 'Succeeded'));
    arm.putApplication({ ...app, provisioningState: 'Deleting' });
    // Another connection holds the cluster's row, so that both notifications get to their write before either commits.
    const holder = new pg.Client({ connectionString: s.config.DATABASE_URL });
    await holder.connect();
    let answers: Array<{ status: number; body: any }>;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM "Cluster" WHERE "id" = $1 FOR UPDATE', [created.body.clusterId]);
      const both = Promise.all([post(notification(app, 'DELETE', 'Deleting')), post(notification(app, 'DELETE', 'Deleted'))]);
      await waitFor('both notifications to wait on the cluster row', () => lockWaiters(s), (n) => n >= 2, 30_000);
      await holder.query('COMMIT');
      answers = await both;
    } finally {
      await holder.end();
    }
    assert.deepEqual(answers.map((a) => a.status), [200, 200], JSON.stringify(answers.map((a) => a.body)));
    const ops = await s.db.operation.findMany({ where: { clusterId: created.body.clusterId, kind: 'delete' } });
    assert.equal(ops.length, 1, 'one delete operation');
    assert.deepEqual(answers.map((a) => a.body.outcome).sort(), ['delete-requested', 'recorded']);
    assert.deepEqual(answers.map((a) => a.body.operationId).filter(Boolean), [ops[0].id]);
    const redis = createRedis(s.config.REDIS_URL, false);
    const queue = createOperationsQueue(redis, s.config.QUEUE_PREFIX);
    try {
      assert.ok(await queue.getJob(operationJobId(ops[0].id)), 'the delete is on the queue');
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });

  it('a wrong or missing sig is refused before anything is read or written', async () => {
    const app = application('intruder');
    arm.putApplication(app);
    const before = await fingerprint(s);
    const reads = arm.counters.applicationReads;
    const wrong = await post(notification(app, 'PUT', 'Succeeded'), SECRET.slice(0, -1) + (SECRET.endsWith('A') ? 'B' : 'A'));
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error.code, 'invalid_signature');
    const longer = await post(notification(app, 'PUT', 'Succeeded'), SECRET + 'x');
    assert.equal(longer.status, 403);
    const missing = await post(notification(app, 'PUT', 'Succeeded'), null);
    assert.equal(missing.status, 401);
    assert.equal(missing.body.error.code, 'missing_signature');
    const bearerInstead = await s.request('POST', '/resource', { body: notification(app, 'PUT', 'Succeeded'), token: s.sreToken() });
    assert.equal(bearerInstead.status, 401, 'a bearer token is not the secret');
    assert.ok(!JSON.stringify([wrong.body, longer.body, missing.body]).includes(SECRET), 'the secret is never echoed');
    assert.equal(await fingerprint(s), before);
    assert.equal(arm.counters.applicationReads, reads);
  });

  it('a bad payload gets a 400 naming what to fix, and nothing changes', async () => {
    const app = application('malformed');
    arm.putApplication(app);
    const good = notification(app, 'PUT', 'Succeeded');
    const cases: Array<[unknown, string]> = [
      [[good], 'invalid_body'],
      ['"text"', 'invalid_body'],
      [{ ...good, eventType: 'POST' }, 'invalid_eventType'],
      [{ ...good, eventType: undefined }, 'missing_eventType'],
      [{ ...good, applicationId: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm' }, 'invalid_applicationId'],
      [{ ...good, eventTime: 'yesterday' }, 'invalid_eventTime'],
      [{ ...good, provisioningState: 'Deleting' }, 'invalid_provisioningState'],
      [{ ...good, eventType: 'DELETE', provisioningState: 'Accepted' }, 'invalid_provisioningState'],
      [{ ...good, billingDetails: { resourceUsageId: 42 } }, 'invalid_billingDetails_resourceUsageId'],
      [{ ...good, plan: { name: 'standard' } }, 'missing_plan_publisher'],
      [{ ...good, error: { message: 'x' } }, 'missing_error_code'],
      [{ ...good, applicationId: application('ghost').id }, 'application_not_found'],
    ];
    const before = await fingerprint(s);
    for (const [body, code] of cases) {
      const res = await post(body);
      assert.equal(res.status, 400, `${JSON.stringify(body).slice(0, 120)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, code);
      assert.ok(res.body.error.message.length > 10);
    }
    assert.equal(await fingerprint(s), before);
  });

  it('ARM unreachable: 503, nothing recorded, so Azure\'s retry is processed', async () => {
    const app = application('flaky');
    arm.putApplication(app);
    arm.failNext(500);
    const before = await fingerprint(s);
    const res = await post(notification(app, 'PUT', 'Succeeded'));
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'arm_unavailable');
    assert.equal(await fingerprint(s), before);
    const retry = await post(notification(app, 'PUT', 'Succeeded'));
    assert.equal(retry.body.outcome, 'created');
  });

  it('Failed shows on the SRE fleet list with Azure\'s error, and settings that break the API\'s rules too', async () => {
    const failedApp = application('broken', { provisioningState: 'Failed' });
    arm.putApplication(failedApp);
    const err = { code: 'DeploymentFailed', message: 'At least one resource deployment operation failed.', details: [{ code: 'QuotaExceeded', message: 'Operation could not be completed as it results in exceeding approved Total Regional Cores quota.' }] };
    const failed = await post(notification(failedApp, 'PUT', 'Failed', { error: err }));
    assert.deepEqual([failed.status, failed.body.outcome], [200, 'failed']);

    const badApp = application('bad-name', {}, { clusterName: 'Bad_Name' });
    arm.putApplication(badApp);
    const rejected = await post(notification(badApp, 'PUT', 'Succeeded'));
    assert.deepEqual([rejected.status, rejected.body.outcome], [200, 'rejected'], 'Azure must not retry a setting that will never pass');

    // An application with a cluster whose delete failed: the field sits on the cluster.
    const live = application('stuck');
    arm.putApplication(live);
    const made = await post(notification(live, 'PUT', 'Succeeded'));
    arm.putApplication({ ...live, provisioningState: 'Failed' });
    await post(notification(live, 'DELETE', 'Failed', { error: { code: 'ApplianceDeletionFailed', message: 'The managed resource group could not be deleted.' } }));

    const fleet = await s.request('GET', '/v1/admin/clusters', { token: s.sreToken() });
    assert.equal(fleet.status, 200);
    const byId = new Map(fleet.body.failedApplications.map((f: any) => [f.id, f]));
    const f = byId.get(failedApp.id.toLowerCase()) as any;
    assert.ok(f, JSON.stringify(fleet.body.failedApplications));
    assert.deepEqual([f.eventType, f.provisioningState, f.outcome], ['PUT', 'Failed', 'failed']);
    assert.deepEqual(f.error, err);
    const r = byId.get(badApp.id.toLowerCase()) as any;
    assert.equal(r.outcome, 'rejected');
    assert.match(r.reason, /name must be 1 to 36 lowercase letters/);
    const stuck = fleet.body.clusters.find((c: any) => c.id === made.body.clusterId);
    assert.equal(stuck.managedApplication.id, live.id.toLowerCase());
    assert.equal(stuck.managedApplication.failed.error.code, 'ApplianceDeletionFailed');
    const healthy = fleet.body.clusters.find((c: any) => c.managedApplication?.id === application('orders').id.toLowerCase());
    assert.equal(healthy.managedApplication.failed, null);
    // Customers never see the fleet.
    assert.equal((await s.request('GET', '/v1/admin/clusters', { token: s.token(CUSTOMER_TENANT, WRITE) })).status, 403);
  });
});

describe('POST /resource without NOTIFICATION_SECRET', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.close();
  });

  it('answers 404 saying the endpoint is not enabled, whatever the sig', async () => {
    for (const sig of ['', 'anything', randomUUID()]) {
      const res = await s.request('POST', `/resource?sig=${sig}`, { body: { eventType: 'PUT' } });
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'notifications_disabled');
      assert.match(res.body.error.message, /NOTIFICATION_SECRET/);
    }
    assert.equal(await s.db.managedAppNotification.count(), 0);
  });
});
