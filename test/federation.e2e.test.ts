import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { consul, tcpOpen } from './support/consul-cli';
import { READ, SUBSCRIPTION, TENANT_B, WRITE, startStack, waitFor, type TestStack } from './support/stack';

const TENANT = 'fefefefe-0000-4000-8000-000000000022';

/** GET over HTTPS trusting the cluster's CA alone, with a Consul token. */
function getJson(url: string, ca: string, token: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca, headers: { 'x-consul-token': token } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    }).once('error', reject);
  });
}

/** What a cluster hands out, and the stock consul CLI pointed at it with a token made through the API. */
interface Member {
  id: string;
  cc: { datacenter: string; caPem: string; retryJoin: string[]; httpsAddress: string };
  caFile: string;
  secret: string;
  cli: (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;
}

// Two clusters of one tenant federated through the API (a primary and a secondary made with its federation token),
// checked from outside with the stock consul CLI, then taken apart: the secondary leaves the WAN pool when deleted.
describe('federation: a primary and a secondary', { timeout: 300_000 }, () => {
  let s: TestStack;
  let token: string;
  let work: string;
  let primary: Member;
  let secondary: Member;
  let secondaryOp: any;
  let beforeWest: string;

  before(async () => {
    s = await startStack({ worker: true });
    token = s.token(TENANT, WRITE);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'federation-'));
  });
  after(async () => {
    await s.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const finish = async (opId: string) =>
    (await waitFor(`operation ${opId}`, () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), 180_000)).body;
  const create = (body: Record<string, unknown>, as = token) =>
    s.request('POST', '/v1/clusters', { token: as, body: { subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-fed', region: 'westeurope', ...body } });
  async function member(id: string): Promise<Member> {
    const cc = (await s.request('GET', `/v1/clusters/${id}/client-config`, { token })).body;
    const caFile = path.join(work, `${cc.datacenter}.pem`);
    fs.writeFileSync(caFile, cc.caPem);
    const made = await s.request('POST', `/v1/clusters/${id}/tokens`, { token, body: { description: 'federation e2e' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const secret: string = made.body.secretId;
    return { id, cc, caFile, secret, cli: (args) => consul(args, { httpAddr: cc.httpsAddress, caFile, token: secret }) };
  }
  const issue = async (id: string) => {
    const res = await s.request('POST', `/v1/clusters/${id}/federation-token`, { token });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.token as string;
  };

  it('creates the primary, a standard cluster', async () => {
    const res = await create({ name: 'fed-east', datacenter: 'east', tier: 'standard' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal((await finish(res.body.operation.id)).state, 'Succeeded');
    primary = await member(res.body.cluster.id);
    // Its state before it had a secondary: restored later, it lacks every token the secondary needs.
    const snap = await s.request('POST', `/v1/clusters/${primary.id}/snapshots`, { token, body: { name: 'before-west' } });
    assert.equal(snap.status, 202, JSON.stringify(snap.body));
    assert.equal((await finish(snap.body.operation.id)).state, 'Succeeded');
    beforeWest = snap.body.snapshot.id;
  });

  it('issues a federation token to Clusters.ReadWrite only, shown once, and refuses what cannot join', async () => {
    assert.equal((await s.request('POST', `/v1/clusters/${primary.id}/federation-token`, { token: s.token(TENANT, READ) })).status, 403);
    const res = await s.request('POST', `/v1/clusters/${primary.id}/federation-token`, { token });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.match(res.body.token, /^mcf1\.[\w-]{43}$/);
    assert.equal(res.body.primaryClusterId, primary.id);
    assert.equal(res.body.primaryDatacenter, 'east');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const stored = await s.db.federationToken.findMany({ where: { primaryClusterId: primary.id } });
    assert.ok(!JSON.stringify(stored).includes(res.body.token), 'only its hash is kept');
    const audit = await s.db.auditEvent.findMany({ where: { clusterId: primary.id, action: 'cluster.federation-token.issued' }, select: { actor: true, details: true } });
    assert.ok(audit.length >= 1 && !JSON.stringify(audit).includes(res.body.token));
    const fed = res.body.token as string;
    const clusters = async () => s.db.cluster.count();
    const before = await clusters();

    const malformed = await create({ name: 'fed-bad', datacenter: 'bad', tier: 'development', federationToken: 'not-a-token' });
    assert.equal(malformed.status, 400, JSON.stringify(malformed.body));
    assert.match(malformed.body.error.message, /federationToken must be/);
    const unknown = await create({ name: 'fed-bad', datacenter: 'bad', tier: 'development', federationToken: `mcf1.${'A'.repeat(43)}` });
    assert.equal(unknown.status, 422, JSON.stringify(unknown.body));
    assert.equal(unknown.body.error.code, 'invalid_federation_token');
    // Another tenant holding the token gets the same answer as for a token never issued.
    const stranger = await create({ name: 'fed-bad', datacenter: 'bad', tier: 'development', federationToken: fed }, s.token(TENANT_B, WRITE));
    assert.equal(stranger.status, 422, JSON.stringify(stranger.body));
    assert.equal(stranger.body.error.code, 'invalid_federation_token');
    const sameDc = await create({ name: 'fed-bad', datacenter: 'east', tier: 'development', federationToken: fed });
    assert.equal(sameDc.status, 422, JSON.stringify(sameDc.body));
    assert.equal(sameDc.body.error.code, 'datacenter_taken');
    assert.match(sameDc.body.error.message, /datacenter 'east' is fed-east's/);
    assert.equal(await clusters(), before, 'nothing was written by a refused create');
    assert.equal((await s.db.federationToken.findFirstOrThrow({ where: { primaryClusterId: primary.id, usedAt: null } })).usedByClusterId, null, 'the token is still usable');
  });

  it('creates the secondary with a token: Running once the WAN pool, ACL replication and the Connect CA show the federation whole', async () => {
    const fed = await issue(primary.id);
    const res = await create({ name: 'fed-west', datacenter: 'west', tier: 'development', federationToken: fed });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.cluster.primaryClusterId, primary.id);
    secondaryOp = await finish(res.body.operation.id);
    assert.equal(secondaryOp.state, 'Succeeded', JSON.stringify(secondaryOp.error ?? secondaryOp.steps));
    const steps = secondaryOp.steps.map((x: { name: string }) => x.name);
    for (const step of ['make-federation-tokens', 'wait-wan-join', 'wait-acl-replication', 'wait-connect-ca', 'verify-acl']) assert.ok(steps.includes(step), `${step} in ${steps}`);
    process.stdout.write(`# secondary created in ${secondaryOp.steps.map((x: { name: string; durationMs: number }) => `${x.name} ${x.durationMs} ms`).join(', ')}\n`);
    secondary = await member(res.body.cluster.id);
    // Single-use: the same token makes nothing else.
    const again = await create({ name: 'fed-north', datacenter: 'north', tier: 'development', federationToken: fed });
    assert.equal(again.status, 422, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'invalid_federation_token');
  });

  it('shows the federation on each member', async () => {
    for (const id of [primary.id, secondary.id]) {
      const res = await s.request('GET', `/v1/clusters/${id}/federation`, { token: s.token(TENANT, READ) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.role, id === primary.id ? 'primary' : 'secondary');
      assert.equal(res.body.state, 'healthy');
      assert.equal(res.body.primary.clusterId, primary.id);
      assert.deepEqual(res.body.secondaries.map((m: { datacenter: string }) => m.datacenter), ['west']);
    }
    const other = await s.request('GET', `/v1/clusters/${primary.id}/federation`, { token: s.token(TENANT_B, READ) });
    assert.equal(other.status, 404, 'another tenant does not see it');
  });

  it('consul members -wan lists every server of both datacenters, alive', async () => {
    const wan = await primary.cli(['members', '-wan']);
    assert.equal(wan.code, 0, wan.stderr);
    for (const name of ['east-server-0.east', 'east-server-1.east', 'east-server-2.east', 'west-server-0.west']) assert.match(wan.stdout, new RegExp(`^${name.replace(/\./g, '\\.')}\\s+\\S+\\s+alive\\s+server`, 'm'), wan.stdout);
    const fromWest = await secondary.cli(['members', '-wan']);
    assert.equal(fromWest.stdout.split('\n').filter((l) => /\salive\s+server/.test(l)).length, 4, fromWest.stdout);
  });

  it('finds a service registered in the secondary from the primary (?dc=west)', async () => {
    const reg = await secondary.cli(['services', 'register', '-name=billing', '-address=10.1.2.3', '-port=8080']);
    assert.equal(reg.code, 0, reg.stderr);
    const found = await waitFor('billing in west, asked from east', async () => {
      const r = await primary.cli(['catalog', 'services', '-datacenter=west']);
      return r.stdout;
    }, (out) => /^billing$/m.test(out), 30_000, 250);
    assert.match(found, /^billing$/m);
    const nodes = await getJson(`${primary.cc.httpsAddress}/v1/catalog/service/billing?dc=west`, primary.cc.caPem, primary.secret);
    assert.equal(nodes.status, 200);
    assert.deepEqual((nodes.body as { Datacenter: string; ServiceAddress: string }[]).map((n) => [n.Datacenter, n.ServiceAddress]), [['west', '10.1.2.3']]);
  });

  it('a token made in the primary works in the secondary (ACL replication)', async () => {
    const put = await consul(['kv', 'put', 'from-east-token', 'yes'], { httpAddr: secondary.cc.httpsAddress, caFile: secondary.caFile, token: primary.secret });
    assert.equal(put.code, 0, put.stderr);
    const replicated = await waitFor('the primary\'s token in west\'s replicated tokens', () => secondary.cli(['acl', 'token', 'list']), (r) => r.stdout.includes('federation e2e'), 30_000, 250);
    assert.match(replicated.stdout, /federation e2e/);
  });

  it('holds the single-cluster TLS and ACL checks on the secondary', async () => {
    const httpAddr = secondary.cc.httpsAddress;
    const anon = await consul(['kv', 'put', 'hello', 'world'], { httpAddr, caFile: secondary.caFile });
    assert.notEqual(anon.code, 0);
    assert.match(anon.stderr, /403|Permission denied/);
    for (const a of secondary.cc.retryJoin) assert.equal(await tcpOpen(a, 8500), false, `no plaintext HTTP port on ${a}`);
    // One CA for the federation: the secondary's certificate chains to what the primary hands out, and names the secondary's datacenter.
    assert.equal(secondary.cc.caPem, primary.cc.caPem);
    const address = secondary.cc.retryJoin[0];
    const cert = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const sock = tls.connect({ host: address, port: 8501, ca: primary.cc.caPem, servername: '', checkServerIdentity: (_h, c) => tls.checkServerIdentity(address, c) }, () => {
        resolve(sock.getPeerCertificate());
        sock.end();
      });
      sock.once('error', reject);
    });
    assert.match(cert.subjectaltname ?? '', /DNS:server\.west\.consul/);
    assert.doesNotMatch(cert.subjectaltname ?? '', /server\.east\.consul/);
    const ring = await secondary.cli(['keyring', '-list']);
    assert.equal(ring.code, 0, ring.stderr);
    assert.match(ring.stdout, /WAN/);
    assert.match(ring.stdout, /west \(LAN\)/);
    assert.match(ring.stdout, /east \(LAN\)/);
  });

  it("rotates the gossip key on the primary for the whole federation; a secondary's own rotation is refused", async () => {
    const onSecondary = await s.request('POST', `/v1/clusters/${secondary.id}/rotate`, { token, body: { what: 'gossip-key' } });
    assert.equal(onSecondary.status, 409, JSON.stringify(onSecondary.body));
    assert.equal(onSecondary.body.error.code, 'rotate_on_primary');
    const ca = await s.request('POST', `/v1/clusters/${secondary.id}/rotate`, { token, body: { what: 'ca' } });
    assert.equal(ca.status, 409, JSON.stringify(ca.body));
    assert.equal(ca.body.error.code, 'rotate_on_primary');
    const keyOf = async (id: string) => (await s.request('GET', `/v1/clusters/${id}/client-config`, { token })).body.encrypt as string;
    const old = await keyOf(primary.id);
    assert.equal(await keyOf(secondary.id), old, 'one gossip key for the federation');
    const res = await s.request('POST', `/v1/clusters/${primary.id}/rotate`, { token, body: { what: 'gossip-key' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const op = await finish(res.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    assert.match(op.steps.find((x: { name: string }) => x.name === 'share-key-with-secondaries').detail, /^west: the new key stored and in the server configs$/);
    const key = await keyOf(primary.id);
    assert.notEqual(key, old);
    assert.equal(await keyOf(secondary.id), key, "the secondary's stored key (what its client config hands out) is the new one");
    const ring = await secondary.cli(['keyring', '-list']);
    for (const pool of ['WAN', 'west \\(LAN\\)', 'east \\(LAN\\)']) {
      const section = ring.stdout.split(/\n\s*\n|==>/).find((x) => new RegExp(pool).test(x)) ?? assert.fail(`${pool} in ${ring.stdout}`);
      assert.ok(section.includes(key) && !section.includes(old), `${pool}: only the new key\n${ring.stdout}`);
    }
  });

  it('rolls the CA on the primary for the whole federation: every member ends on the new CA, the WAN pool whole throughout', async () => {
    const oldCa = primary.cc.caPem;
    const res = await s.request('POST', `/v1/clusters/${primary.id}/rotate`, { token, body: { what: 'ca' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const op = await finish(res.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    for (const step of ['trust-new-ca', 'roll-leaves', 'drop-old-ca']) {
      assert.match(op.steps.find((x: { name: string }) => x.name === step).detail, /^east: .*; west: /, `${step} covers both datacenters`);
    }
    const caOf = async (id: string) => (await s.request('GET', `/v1/clusters/${id}/client-config`, { token })).body.caPem as string;
    const newCa = await caOf(primary.id);
    assert.notEqual(newCa, oldCa);
    assert.equal(await caOf(secondary.id), newCa, 'one CA for the federation');
    primary = { ...primary, cc: { ...primary.cc, caPem: newCa } };
    fs.writeFileSync(primary.caFile, newCa);
    fs.writeFileSync(secondary.caFile, newCa);
    secondary = { ...secondary, cc: { ...secondary.cc, caPem: newCa } };
    // The secondary's servers present certificates from the new CA for their own datacenter, and the old CA is trusted nowhere.
    const address = secondary.cc.retryJoin[0];
    const cert = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const sock = tls.connect({ host: address, port: 8501, ca: newCa, servername: '', checkServerIdentity: (_h, c) => tls.checkServerIdentity(address, c) }, () => {
        resolve(sock.getPeerCertificate());
        sock.end();
      });
      sock.once('error', reject);
    });
    assert.match(cert.subjectaltname ?? '', /DNS:server\.west\.consul/);
    const wan = await primary.cli(['members', '-wan']);
    assert.equal(wan.code, 0, wan.stderr);
    assert.equal(wan.stdout.split('\n').filter((l) => /\salive\s+server/.test(l)).length, 4, wan.stdout);
    // Cross-datacenter RPC works on the new CA: the primary reads the secondary's catalog.
    const services = await primary.cli(['catalog', 'services', '-datacenter=west']);
    assert.match(services.stdout, /^billing$/m, services.stderr);
  });

  it("restoring the primary to a snapshot from before the secondary makes the secondary's tokens again; the secondary keeps working", async () => {
    const res = await s.request('POST', `/v1/clusters/${primary.id}/snapshots/${beforeWest}/restore`, { token, body: { takeSnapshot: false } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const op = await finish(res.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    assert.match(op.steps.find((x: { name: string }) => x.name === 'ensure-federation-tokens').detail, /the tokens of west are in place/);
    // Tokens made after the snapshot are gone from the whole federation (ACLs replicate from the primary): new ones for the checks.
    primary = await member(primary.id);
    const tokens = await primary.cli(['acl', 'token', 'list']);
    for (const t of ['ACL replication of datacenter west', "agent token of datacenter west's servers", 'control plane management token of datacenter west']) assert.ok(tokens.stdout.includes(t), `${t} in the primary again`);
    secondary = await member(secondary.id);
    const replication = await waitFor('west to replicate again', () => getJson(`${secondary.cc.httpsAddress}/v1/acl/replication`, secondary.cc.caPem, secondary.secret), (r) => (r.body as { Running?: boolean }).Running === true, 30_000, 250);
    assert.equal((replication.body as { ReplicationType: string }).ReplicationType, 'tokens');
    // The worker still runs the secondary with its management token: a snapshot of it succeeds.
    const snap = await s.request('POST', `/v1/clusters/${secondary.id}/snapshots`, { token });
    assert.equal((await finish(snap.body.operation.id)).state, 'Succeeded');
  });

  it('scales the secondary to three servers; the federation sees them all, the primary untouched', async () => {
    const res = await s.request('PATCH', `/v1/clusters/${secondary.id}`, { token, body: { tier: 'standard' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const op = await finish(res.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    const wan = await waitFor('three west servers alive in the WAN pool', () => primary.cli(['members', '-wan']), (r) => r.stdout.split('\n').filter((l) => /^west-server-\d\.west\s+\S+\s+alive/.test(l)).length === 3, 30_000, 250);
    assert.equal(wan.stdout.split('\n').filter((l) => /\salive\s+server/.test(l)).length, 6, wan.stdout);
    const fed = await s.request('GET', `/v1/clusters/${primary.id}/federation`, { token });
    assert.equal(fed.body.state, 'healthy', JSON.stringify(fed.body));
  });

  it('refuses to delete the primary while it has a secondary (409 naming it)', async () => {
    const res = await s.request('DELETE', `/v1/clusters/${primary.id}`, { token });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'federation_has_secondaries');
    assert.match(res.body.error.message, /fed-west \(west/);
    assert.equal((await s.db.cluster.findUniqueOrThrow({ where: { id: primary.id } })).state, 'Running');
  });

  it('deletes the secondary: it leaves the WAN pool, its tokens go from the primary; then the primary can go', async () => {
    const del = await s.request('DELETE', `/v1/clusters/${secondary.id}`, { token });
    assert.equal(del.status, 202, JSON.stringify(del.body));
    const op = await finish(del.body.operation.id);
    assert.equal(op.state, 'Succeeded', JSON.stringify(op.error ?? op.steps));
    const wan = await primary.cli(['members', '-wan']);
    assert.doesNotMatch(wan.stdout, /^west-server-\d\.west\s+\S+\s+(alive|failed)/m, wan.stdout);
    const dcs = await waitFor('east to forget west', () => primary.cli(['catalog', 'datacenters']), (r) => r.code === 0 && !/^west$/m.test(r.stdout), 30_000, 250);
    assert.match(dcs.stdout, /^east$/m);
    const tokens = await primary.cli(['acl', 'token', 'list']);
    assert.doesNotMatch(tokens.stdout, /datacenter west/, 'the secondary\'s tokens are gone from the primary');
    const policies = await primary.cli(['acl', 'policy', 'list']);
    assert.doesNotMatch(policies.stdout, /federation-west-/);
    const fed = await s.request('GET', `/v1/clusters/${primary.id}/federation`, { token });
    assert.equal(fed.body.role, 'none');

    const delPrimary = await s.request('DELETE', `/v1/clusters/${primary.id}`, { token });
    assert.equal(delPrimary.status, 202, JSON.stringify(delPrimary.body));
    assert.equal((await finish(delPrimary.body.operation.id)).state, 'Succeeded');
  });
});
