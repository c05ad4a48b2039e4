import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ScheduleRunRepository, catchUpPeriods, closeDb, createDb, type Db } from '../../../../libs/core/src';
import { createTestDatabase, dropTestDatabase, waitFor } from '../../../../test/support/stack';
import { PeriodicSchedule } from './periodic-schedule';

const LONG = 2_000_000_000; // a period that does not end during the test
const EPOCH = new Date(0);
/** The start of the current LONG period: a worker that started then may claim it, and none before. */
const CURRENT = new Date(Math.floor(Date.now() / LONG) * LONG);

// The ledger that makes a scheduler run once per period across workers, on a real PostgreSQL:
// several workers racing for one period, a holder that dies mid-run, a holder that comes back late.
describe('schedule runs: once per period across workers', () => {
  let url: string;
  let db: Db;
  let ledger: ScheduleRunRepository;

  before(async () => {
    url = await createTestDatabase();
    db = createDb(url, 8);
    ledger = new ScheduleRunRepository(db);
  });
  after(async () => {
    await closeDb(db);
    await dropTestDatabase(url);
  });

  const row = (schedule: string) => db.scheduleRun.findMany({ where: { schedule }, orderBy: { periodStart: 'asc' } });

  it('names the period by the database clock, floored to a multiple of the period; eight claimers at once: one wins', async () => {
    const claims = await Promise.all([...Array(8).keys()].map((i) => ledger.claimDue('race', LONG, `host:${i}`, 60_000, CURRENT)));
    const won = claims.filter((c) => c !== null);
    assert.equal(won.length, 1, 'one claim per period');
    assert.equal(won[0]!.periodStart.getTime() % LONG, 0, 'the period starts on a multiple of the period');
    assert.ok(won[0]!.periodStart.getTime() <= Date.now() && Date.now() - won[0]!.periodStart.getTime() < LONG);
    assert.equal(won[0]!.runs, 1);
    assert.equal(await ledger.takeOverLapsed('race', 'host:9', 60_000), null, 'a run whose lease holds is not taken over');
    assert.equal(await ledger.finish(won[0]!, 'host:x', null), true);
    assert.equal(await ledger.claimDue('race', LONG, 'host:9', 60_000, CURRENT), null, 'a finished period is not run again');
    const [r] = await row('race');
    assert.ok(r.finishedAt && r.finishedBy === 'host:x' && r.error === null);
  });

  it('a worker does not claim the period that began before it started', async () => {
    assert.equal(await ledger.claimDue('late', LONG, 'host:1', 60_000, new Date()), null);
    assert.deepEqual(await row('late'), []);
  });

  it('periods nobody claimed in time are claimed late, oldest first, a bounded number back', async () => {
    const claimed: number[] = [];
    for (;;) {
      const c = await ledger.claimDue('catch-up', LONG, 'host:1', 60_000, EPOCH);
      if (!c) break;
      claimed.push(c.periodStart.getTime());
    }
    const current = CURRENT.getTime();
    const back = catchUpPeriods(LONG);
    assert.equal(back, 3, 'at least three periods back');
    assert.deepEqual(claimed, [...Array(back + 1).keys()].map((k) => current - (back - k) * LONG));
    assert.equal(catchUpPeriods(2000), 30, 'a minute of short periods');
    assert.equal(catchUpPeriods(100), 100, 'at most a hundred');
  });

  it('a run whose holder died is taken over once its lease lapsed; the dead holder\'s late writes change nothing', async () => {
    const first = (await ledger.claimDue('takeover', LONG, 'host:dead', 1000, CURRENT))!;
    assert.ok(first);
    // Its lease lapses (one second without renewal): the next look of another worker takes the period over.
    const second = await waitFor('the lease to lapse', () => ledger.takeOverLapsed('takeover', 'host:alive', 60_000), (c) => c !== null, 10_000, 100);
    assert.equal(second!.runs, 2);
    assert.equal(second!.periodStart.getTime(), first.periodStart.getTime(), 'the same period');
    assert.equal(await ledger.takeOverLapsed('takeover', 'host:third', 60_000), null, 'taken over once');
    assert.equal(await ledger.renew(first, 60_000), false, 'the first claim no longer renews');
    assert.equal(await ledger.finish(first, 'host:dead', null), false, 'nor finishes');
    assert.equal(await ledger.finish(second!, 'host:alive', null), true);
    const [r] = await row('takeover');
    assert.deepEqual(r.claimedBy, ['host:dead', 'host:alive']);
    assert.equal(r.finishedBy, 'host:alive');
    assert.equal(r.runs, 2);
  });

  it('three workers\' schedules with a 1 s period: one run per period, and a period held by a frozen worker is run by another', async () => {
    let runs = 0;
    let frozen: (() => void) | undefined;
    const owners = ['w1', 'w2', 'w3'];
    // w1 stands for a killed worker: once its run has begun it renews nothing, as a dead process.
    const noRenewals = Object.assign(Object.create(ledger) as ScheduleRunRepository, { renew: () => Promise.resolve(true) });
    const schedules = owners.map(
      (owner) =>
        new PeriodicSchedule(owner === 'w1' ? noRenewals : ledger, {
          name: 'health', periodMs: 1000, owner, leaseMs: 1500,
          run: async () => {
            runs++;
            // w1's first run does not end until the test is over.
            if (owner === 'w1' && !frozen) await new Promise<void>((resolve) => (frozen = resolve));
          },
        }),
    );
    for (const s of schedules) s.start();
    const held = await waitFor('w1 to hold a period', async () => (await row('health')).find((r) => r.claimedBy[0] === 'w1'), (r) => r !== undefined, 20_000, 50);
    await waitFor('w1\'s period taken over and finished by another worker', async () => (await row('health')).find((r) => r.periodStart.getTime() === held!.periodStart.getTime()),
      (r) => r?.finishedAt != null, 20_000, 50);
    // A few more periods go by with w2 and w3.
    const firstPeriod = (await row('health'))[0].periodStart.getTime();
    await waitFor('five more periods', async () => (await row('health')).filter((r) => r.finishedAt).length, (n) => n >= 6, 20_000, 100);
    frozen!();
    await Promise.all(schedules.map((s) => s.stop()));
    const rows = await row('health');
    const finished = rows.filter((r) => r.finishedAt);
    const last = finished[finished.length - 1].periodStart.getTime();
    const periods = (last - firstPeriod) / 1000 + 1;
    assert.equal(finished.length, periods, `one finished run for every period from the first to the last: ${JSON.stringify(rows.map((r) => [r.periodStart.toISOString(), r.claimedBy]))}`);
    const takenOver = rows.find((r) => r.periodStart.getTime() === held!.periodStart.getTime())!;
    assert.equal(takenOver.claimedBy[0], 'w1');
    assert.notEqual(takenOver.finishedBy, 'w1', 'the frozen worker\'s period was finished by another');
    assert.equal(takenOver.runs, 2);
    for (const r of rows.filter((x) => x !== takenOver)) assert.equal(r.runs, 1, `period ${r.periodStart.toISOString()} ran once`);
    assert.equal(runs, rows.reduce((n, r) => n + r.runs, 0), 'every run began through a claim');
  });
});
