import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StartGate, startGateCapacity } from './start-gate';

/** Whether a promise has settled, after the pending callbacks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('StartGate', () => {
  it('admits at most its capacity; the others wait in order and enter as places are left', async () => {
    const gate = new StartGate(2, 60_000);
    await gate.enter('a');
    await gate.enter('b');
    const c = gate.enter('c');
    const d = gate.enter('d');
    assert.equal(await settled(c), false, 'c waits while a and b hold the places');
    assert.deepEqual(gate.usage, { held: 2, waiting: 2 });
    gate.leave('a');
    assert.equal(await settled(c), true, 'c enters when a leaves');
    assert.equal(await settled(d), false, 'd still waits: c came first');
    gate.leave('b');
    assert.equal(await settled(d), true);
    gate.leave('c');
    gate.leave('d');
    assert.deepEqual(gate.usage, { held: 0, waiting: 0 });
  });

  it('a key entering again (its step run once more) keeps its one place; leaving twice frees one place', async () => {
    const gate = new StartGate(1, 60_000);
    await gate.enter('a');
    assert.equal(await gate.enter('a') < 1_000, true, 'no wait for a place it holds');
    const b = gate.enter('b');
    gate.leave('a');
    gate.leave('a');
    assert.equal(await settled(b), true);
    assert.deepEqual(gate.usage, { held: 1, waiting: 0 });
    gate.leave('b');
  });

  it('a holder that never leaves is let go after holdMaxMs', async () => {
    const gate = new StartGate(1, 50);
    await gate.enter('lost');
    const started = Date.now();
    // The gate's timer does not hold the process open (a worker has other work); this test must.
    const alive = setTimeout(() => undefined, 5_000);
    await gate.enter('next');
    clearTimeout(alive);
    assert.ok(Date.now() - started >= 40, 'next entered once the lost holder timed out');
    gate.leave('next');
  });

  it('LOCAL_CONCURRENT_STARTS 0 is twice the cores (at least 2); a capacity below 1 is refused', () => {
    assert.ok(startGateCapacity(0) >= 2);
    assert.equal(startGateCapacity(3), 3);
    assert.throws(() => new StartGate(0, 1_000), /capacity of at least 1/);
  });
});
