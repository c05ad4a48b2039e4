import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import {
  AuditRepository, CERT_ROTATION_ACTOR, type Operation, CertificateScheduleRepository, ClusterRepository, SecretBox, SecretRepository, createOperationsQueue, createRedis, type OperationsQueue,
} from '../libs/core/src';
import { ClusterTarget } from '../apps/worker/src/operations/cluster-target';
import { RotateCaFlow } from '../apps/worker/src/operations/flows/rotate-ca.flow';
import { CertificateRotationScheduler, certificateRotationPolicy } from '../apps/worker/src/schedules/cert-rotation.scheduler';
import { SUBSCRIPTION, WRITE, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'cececece-0000-4000-8000-00000000000c';

/** The leaf certificate a server serves on HTTPS, verified against `ca` (throws when it does not verify). */
function servedLeaf(host: string, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port: 8501, ca, rejectUnauthorized: true }, () => {
      const cert = socket.getPeerX509Certificate()!;
      socket.destroy();
      resolve(cert);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('error', reject);
  });
}

/** A KV read over HTTPS, the servers verified against `ca`: the status code. */
function kvGet(host: string, ca: string, token: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port: 8501, path: `/v1/kv/${key}`, method: 'GET', ca, headers: { 'X-Consul-Token': token }, timeout: 10_000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('read timed out')));
    req.on('error', reject);
    req.end();
  });
}

const pems = (bundle: string): string[] => bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

