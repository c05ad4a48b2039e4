import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Coalescer } from './coalescer';

/** A batch function that records each batch and answers when the test says so. */
function gated() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const run = async (inputs: number[]): Promise<number[]> => {
    batches.push([...inputs]);
    await new Promise<void>((resolve) => gates.push(resolve));
    return inputs.map((i) => i * 10);
  };
  const open = async () => {
    // Let queued microtasks (the next flush) run before opening.
    await new Promise((r) => setImmediate(r));
    gates.shift()?.();
  };
  return { batches, run, open };
}

describe('Coalescer', () => {
  it('runs a lone call at once, and calls made while a batch is in flight together in the next one', async () => {
    const g = gated();
    const c = new Coalescer(g.run);
    const first = c.submit(1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(g.batches, [[1]]);
    const rest = [2, 3, 4].map((i) => c.submit(i));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(g.batches, [[1]], 'nothing more starts while a batch is in flight');
    await g.open();
    assert.equal(await first, 10);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(g.batches, [[1], [2, 3, 4]]);
    await g.open();
    assert.deepEqual(await Promise.all(rest), [20, 30, 40], 'each caller gets its own result');
  });

  it('calls made in the same turn go together, at most maxBatch at a time', async () => {
    const g = gated();
    const c = new Coalescer(g.run, { maxBatch: 2 });
    const all = [1, 2, 3, 4, 5].map((i) => c.submit(i));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(g.batches, [[1, 2]]);
    for (let i = 0; i < 3; i++) await g.open();
    assert.deepEqual(await Promise.all(all), [10, 20, 30, 40, 50]);
    assert.deepEqual(g.batches, [[1, 2], [3, 4], [5]]);
  });

  it('a caller returns only after the batch that carries its item has finished', async () => {
    const g = gated();
    const c = new Coalescer(g.run);
    let done = false;
    const p = c.submit(7).then(() => (done = true));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(done, false);
    await g.open();
    await p;
    assert.equal(done, true);
  });

  it('a failed batch fails each of its callers, and the next batch still runs', async () => {
    let calls = 0;
    const c = new Coalescer<number, number>(async (inputs) => {
      calls++;
      if (inputs.includes(13)) throw new Error('statement failed');
      return inputs;
    });
    const bad = [c.submit(12), c.submit(13)];
    for (const p of bad) await assert.rejects(p, /statement failed/);
    assert.equal(await c.submit(14), 14);
    assert.equal(calls, 2);
  });

  it('a batch that answers for the wrong number of items fails its callers instead of mixing answers', async () => {
    const c = new Coalescer<number, number>(async (inputs) => inputs.slice(1));
    const all = [c.submit(1), c.submit(2)];
    for (const p of all) await assert.rejects(p, /1 results for 2 items/);
  });
});
