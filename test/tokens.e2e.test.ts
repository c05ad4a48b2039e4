import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApiApp } from '../apps/api/src/app';
import { run } from '../apps/cli/src/cli';
import { SecretBox, SecretName, SecretRepository } from '../libs/core/src';
import { consul } from './support/consul-cli';
import { READ, TENANT_B, WRITE, createBody, httpRequest, startStack, testConfig, waitFor, type TestStack } from './support/stack';

const TENANT = 'dddddddd-0000-4000-8000-00000000000d';
/** Short, so the sweeper's revocation is seen in the test; long enough to collect right after the operation ends. */
const COLLECT_WINDOW_MS = 15_000;
const FINISHED = ['Succeeded', 'Failed', 'Canceled'];

// Tokens customers make through the control plane, on a real cluster: handed out once (in
// the answer, or through the operation when the API stopped waiting), revoked in Consul when
// nobody collected them in time, listed without secrets, revoked on request.
// Secrets are compared, never printed: no assertion here shows one.
describe('customer tokens: collect once, revoke, list', { timeout: 420_000 }, () => {
  let s: TestStack;
  /** A second API on the same database and queue that never waits for the token (TOKEN_WAIT_MS=0): every POST /tokens is a 202. */
  let impatient: NestFastifyApplication;
  let impatientUrl: string;
  let token: string;
  let clusterId: string;
  let httpAddr: string;
  let work: string;
  let caFile: string;
  /** Every secret this test has seen; none may appear in a listing. */
  const secrets: string[] = [];
  /** A token handed out in the answer to POST (global-management): the test's own way to look into Consul. */
  let fastSecret: string;
  /** The token collected through its operation. */
  let collected: { accessorId: string; secretId: string; operationId: string };

  const impatientRequest = (method: string, p: string, o: { token?: string; body?: unknown } = {}) => httpRequest(impatientUrl, method, p, o);
  const waitForOperation = (id: string) =>
    waitFor(`operation ${id} to end`, () => s.request('GET', `/v1/operations/${id}`, { token }), (r) => FINISHED.includes(r.body?.state), 120_000);
  /** What Consul says of a secret: `consul acl token read -self` over TLS against the cluster's CA. Never printed. */
  const self = (secret: string) => consul(['acl', 'token', 'read', '-self'], { httpAddr, caFile, token: secret });
  const listTokens = async (as = token) => {
    const res = await s.request('GET', `/v1/clusters/${clusterId}/tokens`, { token: as });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.tokens as { accessorId: string; state: string; revokeReason: string | null; collected: boolean; description: string; createdBy: string; createdAt: string }[];
  };
  const hcs = async (argv: string[]) => {
    const chunks = { out: [] as string[], err: [] as string[] };
    const env = { HOME: work, HCS_CONFIG: path.join(work, 'hcs.json'), HCS_API: impatientUrl, HCS_TOKEN: token };
    const code = await run(argv, { stdout: { write: (c: string) => chunks.out.push(c) }, stderr: { write: (c: string) => chunks.err.push(c) }, env });
    return { code, stdout: chunks.out.join(''), stderr: chunks.err.join('') };
  };

  before(async () => {
    const config = await testConfig({ TOKEN_COLLECT_WINDOW_MS: String(COLLECT_WINDOW_MS) });
    s = await startStack({ config, worker: true });
    impatient = await createApiApp({ ...config, TOKEN_WAIT_MS: 0 });
    await impatient.listen(0, '127.0.0.1');
    const address = impatient.getHttpServer().address();
    assert.ok(address && typeof address !== 'string');
    impatientUrl = `http://127.0.0.1:${address.port}`;
    token = s.token(TENANT, WRITE, 'alice');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tokens-'));
  });
  after(async () => {
    await impatient?.close();
    await s?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('creates a cluster to make tokens on', async () => {
    const res = await s.request('POST', '/v1/clusters', { token, body: createBody({ name: 'tokens', resourceGroup: 'rg-tokens' }) });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    clusterId = res.body.cluster.id;
    const op = await waitForOperation(res.body.operation.id);
    assert.equal(op.body.state, 'Succeeded', JSON.stringify(op.body));
    const cc = await s.request('GET', `/v1/clusters/${clusterId}/client-config`, { token });
    assert.equal(cc.status, 200, JSON.stringify(cc.body));
    httpAddr = cc.body.httpsAddress;
    caFile = path.join(work, 'ca.pem');
    fs.writeFileSync(caFile, cc.body.caPem);
  });

  it('hands a token made within the wait out in the answer, and never again through its operation', async () => {
    const res = await s.request('POST', `/v1/clusters/${clusterId}/tokens`, { token, body: { description: 'made in time' } });
    assert.equal(res.status, 201, JSON.stringify(res.body?.error));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.body.accessorId, /^[0-9a-f-]{36}$/);
    assert.match(res.body.operationId, /^[0-9a-f-]{36}$/);
    fastSecret = res.body.secretId;
    secrets.push(fastSecret);
    const again = await s.request('POST', `/v1/operations/${res.body.operationId}/token`, { token });
    assert.equal(again.status, 410);
    assert.equal(again.body.error.code, 'token_already_collected');
    assert.ok(!JSON.stringify(again.body).includes(fastSecret), 'a refusal holds no secret');
    const who = await self(fastSecret);
    assert.equal(who.code, 0, who.stderr);
    assert.ok(who.stdout.includes(res.body.accessorId), 'Consul resolves the secret to its accessor');
    // Nothing of it is left sealed in the database once handed out.
    assert.equal(await s.db.clusterSecret.count({ where: { clusterId, name: SecretName.issuedToken(res.body.operationId) } }), 0);
  });

  it('answers 202 with the operation and a collect link when the wait runs out; two concurrent collects: one gets the secret, the other 410', async () => {
    const res = await impatientRequest('POST', `/v1/clusters/${clusterId}/tokens`, { token, body: { description: 'collected later' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const opId = res.body.operation.id;
    assert.equal(res.body.operation.kind, 'create-token');
    assert.equal(res.headers.get('location'), `/v1/operations/${opId}`);
    assert.equal(res.body.collect, `/v1/operations/${opId}/token`);
    assert.equal(res.body.secretId, undefined);
    assert.equal((await waitForOperation(opId)).body.state, 'Succeeded');

    // Who may collect: the user who asked for it (or an operator), with a POST.
    const reader = await s.request('POST', res.body.collect, { token: s.token(TENANT, READ, 'reader') });
    assert.equal(reader.status, 403);
    const colleague = await s.request('POST', res.body.collect, { token: s.token(TENANT, WRITE, 'bob') });
    assert.equal(colleague.status, 403);
    assert.equal(colleague.body.error.code, 'token_not_requester');
    const byGet = await s.request('GET', res.body.collect, { token });
    assert.equal(byGet.status, 405);
    const stranger = await s.request('POST', res.body.collect, { token: s.token(TENANT_B, WRITE, 'mallory') });
    assert.equal(stranger.status, 404);
    assert.equal(stranger.body.error.code, 'operation_not_found');

    const both = await Promise.all([s.request('POST', res.body.collect, { token }), impatientRequest('POST', res.body.collect, { token })]);
    assert.deepEqual(both.map((r) => r.status).sort(), [200, 410], JSON.stringify(both.map((r) => r.body?.error ?? 'secret')));
    for (const r of both) assert.equal(r.headers.get('cache-control'), 'no-store');
    const won = both.find((r) => r.status === 200)!;
    const lost = both.find((r) => r.status === 410)!;
    assert.equal(lost.body.error.code, 'token_already_collected');
    assert.match(lost.body.error.message, /shown once.*revoke the token \(DELETE \/v1\/clusters\/.*\/tokens\/.*\) and create a new one/);
    assert.equal(won.body.operationId, opId);
    collected = { accessorId: won.body.accessorId, secretId: won.body.secretId, operationId: opId };
    secrets.push(collected.secretId);
    assert.equal(await s.db.clusterSecret.count({ where: { clusterId, name: SecretName.issuedToken(opId) } }), 0, 'the sealed copy is deleted');

    const who = await self(collected.secretId);
    assert.equal(who.code, 0, who.stderr);
    assert.ok(who.stdout.includes(collected.accessorId) && who.stdout.includes('collected later'), 'the collected secret authenticates as that token');
    const third = await s.request('POST', res.body.collect, { token });
    assert.equal(third.status, 410);
    const events = (await s.request('GET', `/v1/clusters/${clusterId}/events`, { token })).body.events as { action: string; operationId: string; details: { accessorId?: string } }[];
    const mine = events.filter((e) => e.operationId === opId).map((e) => e.action);
    assert.deepEqual(mine, ['cluster.token.requested', 'cluster.token.created', 'cluster.token.collected']);
  });

  it('revokes a token nobody collected once its window has passed; collect then answers 410 token_expired_uncollected', async () => {
    const res = await impatientRequest('POST', `/v1/clusters/${clusterId}/tokens`, { token, body: { description: 'never collected' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const opId = res.body.operation.id;
    assert.equal((await waitForOperation(opId)).body.state, 'Succeeded');
    // The test reads the waiting secret itself (it holds the KEK), to see what Consul does with it.
    const sealed = await new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE)).get(clusterId, SecretName.issuedToken(opId));
    assert.ok(sealed, 'the secret waits sealed until it is collected');
    const { accessorId, secretId } = JSON.parse(sealed) as { accessorId: string; secretId: string };
    secrets.push(secretId);
    const live = await self(secretId);
    assert.equal(live.code, 0, `the uncollected token is live in Consul until its window passes: ${live.stderr}`);

    const revoked = await waitFor('the sweeper to revoke the uncollected token', () => listTokens(), (ts) => ts.find((t) => t.accessorId === accessorId)?.state === 'revoked', COLLECT_WINDOW_MS + 90_000, 250);
    assert.equal(revoked.find((t) => t.accessorId === accessorId)!.revokeReason, 'uncollected');
    const rejected = await self(secretId);
    assert.notEqual(rejected.code, 0);
    assert.match(rejected.stderr, /403 \(ACL not found\)/);

    const late = await s.request('POST', `/v1/operations/${opId}/token`, { token });
    assert.equal(late.status, 410);
    assert.equal(late.body.error.code, 'token_expired_uncollected');
    assert.match(late.body.error.message, /not collected before .*create a new one/);
    assert.equal(await s.db.clusterSecret.count({ where: { clusterId, name: SecretName.issuedToken(opId) } }), 0, 'no sealed copy is left');

    const events = (await s.request('GET', `/v1/clusters/${clusterId}/events`, { token })).body.events as { action: string; actor: string; details: { accessorId?: string; reason?: string } }[];
    const about = events.filter((e) => e.details?.accessorId === accessorId);
    assert.deepEqual(about.map((e) => e.action), ['cluster.token.created', 'cluster.token.revoke.requested', 'cluster.token.revoked']);
    assert.equal(about[1]!.actor, 'system:token-sweeper');
    assert.equal(about[2]!.details.reason, 'uncollected');
  });

  it('lists the tokens made through the control plane with accessor and description, and no secret anywhere', async () => {
    const res = await s.request('GET', `/v1/clusters/${clusterId}/tokens`, { token: s.token(TENANT, READ, 'reader') });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const text = JSON.stringify(res.body);
    for (const secret of secrets) assert.ok(!text.includes(secret), 'no secret in the listing');
    assert.ok(!/secret/i.test(text), 'no secret field either');
    const byDescription = new Map((res.body.tokens as { description: string }[]).map((t) => [t.description, t]));
    assert.deepEqual([...byDescription.keys()].sort(), ['collected later', 'made in time', 'never collected']);
    const later = byDescription.get('collected later') as Record<string, unknown>;
    assert.equal(later.accessorId, collected.accessorId);
    assert.equal(later.state, 'active');
    assert.equal(later.collected, true);
    const requested = (await s.db.auditEvent.findFirstOrThrow({ where: { operationId: collected.operationId, action: 'cluster.token.requested' } })).actor;
    assert.equal(later.createdBy, requested, 'made by the user who asked for it');
    assert.match(String(later.createdAt), /^\d{4}-\d\d-\d\dT/);
    const stranger = await s.request('GET', `/v1/clusters/${clusterId}/tokens`, { token: s.token(TENANT_B, READ) });
    assert.equal(stranger.status, 404);
  });

  it('DELETE revokes a token through a revoke-token operation; Consul rejects it afterwards', async () => {
    const reader = await s.request('DELETE', `/v1/clusters/${clusterId}/tokens/${collected.accessorId}`, { token: s.token(TENANT, READ, 'reader') });
    assert.equal(reader.status, 403);
    const res = await s.request('DELETE', `/v1/clusters/${clusterId}/tokens/${collected.accessorId}`, { token });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.operation.kind, 'revoke-token');
    assert.equal(res.headers.get('location'), `/v1/operations/${res.body.operation.id}`);
    assert.equal(res.body.token.accessorId, collected.accessorId);
    const done = await waitForOperation(res.body.operation.id);
    assert.equal(done.body.state, 'Succeeded', JSON.stringify(done.body.error));
    assert.deepEqual(done.body.steps.map((x: { name: string }) => x.name), ['delete-acl-token', 'wait-until-rejected']);
    const rejected = await self(collected.secretId);
    assert.notEqual(rejected.code, 0);
    assert.match(rejected.stderr, /403 \(ACL not found\)/);
    const listed = (await listTokens()).find((t) => t.accessorId === collected.accessorId)!;
    assert.equal(listed.state, 'revoked');
    assert.equal(listed.revokeReason, 'requested');
    const again = await s.request('DELETE', `/v1/clusters/${clusterId}/tokens/${collected.accessorId}`, { token });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'token_already_revoked');
  });

  it('revoking a token already gone from Consul succeeds', async () => {
    const made = await s.request('POST', `/v1/clusters/${clusterId}/tokens`, { token, body: { description: 'deleted behind our back' } });
    assert.equal(made.status, 201, JSON.stringify(made.body?.error));
    secrets.push(made.body.secretId);
    const gone = await consul(['acl', 'token', 'delete', '-id', made.body.accessorId], { httpAddr, caFile, token: fastSecret });
    assert.equal(gone.code, 0, gone.stderr);
    const res = await s.request('DELETE', `/v1/clusters/${clusterId}/tokens/${made.body.accessorId}`, { token });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const done = await waitForOperation(res.body.operation.id);
    assert.equal(done.body.state, 'Succeeded', JSON.stringify(done.body.error));
    assert.match(done.body.steps[0].detail, /was already gone/);
  });

  it('refuses malformed and unknown ids, the management token and tokens made in Consul directly, in the error shape', async () => {
    const base = `/v1/clusters/${clusterId}/tokens`;
    const malformed = await s.request('DELETE', `${base}/not-a-uuid`, { token });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.code, 'invalid_accessor_id');
    const unknown = await s.request('DELETE', `${base}/0a0a0a0a-0000-4000-8000-000000000000`, { token });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'token_not_found');
    const noCluster = await s.request('DELETE', `/v1/clusters/0a0a0a0a-0000-4000-8000-000000000000/tokens/${collected.accessorId}`, { token });
    assert.equal(noCluster.status, 404);
    assert.equal(noCluster.body.error.code, 'cluster_not_found');
    const notUuid = await s.request('POST', '/v1/operations/not-a-uuid/token', { token });
    assert.equal(notUuid.status, 400);
    assert.equal(notUuid.body.error.code, 'invalid_id');
    const r = await s.request('POST', '/v1/operations/0a0a0a0a-0000-4000-8000-000000000000/token', { token });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'operation_not_found');
    const createOp = (await s.db.operation.findFirstOrThrow({ where: { clusterId, kind: 'create' } })).id;
    const notToken = await s.request('POST', `/v1/operations/${createOp}/token`, { token });
    assert.equal(notToken.status, 404);
    assert.equal(notToken.body.error.code, 'token_not_found');
    assert.match(notToken.body.error.message, /create operation; only create-token operations/);

    // The cluster's management token (Consul's "Master Token") and a token made in Consul directly: refused, and still there.
    const listing = await consul(['acl', 'token', 'list', '-format=json'], { httpAddr, caFile, token: fastSecret });
    assert.equal(listing.code, 0, listing.stderr);
    const master = (JSON.parse(listing.stdout) as { AccessorID: string; Description: string }[]).find((t) => t.Description === 'Master Token');
    assert.ok(master, 'the cluster has its management token');
    const direct = await consul(['acl', 'token', 'create', '-description', 'made in consul', '-policy-name', 'global-management', '-format=json'], { httpAddr, caFile, token: fastSecret });
    assert.equal(direct.code, 0, direct.stderr);
    const directAccessor = (JSON.parse(direct.stdout) as { AccessorID: string }).AccessorID;
    for (const accessor of [master.AccessorID, directAccessor]) {
      const r = await s.request('DELETE', `${base}/${accessor}`, { token });
      assert.equal(r.status, 404, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'token_not_found');
      assert.match(r.body.error.message, /no token .* was made through the control plane.*management token is rotated/);
      const still = await consul(['acl', 'token', 'read', '-id', accessor, '-format=json'], { httpAddr, caFile, token: fastSecret });
      assert.equal(still.code, 0, `token ${accessor} is still in Consul: ${still.stderr}`);
    }
    assert.equal(await s.db.operation.count({ where: { clusterId, kind: 'revoke-token', params: { path: ['accessorId'], equals: master.AccessorID } } }), 0, 'nothing was queued');
  });

  it('revokes a live token an earlier version left behind (sealed and never handed out) once a worker starts', async () => {
    // What POST /tokens left when it gave up after 30 s: the operation Succeeded, the token in Consul, its ids still sealed, no row.
    const ids = { accessorId: randomUUID(), secretId: randomUUID() };
    secrets.push(ids.secretId);
    const made = await consul(['acl', 'token', 'create', '-accessor', ids.accessorId, '-secret', ids.secretId, '-description', 'left behind', '-policy-name', 'global-management'], { httpAddr, caFile, token: fastSecret });
    assert.equal(made.code, 0, made.stderr);
    const op = await s.db.operation.create({
      data: { id: randomUUID(), tenantId: TENANT, clusterId, kind: 'create-token', mutating: false, state: 'Succeeded', requestedBy: 'an-earlier-user', params: { description: 'left behind' }, finishedAt: new Date() },
    });
    await new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE)).putIfAbsent(clusterId, SecretName.issuedToken(op.id), () => JSON.stringify(ids));
    assert.equal((await self(ids.secretId)).code, 0, 'the left-behind token is live');

    await s.startWorker(); // an upgrade restarts the workers
    const listed = await waitFor('the left-behind token to be revoked', () => listTokens(), (ts) => ts.find((t) => t.accessorId === ids.accessorId)?.state === 'revoked', 90_000, 250);
    const row = listed.find((t) => t.accessorId === ids.accessorId)!;
    assert.equal(row.revokeReason, 'uncollected');
    assert.equal(row.description, 'left behind');
    assert.match((await self(ids.secretId)).stderr, /403 \(ACL not found\)/);
    // Its requester is gone with the earlier version; an operator may still try, and finds it revoked.
    const late = await s.request('POST', `/v1/operations/${op.id}/token`, { token: s.sreToken() });
    assert.equal(late.status, 410);
    assert.equal(late.body.error.code, 'token_expired_uncollected');
    assert.equal(await s.db.clusterSecret.count({ where: { clusterId, name: SecretName.issuedToken(op.id) } }), 0);
  });

  it('hcs tokens create collects through the operation after a 202; tokens list and revoke', async () => {
    const made = await hcs(['tokens', 'create', clusterId, '--description', 'from the cli', '--json']);
    assert.equal(made.code, 0, made.stderr);
    const t = JSON.parse(made.stdout) as { accessorId: string; secretId: string };
    secrets.push(t.secretId);
    const who = await self(t.secretId);
    assert.equal(who.code, 0, who.stderr);
    assert.ok(who.stdout.includes(t.accessorId), 'the CLI handed out a working secret');

    const list = await hcs(['tokens', 'list', clusterId]);
    assert.equal(list.code, 0, list.stderr);
    const row = list.stdout.split('\n').find((l) => l.startsWith(t.accessorId));
    assert.ok(row, `the listing has the token:\n${list.stdout}`);
    assert.match(row, /^\S+\s+active\s+yes\s+.*from the cli$/);
    for (const secret of secrets) assert.ok(!list.stdout.includes(secret), 'no secret in the listing');

    const revoked = await hcs(['tokens', 'revoke', clusterId, t.accessorId, '--wait']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /revoked: Consul rejects it/);
    const rejected = await self(t.secretId);
    assert.match(rejected.stderr, /403 \(ACL not found\)/);
    const refused = await hcs(['tokens', 'revoke', clusterId, 'nope']);
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /invalid_accessor_id/);
  });
});
