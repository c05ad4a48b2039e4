import assert from 'node:assert/strict';
import { waitFor, type TestStack } from './stack';

/**
 * The SecretID of a new management token, made as a customer makes one: POST /v1/clusters/{id}/tokens,
 * the secret in its 201 answer or, when the API stopped waiting (202), collected once its operation
 * has Succeeded. Nothing of it is printed.
 */
export async function makeManagementToken(s: Pick<TestStack, 'request'>, clusterId: string, bearer: string, description: string): Promise<string> {
  const made = await s.request('POST', `/v1/clusters/${clusterId}/tokens`, { token: bearer, body: { description } });
  if (made.status !== 202) {
    assert.equal(made.status, 201, JSON.stringify(made.body?.error));
    return made.body.secretId as string;
  }
  const op = await waitFor('the create-token operation', () => s.request('GET', `/v1/operations/${made.body.operation.id}`, { token: bearer }),
    (r) => ['Succeeded', 'Failed', 'Canceled'].includes(r.body?.state), 120_000);
  assert.equal(op.body.state, 'Succeeded', JSON.stringify(op.body?.error));
  const collected = await s.request('POST', made.body.collect, { token: bearer });
  assert.equal(collected.status, 200, JSON.stringify(collected.body?.error));
  return collected.body.secretId as string;
}
