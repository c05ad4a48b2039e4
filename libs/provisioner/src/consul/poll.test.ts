import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PollAborted, PollTimeout, poll } from './poll';

describe('poll', () => {
  it('asks again until done accepts the answer, and returns that answer', async () => {
    let n = 0;
    const value = await poll('n to reach 3', async () => ++n, (v) => (v >= 3 ? true : `n=${v}`), { timeoutMs: 5_000, intervalMs: 1 });
    assert.equal(value, 3);
    assert.equal(n, 3);
  });

  it('counts a throwing probe as "not yet", and times out with what it waited for and the last reason', async () => {
    let n = 0;
    const err = await poll('the server to answer', async () => {
      n++;
      throw new Error(`refused ${n}`);
    }, () => true, { timeoutMs: 30, intervalMs: 5 }).catch((e: unknown) => e);
    assert.ok(err instanceof PollTimeout);
    assert.ok(n > 1, 'asked more than once');
    assert.match(err.message, new RegExp(`^the server to answer after \\d+ ms \\(refused ${n}\\)$`));
  });

  it('ends at once on PollAborted, and on any error with failOnError, with the error itself', async () => {
    let n = 0;
    const aborted = new PollAborted('server 1 is not running');
    await assert.rejects(poll('a leader', async () => { n++; throw aborted; }, () => true, { timeoutMs: 5_000 }), (e) => e === aborted);
    const failed = new Error('port in use');
    await assert.rejects(poll('start', async () => { n++; throw failed; }, () => true, { timeoutMs: 5_000, failOnError: true }), (e) => e === failed);
    assert.equal(n, 2);
  });

  it('asks the interval before each wait (a target\'s Retry-After)', async () => {
    const asked: number[] = [];
    let n = 0;
    await poll('three answers', async () => ++n, (v) => (v >= 3 ? true : 'not yet'), { timeoutMs: 5_000, intervalMs: () => (asked.push(n), 1) });
    assert.deepEqual(asked, [1, 2]);
  });
});
