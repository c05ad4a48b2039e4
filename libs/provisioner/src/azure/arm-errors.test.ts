/**
 * ARM's errors as they come: a deployment's causes nested levels deep, and older providers'
 * inner errors as JSON in a message. The operation's error is the root cause.
 *
 * Run: node --test dist/libs/provisioner/src/azure/arm-errors.test.js
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TargetRefusedError } from '../target';
import { describeArmError, isRefusal, refusal, rootCauses } from './arm-errors';

describe('ARM errors', () => {
  it('the root cause of DeploymentFailed → ResourceDeploymentFailure → the provider\'s error', () => {
    const err = {
      code: 'DeploymentFailed', message: 'At least one resource deployment operation failed.',
      details: [{ code: 'ResourceDeploymentFailure', message: "reached terminal provisioning state 'Failed'", details: [{ code: 'SkuNotAvailable', message: 'The requested VM size is not available.' }] }],
    };
    assert.deepEqual(rootCauses(err), [{ code: 'SkuNotAvailable', message: 'The requested VM size is not available.' }]);
  });

  it('an inner error given as JSON in a detail\'s message is one more level', () => {
    const err = {
      code: 'DeploymentFailed', message: 'At least one resource deployment operation failed.',
      details: [{ code: 'BadRequest', message: JSON.stringify({ error: { code: 'InvalidParameter', message: 'keyData is invalid', target: 'keyData' } }) }],
    };
    assert.deepEqual(describeArmError(err), { code: 'InvalidParameter', message: 'keyData is invalid' });
  });

  it('several failed resources: the first root cause, naming how many more', () => {
    const err = { code: 'DeploymentFailed', message: 'x', details: [{ code: 'A', message: 'first' }, { code: 'R', message: 'r', details: [{ code: 'B', message: 'second' }] }] };
    assert.deepEqual(describeArmError(err), { code: 'A', message: 'first (and 1 more: B)' });
    assert.deepEqual(rootCauses({ code: 'Plain', message: 'no details' }), [{ code: 'Plain', message: 'no details' }]);
  });

  it('400, 403, 404, 409 are refusals (permanent); 408, 429 and 5xx are not', () => {
    for (const s of [400, 403, 404, 409]) assert.equal(isRefusal(s), true, String(s));
    for (const s of [408, 429, 500, 502, 503, undefined]) assert.equal(isRefusal(s), false, String(s));
    const e = Object.assign(new Error('The template deployment is not valid'), {
      statusCode: 403, code: 'AuthorizationFailed',
      response: { bodyAsText: JSON.stringify({ error: { code: 'AuthorizationFailed', message: "The client does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write'." } }) },
    });
    const r = refusal('deployment d', e);
    assert.ok(r instanceof TargetRefusedError && r.permanent);
    assert.equal(r.code, 'AuthorizationFailed');
    assert.match(r.message, /Microsoft\.Authorization\/roleAssignments\/write/);
  });
});
