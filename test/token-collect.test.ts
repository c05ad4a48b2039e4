/**
 * Who may collect a token's secret, and how: POST /v1/operations/{id}/token only (a link or an
 * image cannot POST with the console's CSRF header, so a cross-site page burns nothing), and
 * only the user who asked for the token or an operator. Each refusal leaves the secret where it
 * waits. The token rows are written as the worker writes them (no Consul here: the e2e test
 * makes real ones). Secrets are compared, never printed.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { deriveObjectId, mintToken } from '../infra/local/token';
import { IssuedTokenState, OperationKind, OperationState, SecretBox, SecretName, SecretRepository } from '../libs/core/src';
import { signIn } from './support/console';
import { OPERATOR_TENANT, READ, TENANT_A, TENANT_B, WRITE, createBody, startStack, type TestStack } from './support/stack';

const ALICE = { user: 'alice@contoso.example', tenantId: TENANT_A, roles: WRITE };

describe('collecting a token: POST, by the user who asked or an operator', () => {
  let s: TestStack;
  let clusterId: string;
  const alice = mintToken({ tenantId: TENANT_A, user: ALICE.user, roles: WRITE });
  const bob = mintToken({ tenantId: TENANT_A, user: 'bob@contoso.example', roles: WRITE });

  /** A create-token operation alice asked for that has Succeeded, its token Active and its secret waiting sealed, as the worker leaves them. */
  const waitingToken = async () => {
    const operationId = randomUUID();
    const ids = { accessorId: randomUUID(), secretId: randomUUID() };
    const requestedBy = deriveObjectId(TENANT_A, ALICE.user);
    await s.db.operation.create({
      data: { id: operationId, tenantId: TENANT_A, clusterId, kind: OperationKind.CreateToken, mutating: false, state: OperationState.Succeeded, requestedBy, params: { description: 'for alice' }, finishedAt: new Date() },
    });
    await new SecretRepository(s.db, SecretBox.fromKeyFile(s.config.KEK_FILE)).putIfAbsent(clusterId, SecretName.issuedToken(operationId), () => JSON.stringify(ids));
    await s.db.issuedToken.create({
      data: { accessorId: ids.accessorId, clusterId, tenantId: TENANT_A, operationId, description: 'for alice', createdBy: requestedBy, state: IssuedTokenState.Active, collectBy: new Date(Date.now() + 600_000) },
    });
    return { operationId, ...ids, link: `/v1/operations/${operationId}/token` };
  };
  const stillWaiting = async (operationId: string) => s.db.clusterSecret.count({ where: { clusterId, name: SecretName.issuedToken(operationId) } });

  before(async () => {
    s = await startStack();
    const created = await s.request('POST', '/v1/clusters', { token: alice, body: createBody({ name: 'collect' }) });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    clusterId = created.body.cluster.id;
  });
  after(async () => {
    await s?.close();
  });

  it('answers the old GET with 405, Allow: POST and a body saying to POST, and burns nothing', async () => {
    const t = await waitingToken();
    const res = await s.request('GET', t.link, { token: alice });
    assert.equal(res.status, 405, `status ${res.status}`);
    assert.equal(res.headers.get('allow'), 'POST');
    assert.equal(res.body.error.code, 'method_not_allowed');
    assert.match(res.body.error.message, new RegExp(`POST ${t.link}`));
    assert.ok(!JSON.stringify(res.body).includes(t.secretId), 'no secret in the refusal');
    assert.equal(await stillWaiting(t.operationId), 1, 'the secret still waits');
    const row = await s.db.issuedToken.findUniqueOrThrow({ where: { operationId: t.operationId } });
    assert.equal(row.collectedAt, null);
  });

  it('refuses a POST made with the console cookie but no X-CSRF-Token (a cross-site form), burning nothing; with it, the requester collects once', async () => {
    const t = await waitingToken();
    const who = await signIn(s.url, ALICE);
    const crossSite = await s.request('POST', t.link, { headers: { cookie: who.cookie } });
    assert.equal(crossSite.status, 403, `status ${crossSite.status}`);
    assert.equal(crossSite.body.error.code, 'csrf_required');
    assert.equal(await stillWaiting(t.operationId), 1, 'the secret still waits');
    const mine = await s.request('POST', t.link, { headers: { cookie: who.cookie, 'x-csrf-token': who.csrfToken } });
    assert.equal(mine.status, 200, `status ${mine.status}`);
    assert.equal(mine.headers.get('cache-control'), 'no-store');
    assert.equal(mine.body.secretId, t.secretId);
    assert.equal(mine.body.accessorId, t.accessorId);
    assert.equal(await stillWaiting(t.operationId), 0, 'handed out: no sealed copy left');
    const again = await s.request('POST', t.link, { token: alice });
    assert.equal(again.status, 410);
    assert.equal(again.body.error.code, 'token_already_collected');
  });

  it("refuses another user of the same tenant, a reader and a customer's Platform.SRE (the secret stays); another tenant gets 404", async () => {
    const t = await waitingToken();
    const other = await s.request('POST', t.link, { token: bob });
    assert.equal(other.status, 403, `status ${other.status}`);
    assert.equal(other.body.error.code, 'token_not_requester');
    assert.match(other.body.error.message, /only the user who asked for this token \(or an operator\) may collect its secret/);
    assert.ok(!JSON.stringify(other.body).includes(t.secretId));
    const reader = await s.request('POST', t.link, { token: mintToken({ tenantId: TENANT_A, user: ALICE.user, roles: READ }) });
    assert.equal(reader.status, 403);
    assert.equal(reader.body.error.code, 'forbidden');
    const customerSre = await s.request('POST', t.link, { token: mintToken({ tenantId: TENANT_A, user: 'admin', roles: ['Platform.SRE'] }) });
    assert.equal(customerSre.status, 403);
    const stranger = await s.request('POST', t.link, { token: mintToken({ tenantId: TENANT_B, user: ALICE.user, roles: WRITE }) });
    assert.equal(stranger.status, 404);
    assert.equal(stranger.body.error.code, 'operation_not_found');
    assert.equal(await stillWaiting(t.operationId), 1, 'the secret still waits');
    assert.equal((await s.db.issuedToken.findUniqueOrThrow({ where: { operationId: t.operationId } })).collectedAt, null);
    // The one who asked still gets it.
    const mine = await s.request('POST', t.link, { token: alice });
    assert.equal(mine.status, 200, `status ${mine.status}`);
    assert.equal(mine.body.secretId, t.secretId);
  });

  it("lets an SRE of the operator's tenant collect it, once, recorded as an operator's collect", async () => {
    const t = await waitingToken();
    const sre = await s.request('POST', t.link, { token: s.sreToken('oncall') });
    assert.equal(sre.status, 200, `status ${sre.status}: ${JSON.stringify(sre.body?.error)}`);
    assert.equal(sre.body.secretId, t.secretId);
    const row = await s.db.issuedToken.findUniqueOrThrow({ where: { operationId: t.operationId } });
    assert.equal(row.collectedBy, deriveObjectId(OPERATOR_TENANT, 'oncall'));
    const event = await s.db.auditEvent.findFirstOrThrow({ where: { operationId: t.operationId, action: 'cluster.token.collected' } });
    assert.equal(event.tenantId, TENANT_A, "the event is in the cluster's tenant");
    assert.deepEqual(event.details, { accessorId: t.accessorId, via: 'collect', operatorTenantId: OPERATOR_TENANT });
    const late = await s.request('POST', t.link, { token: alice });
    assert.equal(late.status, 410);
    assert.equal(late.body.error.code, 'token_already_collected');
  });
});