describe('certificate lifetimes: expiry dates, automatic rotation, CA roll', { timeout: 900_000 }, () => {
  let s: TestStack;
  let token: string;
  let main: string;
  let fresh: string;
  let clusters: ClusterRepository;
  let target: ClusterTarget;
  let secrets: SecretRepository;
  let redis: ReturnType<typeof createRedis>;
  let queue: OperationsQueue;
  const schedulers: CertificateRotationScheduler[] = [];
  const finish = async (opId: string, timeoutMs = 180_000) =>
    (await waitFor(`operation ${opId}`, () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), timeoutMs)).body;
  const create = async (name: string, tier: string): Promise<string> => {
    const res = await s.request('POST', '/v1/clusters', { token, body: { name, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-certs', region: 'westeurope', tier } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal((await finish(res.body.operation.id)).state, 'Succeeded');
    return res.body.cluster.id;
  };
  const view = async (id: string) => (await s.request('GET', `/v1/clusters/${id}`, { token })).body;
  const clientConfig = async (id: string) => (await s.request('GET', `/v1/clusters/${id}/client-config`, { token })).body;
  const operations = async (id: string) => (await s.request('GET', `/v1/clusters/${id}/operations`, { token })).body.operations as { id: string; kind: string; state: string }[];

  before(async () => {
    s = await startStack({ worker: true });
    token = s.token(TENANT, WRITE);
    main = await create('certs-main', 'standard');
    fresh = await create('certs-fresh', 'development');
    clusters = new ClusterRepository(s.db);
    secrets = new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE));
    target = new ClusterTarget(s.config, clusters, secrets);
    redis = createRedis(s.config.REDIS_URL, false);
    queue = createOperationsQueue(redis, s.config.QUEUE_PREFIX);
    // Two schedulers, as two workers would run them.
    for (let i = 0; i < 2; i++) {
      schedulers.push(new CertificateRotationScheduler(new CertificateScheduleRepository(s.db), clusters, target, queue, s.config.JOB_ATTEMPTS, certificateRotationPolicy(s.config)));
    }
  });
  after(async () => {
    for (const id of [main, fresh]) {
      const del = await s.request('DELETE', `/v1/clusters/${id}`, { token });
      if (del.status === 202) await finish(del.body.operation.id);
    }
    target.close();
    await queue.close();
    redis.disconnect();
    await s.close();
  });

  it('the cluster view shows the expiry dates of the certificates Consul serves, and client-config the CA without the sealed PKI', async () => {
    const v = await view(main);
    const cc = await clientConfig(main);
    assert.equal(pems(cc.caPem).length, 1, 'one CA outside a roll');
    const ca = new X509Certificate(cc.caPem);
    const leaves = await Promise.all(v.serverAddresses.map((a: string) => servedLeaf(a, cc.caPem)));
    for (const leaf of leaves) assert.ok(leaf.checkIssued(ca), 'each served leaf is issued by the client-config CA');
    const earliest = Math.min(...leaves.map((l) => Date.parse(l.validTo)));
    assert.equal(v.certificates.serverCertificatesNotAfter, new Date(earliest).toISOString());
    assert.equal(v.certificates.caNotAfter, new Date(ca.validTo).toISOString());
    const year = 365 * 86_400_000;
    assert.ok(Math.abs(earliest - Date.now() - year) < 2 * 86_400_000, `server certificates last a year (${v.certificates.serverCertificatesNotAfter})`);
    assert.ok(Date.parse(v.certificates.caNotAfter) - Date.now() > 4.9 * year, 'the CA lasts five years');

    // A row from before the dates were kept: client-config waits for them; the worker fills them from the sealed PKI.
    await s.db.$executeRaw`UPDATE "Cluster" SET "caCertPem" = NULL, "caNotAfter" = NULL, "serverCertsNotAfter" = NULL WHERE "id" = ${main}::uuid`;
    assert.equal((await view(main)).certificates.caNotAfter, null);
    assert.equal((await s.request('GET', `/v1/clusters/${main}/client-config`, { token })).status, 409);
    assert.ok((await schedulers[0]!.backfill()) >= 1);
    assert.deepEqual((await view(main)).certificates, v.certificates);
    assert.equal((await clientConfig(main)).caPem, cc.caPem);
  });

  it('the scheduler queues one rotation for a cluster whose server certificates expire within the threshold, none for a fresh one', async () => {
    const expiring = Date.parse((await view(main)).certificates.serverCertificatesNotAfter);
    const later = Date.parse((await view(fresh)).certificates.serverCertificatesNotAfter);
    assert.ok(later - expiring >= 2000, 'the fresh cluster was made later');
    // The clock at which the first cluster's certificates are within the threshold and the fresh one's not yet.
    const threshold = s.config.CERT_ROTATION_THRESHOLD_DAYS * 86_400_000;
    const now = new Date(expiring - threshold + (later - expiring) / 2);
    assert.equal(await schedulers[0]!.tick(new Date(expiring - threshold - 1000)), 0, 'nothing due before the threshold');
    const counts = await Promise.all(schedulers.map((x) => x.tick(now)));
    assert.equal(counts[0]! + counts[1]!, 1, `two schedulers ticking at once queue one rotation (${counts.join(', ')})`);
    assert.equal(await schedulers[0]!.tick(now), 0, 'a second tick queues nothing more');
    assert.deepEqual((await operations(fresh)).filter((o) => o.kind.startsWith('rotate')), [], 'none for the fresh cluster');
    const queued = (await operations(main)).filter((o) => o.kind.startsWith('rotate'));
    assert.equal(queued.length, 1);
    assert.equal(queued[0]!.kind, 'rotate-certificates');
    const op = await finish(queued[0]!.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op));
    const row = await s.db.operation.findUniqueOrThrow({ where: { id: op.id } });
    assert.equal(row.requestedBy, CERT_ROTATION_ACTOR);
    const after = Date.parse((await view(main)).certificates.serverCertificatesNotAfter);
    assert.ok(after > expiring, 'the new certificates expire later');
    const cc = await clientConfig(main);
    const leaves = await Promise.all((await view(main)).serverAddresses.map((a: string) => servedLeaf(a, cc.caPem)));
    assert.equal(Math.min(...leaves.map((l) => Date.parse(l.validTo))), after, 'the view shows the new certificates\' expiry');
    assert.equal(await schedulers[1]!.tick(now), 0, 'rotated: nothing due any more');
  });

  it('a CA roll keeps a 3-server cluster answering; afterwards its servers chain to the new CA only', async () => {
    const oldCa = (await clientConfig(main)).caPem as string;
    const secret = (await s.request('POST', `/v1/clusters/${main}/tokens`, { token })).body.secretId as string;
    const addresses: string[] = (await view(main)).serverAddresses;
    assert.equal(addresses.length, 3);
    const res = await s.request('POST', `/v1/clusters/${main}/rotate`, { token, body: { what: 'ca' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.operation.kind, 'rotate-ca');
    // A client that takes client-config's CA before each read, and reads from each server in turn.
    let reads = 0;
    const failures: string[] = [];
    const bundles = new Set<string>();
    let done: any;
    const deadline = Date.now() + 300_000;
    while (!done) {
      if (Date.now() > deadline) throw new Error('the CA roll is still running after 300 s');
      const ca = (await clientConfig(main)).caPem as string;
      bundles.add(ca);
      const host = addresses[reads % 3]!;
      const status = await kvGet(host, ca, secret, 'missing-key').catch((e: Error) => `error ${e.message}`);
      if (status !== 404) failures.push(`${host}: ${status}`);
      reads++;
      const op = await s.request('GET', `/v1/operations/${res.body.operation.id}`, { token });
      if (['Succeeded', 'Failed'].includes(op.body.state)) done = op.body;
    }
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    process.stdout.write(`# CA roll: ${reads} reads, ${failures.length} failed; ${bundles.size} distinct client-config CAs; steps ${JSON.stringify(done.steps.map((x: { name: string; durationMs: number; detail?: string }) => [x.name, x.durationMs, x.detail]))}\n`);
    assert.deepEqual(failures, [], `reads failed during the roll (${failures.length} of ${reads})`);
    assert.deepEqual(done.steps.map((x: { name: string }) => x.name), ['issue-ca', 'trust-new-ca', 'roll-leaves', 'drop-old-ca', 'verify-cluster']);

    const newCa = (await clientConfig(main)).caPem as string;
    assert.equal(pems(newCa).length, 1, 'one CA after the roll');
    assert.notEqual(newCa, oldCa);
    const caNew = new X509Certificate(newCa);
    const caOld = new X509Certificate(oldCa);
    for (const a of addresses) {
      const leaf = await servedLeaf(a, newCa); // a client with the new client-config verifies it
      assert.ok(leaf.checkIssued(caNew) && leaf.verify(caNew.publicKey), `server ${a}: its leaf chains to the new CA`);
      assert.ok(!leaf.verify(caOld.publicKey), `server ${a}: not signed by the old CA`);
      await assert.rejects(servedLeaf(a, oldCa), `server ${a}: a client with only the old CA cannot verify it`);
      assert.equal(await kvGet(a, newCa, secret, 'missing-key'), 404);
    }
    for (const b of bundles) {
      const n = pems(b).length;
      assert.ok(n === 1 || n === 2, 'client-config serves one CA, or both during the roll');
    }
    const v = await view(main);
    assert.equal(v.certificates.caNotAfter, new Date(caNew.validTo).toISOString());
    const events = (await s.request('GET', `/v1/clusters/${main}/events`, { token })).body.events;
    assert.ok(events.some((e: { action: string }) => e.action === 'cluster.ca.rotated'));
  });

  it('a CA roll cut short is carried on by the next one, which reloads only the servers not there yet, and re-running its steps changes nothing', async () => {
    const flow = new RotateCaFlow(target, clusters, secrets, new AuditRepository(s.db), 60_000);
    const cluster = (await clusters.get(main))!;
    const pids = await target.observe(main);
    const caBefore = (await clientConfig(main)).caPem as string;
    // A worker that stopped for good after the leaves were rolled, before the old CA was dropped.
    const cutShort = { id: '00000000-0000-4000-8000-0000000000ca' } as Operation;
    for (const step of flow.steps({ operation: cutShort, cluster, loaded: await target.open(cluster) })) {
      if (step.name === 'drop-old-ca') break;
      await step.run();
    }
    const during = (await clientConfig(main)).caPem as string;
    assert.equal(pems(during).length, 2, 'client-config serves both CAs mid-roll');
    assert.ok(during.includes(caBefore.trim()), 'the old CA still among them');

    const res = await s.request('POST', `/v1/clusters/${main}/rotate`, { token, body: { what: 'ca' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const done = await finish(res.body.operation.id);
    assert.equal(done.state, 'Succeeded', JSON.stringify(done));
    const detail = (name: string) => done.steps.find((x: { name: string }) => x.name === name).detail as string;
    assert.match(detail('issue-ca'), new RegExp(`carrying on the roll of operation ${cutShort.id}`));
    assert.equal(detail('trust-new-ca'), 'every server trusts the new CA already');
    assert.equal(detail('roll-leaves'), 'every server serves its certificate from the new CA already');
    assert.match(detail('drop-old-ca'), /^reloaded in order \d, \d, \d \(leader last\)/);
    const after = (await clientConfig(main)).caPem as string;
    assert.equal(pems(after).length, 1);
    assert.ok(during.includes(after.trim()) && after !== caBefore, 'the carried-on CA is the one the cut-short roll made');
    for (const a of (await view(main)).serverAddresses as string[]) assert.ok((await servedLeaf(a, after)).checkIssued(new X509Certificate(after)));

    // A job retried after a crash at its very end runs every step again: nothing reloads, nothing restarts.
    const again: string[] = [];
    for (const step of flow.steps({ operation: { id: res.body.operation.id } as Operation, cluster, loaded: await target.open(cluster) })) again.push(`${step.name}: ${(await step.run()) ?? ''}`);
    assert.deepEqual(again.slice(0, 4), ['issue-ca: rolled already', 'trust-new-ca: no CA roll in progress', 'roll-leaves: no CA roll in progress', 'drop-old-ca: no CA roll in progress']);
    assert.deepEqual(await target.observe(main), pids, 'no server restarted in any roll');
    assert.equal((await clientConfig(main)).caPem, after);
  });

  it('the scheduler rolls a CA that expires within its threshold, and rotates the server certificates of a cluster whose CA is not due', async () => {
    const freshCa = Date.parse((await view(fresh)).certificates.caNotAfter);
    const mainCa = Date.parse((await view(main)).certificates.caNotAfter);
    assert.ok(mainCa - freshCa >= 2000, 'the main cluster has a newer CA (rolled above)');
    const threshold = s.config.CA_ROTATION_THRESHOLD_DAYS * 86_400_000;
    const now = new Date(freshCa - threshold + (mainCa - freshCa) / 2);
    const counts = await Promise.all(schedulers.map((x) => x.tick(now)));
    assert.equal(counts[0]! + counts[1]!, 2, `one rotation per cluster (${counts.join(', ')})`);
    assert.equal(await schedulers[0]!.tick(now), 0);
    const pending = async (id: string) => (await operations(id)).filter((o) => o.kind.startsWith('rotate') && !['Succeeded', 'Failed'].includes(o.state));
    const [caRoll] = await pending(fresh);
    const [certs] = await pending(main);
    assert.equal(caRoll?.kind, 'rotate-ca', 'the CA due: a CA roll');
    assert.equal(certs?.kind, 'rotate-certificates', 'its CA not due, its server certificates (a year) are');
    const oldFreshCa = (await clientConfig(fresh)).caPem as string;
    const rolled = await finish(caRoll.id);
    assert.equal(rolled.state, 'Succeeded', JSON.stringify(rolled));
    assert.equal((await finish(certs.id)).state, 'Succeeded');
    const newFreshCa = (await clientConfig(fresh)).caPem as string;
    assert.notEqual(newFreshCa, oldFreshCa);
    const [address] = (await view(fresh)).serverAddresses as string[];
    assert.ok((await servedLeaf(address!, newFreshCa)).checkIssued(new X509Certificate(newFreshCa)), 'the single server of the fresh cluster serves a leaf of its new CA');
    assert.ok(Date.parse((await view(fresh)).certificates.caNotAfter) > freshCa);
  });
});
