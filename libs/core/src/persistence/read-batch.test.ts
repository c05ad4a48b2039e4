import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReadBatch } from './read-batch';

/** A statement the test ends by hand: the batches it was asked for, and a way to answer each. */
function scripted() {
  const calls: Array<{ args: number[]; answer: (rows: Array<string | null>) => void; fail: (e: Error) => void }> = [];
  const run = (args: number[]) => new Promise<Array<string | null>>((resolve, reject) => calls.push({ args, answer: resolve, fail: reject }));
  return { calls, run };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('ReadBatch', () => {
  it('sends a lone read at once, alone', async () => {
    const { calls, run } = scripted();
    const batch = new ReadBatch(run, 2);
    const one = batch.load(7);
    assert.deepEqual(calls.map((c) => c.args), [[7]]);
    calls[0]!.answer(['seven']);
    assert.equal(await one, 'seven');
  });

  it('gathers the reads asked while statements are in flight into one, each answered with its own row', async () => {
    const { calls, run } = scripted();
    const batch = new ReadBatch(run, 2);
    const first = [batch.load(1), batch.load(2)];
    const waiting = [batch.load(3), batch.load(4), batch.load(5)];
    assert.deepEqual(calls.map((c) => c.args), [[1], [2]], 'two statements in flight, the other reads wait');
    calls[0]!.answer(['one']);
    await tick();
    assert.deepEqual(calls.map((c) => c.args), [[1], [2], [3, 4, 5]], 'the waiting reads went together when a statement ended');
    calls[2]!.answer(['three', null, 'five']);
    calls[1]!.answer(['two']);
    assert.deepEqual(await Promise.all([...first, ...waiting]), ['one', 'two', 'three', null, 'five']);
  });

  it('fails every read of a statement that failed, and the next reads go on', async () => {
    const { calls, run } = scripted();
    const batch = new ReadBatch(run, 1);
    const a = batch.load(1);
    const b = [batch.load(2), batch.load(3)];
    calls[0]!.fail(new Error('connection lost'));
    await assert.rejects(a, /connection lost/);
    await tick();
    assert.deepEqual(calls[1]!.args, [2, 3]);
    calls[1]!.fail(new Error('again'));
    for (const p of b) await assert.rejects(p, /again/);
    const c = batch.load(4);
    await tick();
    calls[2]!.answer(['four']);
    assert.equal(await c, 'four');
  });

  it('puts at most maxBatch reads in one statement', async () => {
    const { calls, run } = scripted();
    const batch = new ReadBatch(run, 1, 3);
    const reads = [1, 2, 3, 4, 5, 6, 7].map((n) => batch.load(n));
    calls[0]!.answer(['1']);
    await tick();
    calls[1]!.answer(['2', '3', '4']);
    await tick();
    calls[2]!.answer(['5', '6', '7']);
    assert.deepEqual(calls.map((c) => c.args), [[1], [2, 3, 4], [5, 6, 7]]);
    assert.deepEqual(await Promise.all(reads), ['1', '2', '3', '4', '5', '6', '7']);
  });
});
