import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { procAlive, waitUntil } from './processes';
import { Supervisor, type SupervisorEvent } from './supervisor';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supervisor-'));
const supervisors: Supervisor[] = [];
after(async () => {
  for (const s of supervisors) await s.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every event of SUPERVISOR, and a way to wait for the first COUNT that match (failing after timeoutMs). */
function recorder(supervisor: Supervisor) {
  const events: SupervisorEvent[] = [];
  supervisor.on('event', (e: SupervisorEvent) => events.push(e));
  const matching = (match: (e: SupervisorEvent) => boolean) => events.filter(match);
  return {
    events,
    async until(count: number, match: (e: SupervisorEvent) => boolean, timeoutMs = 20_000): Promise<SupervisorEvent[]> {
      assert.ok(await waitUntil(() => matching(match).length >= count, timeoutMs, 10), `not ${count} matching events within ${timeoutMs} ms: ${JSON.stringify(events)}`);
      return matching(match).slice(0, count);
    },
  };
}

const node = (name: string, script: string) => ({ name, command: process.execPath, args: ['-e', script], logFile: path.join(dir, `${name}.log`) });

describe('the supervisor', () => {
  it('starts a crashing process again with a growing backoff, and ends it cleanly', async () => {
    const supervisor = new Supervisor({ backoff: { firstMs: 50, maxMs: 200, resetAfterMs: 60_000 }, graceMs: 5_000 });
    supervisors.push(supervisor);
    const seen = recorder(supervisor);
    supervisor.start(node('crash', 'process.exit(3)'));
    const exits = await seen.until(5, (e) => e.kind === 'exited');
    assert.deepEqual(exits.map((e) => e.kind === 'exited' && e.delayMs), [50, 100, 200, 200, 200], 'doubling up to the maximum');
    assert.ok(exits.every((e) => e.kind === 'exited' && e.status === 3));
    const starts = await seen.until(5, (e) => e.kind === 'started');
    assert.deepEqual(starts.map((e) => e.kind === 'started' && e.restart), [false, true, true, true, true]);
    assert.match(fs.readFileSync(path.join(dir, 'crash.log'), 'utf8'), /==> supervisor: crash exited with status 3; restarting in 0\.1 s\n/);

    await supervisor.stop();
    for (const e of seen.events) if (e.kind === 'started') assert.equal(procAlive(e.pid), false, `pid ${e.pid} is gone`);
    assert.equal(supervisor.pid('crash'), undefined);
  });

  it('starts a killed process again with its status, and stop() leaves none of its processes behind', async () => {
    const supervisor = new Supervisor({ backoff: { firstMs: 50, maxMs: 1_000, resetAfterMs: 60_000 }, graceMs: 500 });
    supervisors.push(supervisor);
    const seen = recorder(supervisor);
    // It ignores SIGTERM once it has said so: stop() must escalate to SIGKILL.
    supervisor.start(node('stubborn', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);"));
    // Ready (its SIGTERM handler in place) once its line is in its log.
    const readies = () => (fs.readFileSync(path.join(dir, 'stubborn.log'), 'utf8').match(/^ready$/gm) ?? []).length;
    const [first] = await seen.until(1, (e) => e.kind === 'started');
    assert.ok(first?.kind === 'started');
    assert.ok(await waitUntil(() => readies() >= 1, 10_000, 20), 'the process is ready');
    process.kill(first.pid, 'SIGKILL');
    const [exited] = await seen.until(1, (e) => e.kind === 'exited');
    assert.ok(exited?.kind === 'exited');
    assert.deepEqual([exited.pid, exited.status, exited.delayMs], [first.pid, 137, 50], 'its pid, a shell\'s status for SIGKILL, the first backoff');
    const [, second] = await seen.until(2, (e) => e.kind === 'started');
    assert.ok(second?.kind === 'started' && second.restart && second.pid !== first.pid);
    assert.equal(supervisor.pid('stubborn'), second.pid);
    assert.ok(await waitUntil(() => readies() >= 2, 10_000, 20), 'the restarted process is ready');
    await supervisor.stop();
    assert.equal(procAlive(second.pid), false, 'no process is left');
    assert.equal(seen.events.filter((e) => e.kind === 'started').length, 2, 'nothing is started after stop()');
  });
});
