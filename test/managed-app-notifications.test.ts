import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createOperationsQueue, createRedis, operationJobId } from '../libs/core/src';
import { startFakeArm, type FakeApplication, type FakeArm } from './support/fake-arm';
import { WRITE, startStack, testConfig, type TestStack } from './support/stack';

const SECRET = randomBytes(32).toString('base64url');
const CUSTOMER_TENANT = 'c0570000-0000-4000-8000-00000000c057';
const SUB = 'a5b5c5d5-0000-4000-8000-0000000000a5';

/** Row counts of everything a notification may write. */
async function fingerprint(s: TestStack): Promise<string> {
  const [c, o, n, a] = await Promise.all([s.db.cluster.count(), s.db.operation.count(), s.db.managedAppNotification.count(), s.db.auditEvent.count()]);
  return JSON.stringify({ clusters: c, operations: o, notifications: n, audit: a });
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

    const before = await fingerprint(s);
    const reads = arm.counters.applicationReads;
    const again = await post(put);
    assert.equal(again.status, 200);
    assert.deepEqual({ status: again.body.status, outcome: again.body.outcome, clusterId: again.body.clusterId }, { status: 'duplicate', outcome: 'created', clusterId: cluster.id });
    assert.equal(await fingerprint(s), before, 'a repeated notification writes nothing');
    assert.equal(arm.counters.applicationReads, reads, 'nor reads the application again');
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
    const deleting = await post(notification(app, 'DELETE', 'Deleting'));
    assert.deepEqual([deleting.status, deleting.body.outcome, deleting.body.clusterId], [200, 'delete-requested', clusterId]);
    const op = await s.db.operation.findUniqueOrThrow({ where: { id: deleting.body.operationId } });
    assert.deepEqual([op.kind, op.state, op.requestedBy], ['delete', 'Queued', 'azure:managed-application']);
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: clusterId } })).state, 'Deleting');
    const deleted = await post(notification(app, 'DELETE', 'Deleted'));
    assert.deepEqual([deleted.status, deleted.body.outcome], [200, 'recorded']);
    assert.equal(await s.db.operation.count({ where: { clusterId, kind: 'delete' } }), 1, 'one delete');
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
    const failedApp = application('broken');
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
