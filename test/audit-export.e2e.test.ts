import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { auditBlobName, auditProbeBlobName } from '../libs/contracts/src';
import { SecretBox, SecretRepository } from '../libs/core/src';
import { customerContainer, exportedCluster, type SasOptions } from './support/audit-container';
import { WORKER_MAIN, exited, workerEnv } from './support/worker-process';
import { READ, TENANT_B, WRITE, startStack, testConfig, waitFor, type TestStack } from './support/stack';

const TENANT = 'a0d17e00-0000-4000-8000-000000000023';
const HOUR = 3_600_000;

interface Line { id: string; seq: number; time: string; tenant: string; cluster: string; operation: string | null; actor: string; action: string; details: unknown }

describe('audit export to the customer\'s container (Azurite), under worker SIGKILLs', { timeout: 420_000 }, () => {
  let s: TestStack;
  let endpoint: string;
  let key: StorageSharedKeyCredential;
  let container: ContainerClient;
  let clusterId: string;
  const children: ChildProcess[] = [];
  const workerErrors: string[] = [];

  let sas: (o?: SasOptions) => string;
  const put = (body: unknown, roles = WRITE, tenant = TENANT) => s.request('PUT', `/v1/clusters/${clusterId}/audit-export`, { token: s.token(tenant, roles), body });
  const status = () => s.request('GET', `/v1/clusters/${clusterId}/audit-export`, { token: s.token(TENANT, READ) });

  /** A worker process; AUDIT_EXPORT_KILL_AT makes it SIGKILL itself at that point of the export. */
  const spawnWorker = (name: string, killAt?: string): ChildProcess => {
    const env = { ...workerEnv(s.config, name), NODE_ENV: 'test', ...(killAt ? { AUDIT_EXPORT_KILL_AT: killAt } : {}) };
    const child = spawn(process.execPath, [WORKER_MAIN], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => workerErrors.push(d.toString()));
    children.push(child);
    return child;
  };

  /** Events written in their own transactions, `perGroup` at a time, each group in one hour (the hours alternate). */
  const writeEvents = async (groups: number, hours: Date[], perGroup = 6, tag = 'test') => {
    for (let g = 0; g < groups; g++) {
      const hour = hours[g % hours.length];
      await s.db.auditEvent.createMany({
        data: Array.from({ length: perGroup }, (_, i) => ({
          id: randomUUID(), tenantId: TENANT, clusterId, actor: 'test', action: `test.${tag}`,
          details: { group: g, i, note: 'ünïcode ✓ and "quotes"' }, createdAt: new Date(hour.getTime() + (g * perGroup + i) * 1000),
        })),
      });
    }
  };

  /** Every line of every hour blob of the cluster, with the blob it is in. */
  const exportedLines = async (of = clusterId): Promise<Array<{ blob: string; line: Line }>> => {
    const out: Array<{ blob: string; line: Line }> = [];
    for await (const b of container.listBlobsFlat({ prefix: `${of}/` })) {
      if (b.name === auditProbeBlobName(of)) continue;
      const text = (await container.getBlobClient(b.name).downloadToBuffer()).toString('utf8');
      assert.ok(text.endsWith('\n'), `${b.name} ends with a whole line`);
      for (const raw of text.slice(0, -1).split('\n')) out.push({ blob: b.name, line: JSON.parse(raw) as Line });
    }
    return out;
  };

  /** Every event of the cluster is in exactly one line, in its own hour's blob, with the documented shape. */
  const assertExactlyOnce = async (of = clusterId) => {
    const events = await s.db.auditEvent.findMany({ where: { clusterId: of } });
    const lines = await exportedLines(of);
    const seen = new Map<string, number>();
    for (const { line } of lines) seen.set(line.id, (seen.get(line.id) ?? 0) + 1);
    const repeated = [...seen].filter(([, n]) => n > 1);
    assert.deepEqual(repeated, [], 'no event is exported twice');
    const missing = events.filter((e) => !seen.has(e.id)).map((e) => e.id);
    assert.deepEqual(missing, [], 'no event is missing');
    assert.equal(lines.length, events.length, 'no line that is not an event');
    const byId = new Map(events.map((e) => [e.id, e]));
    for (const { blob, line } of lines) {
      const e = byId.get(line.id);
      assert.ok(e);
      assert.deepEqual(Object.keys(line), ['id', 'seq', 'time', 'tenant', 'cluster', 'operation', 'actor', 'action', 'details']);
      assert.equal(blob, auditBlobName(of, e.createdAt), `${line.id} is in the blob of its own hour`);
      assert.equal(line.time, e.createdAt.toISOString());
      assert.equal(line.seq, Number(e.seq));
      assert.deepEqual([line.tenant, line.cluster, line.action, line.actor], [e.tenantId, e.clusterId, e.action, e.actor]);
      assert.deepEqual(line.details, e.details);
    }
    return events.length;
  };

  const caughtUp = async (timeoutMs = 90_000) =>
    waitFor('the export to catch up', status, (r) => r.body?.status?.lag?.events === 0 && r.body.status.state === 'up-to-date', timeoutMs, 200).catch(async (e: Error) => {
      const st = (await status()).body.status;
      throw new Error(`${e.message.slice(0, 80)}: state ${st.state}, lag ${JSON.stringify(st.lag)}, last error ${JSON.stringify(st.lastError)}; worker said: ${workerErrors.join('').slice(-1000)}`);
    });

  before(async () => {
    // Pages of 12 events: many pages, each touching two or three hour blobs.
    const config = await testConfig({ AUDIT_EXPORT_TICK_MS: '200', AUDIT_EXPORT_RETRY_MS: '300', AUDIT_EXPORT_LEASE_MS: '2000', AUDIT_EXPORT_PAGE_EVENTS: '12' });
    s = await startStack({ worker: false, config });
    const customer = await customerContainer(config);
    ({ container, key, endpoint } = customer);
    sas = (o) => customer.sasUrl(o);
    clusterId = await exportedCluster(s.db, TENANT, 'audited');
  });
  after(async () => {
    for (const c of children) {
      c.kill('SIGKILL');
      await exited(c);
    }
    await container?.deleteIfExists();
    await s?.close();
  });

  it('refuses a reader, another tenant and every bad container URL or SAS, saving nothing', async () => {
    const good = sas();
    assert.equal((await put({ containerUrl: good }, READ)).status, 403, 'Clusters.Read may not configure the export');
    assert.equal((await put({ containerUrl: good }, WRITE, TENANT_B)).status, 404, 'another tenant does not see the cluster');
    const refusals: Array<[string, unknown, string]> = [
      ['no SAS', { containerUrl: `${endpoint}/${container.containerName}` }, 'sas_missing'],
      ['read only', { containerUrl: sas({ permissions: 'r' }) }, 'sas_permissions'],
      ['no read', { containerUrl: sas({ permissions: 'ac' }) }, 'sas_permissions'],
      ['expired', { containerUrl: sas({ expiresOn: new Date(Date.now() - 60_000) }) }, 'sas_expired'],
      ['not a blob endpoint', { containerUrl: good.replace(endpoint, 'https://metadata.example.com') }, 'invalid_container_url'],
      ['an address', { containerUrl: good.replace(endpoint, 'https://169.254.169.254') }, 'invalid_container_url'],
      ['http to Azure', { containerUrl: good.replace(endpoint, 'http://acct.blob.core.windows.net') }, 'invalid_container_url'],
      ['a blob, not a container', { containerUrl: good.replace(`/${container.containerName}?`, `/${container.containerName}/x.jsonl?`) }, 'invalid_container_url'],
      // Azure answers a bad signature 403 AuthenticationFailed, Azurite 403 AuthorizationFailure.
      ['signed with another key', { containerUrl: sas({ key: new StorageSharedKeyCredential(key.accountName, Buffer.alloc(64, 7).toString('base64')) }) }, 'storage_authentication_failed|storage_forbidden'],
      ['no such container', { containerUrl: sas({ container: 'no-such-container' }) }, 'container_not_found'],
      ['managed identity on one machine', { containerUrl: `${endpoint}/${container.containerName}`, managedIdentity: true }, 'managed_identity_unavailable'],
    ];
    for (const [why, body, code] of refusals) {
      const r = await put(body);
      assert.equal(r.status, 422, `${why}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.code, new RegExp(`^(${code})$`), `${why}: ${r.body.error.message}`);
      const sig = new URL((body as { containerUrl: string }).containerUrl).searchParams.get('sig');
      if (sig) assert.ok(!JSON.stringify(r.body).includes(sig), `${why}: the answer holds no signature`);
    }
    assert.equal((await put({ containerUrl: 42 })).status, 400, 'a containerUrl that is not a string');
    assert.equal(await s.db.auditExport.count(), 0, 'nothing saved');
    assert.equal(await s.db.clusterSecret.count({ where: { clusterId } }), 0, 'no SAS stored');
    const off = await status();
    assert.equal(off.status, 200);
    assert.equal(off.body.enabled, false);
  });

  it('exports every event exactly once, each in its hour\'s blob, through SIGKILLs at every point of the protocol', async () => {
    const now = Date.now();
    const hours = [3, 2, 1].map((h) => new Date(Math.floor((now - h * HOUR) / HOUR) * HOUR));
    await writeEvents(30, hours);

    const good = sas();
    const saved = await put({ containerUrl: good });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    assert.equal(saved.body.enabled, true);
    assert.equal(saved.body.containerUrl, `${endpoint}/${container.containerName}`, 'the container without its SAS');
    assert.ok(!JSON.stringify(saved.body).includes(new URL(good).searchParams.get('sig') ?? '-'), 'the SAS is never answered');
    const secret = await s.db.clusterSecret.findUniqueOrThrow({ where: { clusterId_name: { clusterId, name: 'audit-export-sas' } } });
    assert.ok(!Buffer.from(secret.ciphertext).toString('latin1').includes('sig='), 'the SAS is sealed at rest');
    const configured = await s.db.auditEvent.findFirstOrThrow({ where: { clusterId, action: 'cluster.audit-export.configured' } });
    assert.ok(!JSON.stringify(configured.details).includes('sig'), 'the audit event of the change holds no SAS');
    // A configuration change through the API: an audit event of its own, exported like the rest.
    assert.equal((await s.request('PATCH', `/v1/clusters/${clusterId}`, { token: s.token(TENANT, WRITE), body: { snapshotPolicy: { intervalHours: 6, retention: 5 } } })).status, 200);

    // Kill the worker at each point of the protocol; the one after the append and before the commit
    // several times, and the read-back of a landed append too.
    const points = ['after-append:1', 'after-readback:1', 'after-create:2', 'after-commit:3', 'before-append:2', 'after-append:3', 'after-append:1'];
    let landedButUncommitted = 0;
    for (const [i, point] of points.entries()) {
      if (i === 3) await writeEvents(8, [hours[0]], 5, 'late'); // late events of the earliest hour, after its blob was written
      if (i === 5) await writeEvents(10, hours, 4, 'more');
      const w = spawnWorker(`audit-kill-${i}`, point);
      await waitFor(`the worker killed at ${point}`, async () => w.signalCode, (sig) => sig === 'SIGKILL', 60_000, 50).catch(async (e: Error) => {
        const row = await s.db.auditExport.findUnique({ where: { clusterId } });
        throw new Error(`${e.message}; export: ${row?.lastErrorCode} ${row?.lastErrorMessage}; worker said: ${workerErrors.join('').slice(-1500)}`);
      });
      if (point.startsWith('after-append')) {
        // The append is in the blob and the commit is not: Azurite holds more than the database says.
        const recorded = await s.db.auditExportBlob.aggregate({ _sum: { length: true } });
        let stored = 0;
        for await (const b of container.listBlobsFlat({ prefix: `${clusterId}/` })) if (b.name !== auditProbeBlobName(clusterId)) stored += b.properties.contentLength ?? 0;
        assert.ok(stored > Number(recorded._sum.length ?? 0), `after the append (${stored} bytes in blobs) and before the commit (${recorded._sum.length} recorded)`);
        landedButUncommitted++;
      }
    }
    assert.ok(workerErrors.join('').includes('killed at after-readback'), 'a worker read a landed append back and was killed there');
    // Kills at moments the test does not choose: as soon as the cursor has moved.
    for (let i = 0; i < 3; i++) {
      await writeEvents(6, hours, 5, `random-${i}`);
      const start = await s.db.auditExport.findUniqueOrThrow({ where: { clusterId } });
      const w = spawnWorker(`audit-random-${i}`);
      await waitFor('the cursor to move', () => s.db.auditExport.findUniqueOrThrow({ where: { clusterId } }), (r) => r.cursorSeq !== start.cursorSeq || r.cursorTxid !== start.cursorTxid, 60_000, 20);
      w.kill('SIGKILL');
      await exited(w);
    }

    const last = spawnWorker('audit-last');
    const done = await caughtUp();
    assert.equal(done.body.status.lastError, null, JSON.stringify(done.body.status.lastError));
    last.kill('SIGKILL');
    await exited(last);
    const total = await assertExactlyOnce();
    assert.ok(total >= 30 * 6 + 40 + 40 + 90, `all the events (${total})`);
    assert.ok(landedButUncommitted >= 3);
    const blobs = new Set((await exportedLines()).map((l) => l.blob));
    assert.ok(blobs.size >= 3, `events of at least three hours in three blobs (${[...blobs].join(', ')})`);
    assert.equal(done.body.status.lastExportedEvent.id, (await s.db.auditExport.findUniqueOrThrow({ where: { clusterId } })).lastEventId);
  });

  it('shows an expired SAS in GET, retries, and resumes after a PUT with a new one: no gap, no repeat', async () => {
    const worker = spawnWorker('audit-expiry');
    // Long enough for a worker started on a busy machine to catch up first (its start, the lease the last one held).
    const shortLived = new Date(Date.now() + 25_000);
    const shortPut = await put({ containerUrl: sas({ expiresOn: shortLived }) });
    assert.equal(shortPut.status, 200, JSON.stringify(shortPut.body));
    const up = await caughtUp();
    assert.equal(up.body.sasExpiresAt, new Date(Math.floor(shortLived.getTime() / 1000) * 1000).toISOString(), 'GET shows when the SAS expires');
    // Past the expiry, new events cannot be written: the failure shows, with retries.
    await waitFor('the SAS to expire', async () => Date.now(), (t) => t > shortLived.getTime() + 1000, 40_000, 200);
    await writeEvents(5, [new Date()], 3, 'after-expiry');
    const failing = await waitFor('the failure in GET', status, (r) => r.body.status.state === 'retrying' && r.body.status.attempts >= 2, 60_000, 200);
    assert.equal(failing.body.status.lastError.code, 'sas_expired', JSON.stringify(failing.body.status.lastError));
    assert.match(failing.body.status.lastError.message, /PUT/);
    assert.ok(failing.body.status.lag.events >= 15, 'the events waiting show as lag');
    assert.ok(!JSON.stringify(failing.body).includes('&sig='));
    const failed = await s.db.auditEvent.findMany({ where: { clusterId, action: 'cluster.audit-export.failed' } });
    assert.equal(failed.length, 1, 'the failure is one audit event, not one per retry');

    assert.equal((await put({ containerUrl: sas() })).status, 200);
    const resumed = await caughtUp();
    assert.equal(resumed.body.status.attempts, 0);
    assert.equal(resumed.body.status.lastError.code, 'sas_expired', 'the last error stays for reference, with its time');
    worker.kill('SIGKILL');
    await exited(worker);
    await assertExactlyOnce();
    assert.equal(await s.db.auditEvent.count({ where: { clusterId, action: 'cluster.audit-export.resumed' } }), 1);
  });

  it('after a kill between an append and its commit, a longer page appends only the lines that did not land', async () => {
    const other = await exportedCluster(s.db, TENANT, 'audited-partly');
    assert.equal((await s.request('PUT', `/v1/clusters/${other}/audit-export`, { token: s.token(TENANT, WRITE), body: { containerUrl: sas() } })).status, 200);
    const hour = new Date(Math.floor(Date.now() / HOUR) * HOUR);
    const write = (n: number, tag: string) => s.db.auditEvent.createMany({
      data: Array.from({ length: n }, (_, i) => ({ id: randomUUID(), tenantId: TENANT, clusterId: other, actor: 'test', action: `test.${tag}`, createdAt: new Date(hour.getTime() + i) })),
    });
    await write(3, 'first');
    const w = spawnWorker('audit-partly', 'after-append:1');
    await waitFor('the worker killed after its append', async () => w.signalCode, (sig) => sig === 'SIGKILL', 60_000, 50);
    const blob = auditBlobName(other, hour);
    const landed = (await container.getBlobClient(blob).getProperties()).contentLength ?? 0;
    assert.ok(landed > 0, 'the append landed');
    assert.equal(await s.db.auditExportBlob.count({ where: { clusterId: other } }), 0, 'and its commit did not');
    await write(4, 'more'); // the next page from the same cursor is longer: the landed lines, then these
    const last = spawnWorker('audit-partly-rest');
    await waitFor('the export to catch up', () => s.db.auditExport.findUniqueOrThrow({ where: { clusterId: other } }), (r) => r.lastEventId !== null && r.attempts === 0, 60_000, 100);
    await waitFor('no lag', async () => (await s.request('GET', `/v1/clusters/${other}/audit-export`, { token: s.token(TENANT, READ) })).body.status.lag.events, (n) => n === 0, 60_000, 100);
    last.kill('SIGKILL');
    await exited(last);
    assert.equal(await assertExactlyOnce(other), 1 + 3 + 4);
  });

  it('a deleted cluster\'s export writes its last events, then drops the SAS; the OpenAPI document shows the routes', async () => {
    const gone = await exportedCluster(s.db, TENANT, 'audited-then-deleted');
    const on = await s.request('PUT', `/v1/clusters/${gone}/audit-export`, { token: s.token(TENANT, WRITE), body: { containerUrl: sas() } });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    // The delete flow's last steps: the cluster's secrets removed (the export's SAS stays until it has drained), the cluster Deleted.
    await new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE)).deleteAll(gone);
    assert.equal(await s.db.clusterSecret.count({ where: { clusterId: gone, name: 'audit-export-sas' } }), 1, 'the SAS outlives the cluster\'s other secrets');
    await s.db.$transaction([
      s.db.cluster.update({ where: { id: gone }, data: { state: 'Deleted' } }),
      s.db.auditEvent.create({ data: { id: randomUUID(), tenantId: TENANT, clusterId: gone, actor: 'system', action: 'cluster.deleted' } }),
    ]);
    const worker = spawnWorker('audit-drain');
    await waitFor('the export to drain and retire', () => s.db.auditExport.findUniqueOrThrow({ where: { clusterId: gone } }), (r) => !r.enabled, 60_000, 100);
    worker.kill('SIGKILL');
    await exited(worker);
    assert.equal(await s.db.clusterSecret.count({ where: { clusterId: gone } }), 0, 'the SAS is dropped once drained');
    await assertExactlyOnce(gone);
    assert.ok((await exportedLines(gone)).some((l) => l.line.action === 'cluster.deleted'), 'the cluster\'s last event is exported');
    const again = await s.request('PUT', `/v1/clusters/${gone}/audit-export`, { token: s.token(TENANT, WRITE), body: { containerUrl: sas() } });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'cluster_deleting');

    const doc = await s.request('GET', '/docs/openapi.json');
    const path = doc.body.paths['/v1/clusters/{id}/audit-export'];
    assert.deepEqual(Object.keys(path).sort(), ['delete', 'get', 'put']);
    assert.ok(JSON.stringify(doc.body.components.schemas.AuditExport).includes('lastExportedEvent'), 'the answer\'s fields are in the document');
    assert.ok(JSON.stringify(doc.body.components.schemas.AuditExportRequest).includes('managedIdentity'));
  });

  it('turns off with DELETE: the SAS is dropped and GET says off', async () => {
    const r = await s.request('DELETE', `/v1/clusters/${clusterId}/audit-export`, { token: s.token(TENANT, WRITE) });
    assert.equal(r.status, 200);
    assert.equal(r.body.enabled, false);
    assert.equal(r.body.status.state, 'off');
    assert.equal(await s.db.clusterSecret.count({ where: { clusterId, name: 'audit-export-sas' } }), 0);
    assert.equal((await s.request('DELETE', `/v1/clusters/${clusterId}/audit-export`, { token: s.token(TENANT, READ) })).status, 403);
  });
});
