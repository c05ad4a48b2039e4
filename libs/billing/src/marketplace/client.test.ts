import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { startFakeMetering, usageKey, type FakeMetering, type FakeMeteringOptions } from '../../../../test/support/fake-metering';
import { CALL_FAILED, MeteringAuthError, MeteringClient, type MeteringClientOptions, type UsageEvent } from './client';
import { METERING_SCOPE } from './wire';

const PLAN = 'consul-payg';
const DIMENSION = 'standard_hours';
// The fake's metering clock: half past the current hour, so "n hours ago" never crosses a boundary mid-test.
const NOW = Math.floor(Date.now() / 3_600_000) * 3_600_000 + 30 * 60_000;
const hoursAgo = (n: number) => new Date(Math.floor(NOW / 3_600_000) * 3_600_000 - n * 3_600_000).toISOString();
const subscriptionId = randomUUID();
let seq = 0;
const newResource = (label = 'app') => `/subscriptions/${subscriptionId}/resourceGroups/rg-${++seq}/providers/Microsoft.Solutions/applications/${label}-${seq}`;
const usage = (over: Partial<UsageEvent> = {}): UsageEvent =>
  ({ resourceUri: newResource(), quantity: 1, dimension: DIMENSION, effectiveStartTime: hoursAgo(1), planId: PLAN, ...over }) as UsageEvent;
const keyOf = (e: UsageEvent) => usageKey(e.resourceUri ?? e.resourceId!, e.dimension, e.effectiveStartTime);

const fakes: FakeMetering[] = [];
async function fakeMetering(opts: FakeMeteringOptions = {}): Promise<FakeMetering> {
  const fake = await startFakeMetering({ now: () => NOW, knownResources: (r) => !r.includes('/unknown-'), ...opts });
  fakes.push(fake);
  return fake;
}
const clientFor = (fake: FakeMetering, opts: Partial<MeteringClientOptions> = {}) =>
  new MeteringClient({ baseUrl: fake.url, credential: fake.credential(), timeoutMs: 5_000, maxAttempts: 4, backoff: { baseMs: 5, maxMs: 20 }, ...opts });

after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});

describe('MeteringClient against the fake marketplace', () => {
  let fake: FakeMetering;
  before(async () => {
    fake = await fakeMetering();
  });

  test('accepted, then the same events again are duplicates carrying the first usageEventId; one token for all calls', async () => {
    const client = clientFor(fake);
    const events = [usage(), usage({ resourceUri: undefined, resourceId: randomUUID(), dimension: 'plus_hours', effectiveStartTime: hoursAgo(3) } as Partial<UsageEvent>)];
    const first = await client.batchUsageEvent(events);
    assert.equal(first.length, 2);
    for (const o of first) assert.equal(o.kind, 'accepted');
    const ids = first.map((o) => (o.kind === 'accepted' ? o.usageEventId : ''));
    assert.notEqual(ids[0], ids[1]);
    assert.deepEqual(
      ids,
      events.map((e) => fake.accepted().find((a) => a.key === keyOf(e))?.usageEventId),
    );

    // Same resource, dimension and hour, another minute and quantity: still the same event for the API.
    const again = await client.batchUsageEvent(events.map((e) => ({ ...e, quantity: 2, effectiveStartTime: new Date(Date.parse(e.effectiveStartTime) + 60_000).toISOString() })));
    assert.deepEqual(
      again,
      ids.map((usageEventId) => ({ kind: 'duplicate', status: 'Duplicate', usageEventId })),
    );
    for (const e of events) assert.equal(fake.acceptedCount(keyOf(e)), 1);

    // The single-event endpoint: 200 then 409 Conflict → duplicate with the same id.
    const single = usage({ effectiveStartTime: hoursAgo(5) });
    const one = await client.usageEvent(single);
    assert.equal(one.kind, 'accepted');
    const two = await client.usageEvent(single);
    assert.deepEqual(two, { kind: 'duplicate', status: 'Duplicate', usageEventId: one.kind === 'accepted' ? one.usageEventId : 'x' });
    assert.equal(fake.acceptedCount(keyOf(single)), 1);

    assert.equal(client.stats.tokenRequests, 1);
    assert.equal(client.stats.calls, 4);
    assert.equal(client.stats.retries, 0);
    assert.ok(client.stats.httpMs > 0);
  });

  test('an event older than 24 hours is expired, in a batch and alone, and nothing is recorded', async () => {
    const client = clientFor(fake);
    const old = usage({ effectiveStartTime: hoursAgo(25) });
    assert.deepEqual(await client.batchUsageEvent([old]), [{ kind: 'expired', status: 'Expired' }]);
    assert.deepEqual(await client.usageEvent(old), { kind: 'expired', status: 'Expired' });
    assert.equal(fake.acceptedCount(keyOf(old)), 0);
  });

  test('a bad dimension, quantity or resource is rejected; good events beside them are accepted', async () => {
    const client = clientFor(fake);
    const events = [
      usage(),
      usage({ dimension: 'gold_hours' }),
      usage({ quantity: 0 }),
      usage({ resourceUri: newResource('unknown') }),
      usage({ quantity: -3 }),
      usage(),
    ];
    const outcomes = await client.batchUsageEvent(events);
    assert.deepEqual(
      outcomes.map((o) => [o.kind, o.status]),
      [
        ['accepted', 'Accepted'],
        ['rejected', 'InvalidDimension'],
        ['rejected', 'InvalidQuantity'],
        ['rejected', 'ResourceNotFound'],
        ['rejected', 'InvalidQuantity'],
        ['accepted', 'Accepted'],
      ],
    );
    const bad = outcomes[1];
    assert.ok(bad.kind === 'rejected' && bad.message.includes('gold_hours'), JSON.stringify(bad));
    assert.equal(fake.acceptedCount(keyOf(events[1])), 0);
    assert.equal(fake.acceptedCount(keyOf(events[5])), 1);

    const alone = await client.usageEvent(usage({ dimension: 'gold_hours' }));
    assert.equal(alone.kind, 'rejected');
    assert.equal(alone.status, 'InvalidDimension');
  });

  test('more than 25 events throws before any request or token', async () => {
    const client = clientFor(fake);
    const before = { ...fake.counters };
    const events = Array.from({ length: 26 }, (_, i) => usage({ effectiveStartTime: hoursAgo(1 + (i % 20)) }));
    await assert.rejects(client.batchUsageEvent(events), RangeError);
    assert.equal(fake.counters.batchUsageEvent, before.batchUsageEvent);
    assert.equal(fake.counters.tokenRequests, before.tokenRequests);
    assert.equal(client.stats.calls, 0);
    assert.equal(client.stats.tokenRequests, 0);
    for (const e of events) assert.equal(fake.acceptedCount(keyOf(e)), 0);
  });

  test('429 with Retry-After: waits as told, then succeeds', { timeout: 30_000 }, async () => {
    const client = clientFor(fake);
    await client.batchUsageEvent([usage({ effectiveStartTime: hoursAgo(7) })]); // token fetched outside the timing
    fake.inject({ kind: 'throttle', retryAfterSeconds: 1 });
    const calls = fake.counters.batchUsageEvent;
    const event = usage();
    const started = performance.now();
    const [outcome] = await client.batchUsageEvent([event]);
    const elapsed = performance.now() - started;
    assert.equal(outcome.kind, 'accepted');
    assert.equal(fake.counters.batchUsageEvent - calls, 2);
    assert.equal(client.stats.retries, 1);
    assert.ok(client.stats.backoffMs >= 1000, `backoff ${client.stats.backoffMs} ms`);
    assert.ok(elapsed >= 990, `took ${elapsed} ms`);
    assert.equal(fake.acceptedCount(keyOf(event)), 1);
  });

  test('503 and 500, then success', { timeout: 30_000 }, async () => {
    const client = clientFor(fake);
    fake.inject({ kind: 'status', status: 503 }, { kind: 'status', status: 500 });
    const calls = fake.counters.batchUsageEvent;
    const event = usage();
    const [outcome] = await client.batchUsageEvent([event]);
    assert.equal(outcome.kind, 'accepted');
    assert.equal(fake.counters.batchUsageEvent - calls, 3);
    assert.equal(client.stats.retries, 2);
    assert.equal(fake.pendingFaults(), 0);
    assert.equal(fake.acceptedCount(keyOf(event)), 1);
  });

  test('a dropped connection, then success', { timeout: 30_000 }, async () => {
    const client = clientFor(fake);
    fake.inject({ kind: 'drop' });
    const event = usage();
    const [outcome] = await client.batchUsageEvent([event]);
    assert.equal(outcome.kind, 'accepted');
    assert.equal(client.stats.retries, 1);
    assert.equal(fake.pendingFaults(), 0);
    assert.equal(fake.acceptedCount(keyOf(event)), 1);
  });

  test('timeout after accept: the retry answers Duplicate with the recorded id, and the event is accepted as new once', { timeout: 30_000 }, async () => {
    const client = clientFor(fake, { timeoutMs: 400 });
    fake.inject({ kind: 'timeoutAfterAccept' });
    const events = [usage(), usage({ dimension: 'development_hours' })];
    const outcomes = await client.batchUsageEvent(events);
    const recorded = events.map((e) => fake.accepted().find((a) => a.key === keyOf(e))?.usageEventId);
    assert.ok(recorded.every((id) => typeof id === 'string'));
    assert.deepEqual(
      outcomes,
      recorded.map((usageEventId) => ({ kind: 'duplicate', status: 'Duplicate', usageEventId })),
    );
    for (const e of events) assert.equal(fake.acceptedCount(keyOf(e)), 1);
    assert.equal(client.stats.retries, 1);

    // The same through the single endpoint, with an answer that comes, but after the client gave up.
    fake.inject({ kind: 'timeoutAfterAccept', answerAfterMs: 1_500 });
    const single = usage();
    const outcome = await client.usageEvent(single);
    assert.equal(outcome.kind, 'duplicate');
    assert.equal(outcome.kind === 'duplicate' && outcome.usageEventId, fake.accepted().find((a) => a.key === keyOf(single))?.usageEventId);
    assert.equal(fake.acceptedCount(keyOf(single)), 1);
  });

  test('a per-event Error in a 200 batch is retry for that event only; sending again completes it', async () => {
    const client = clientFor(fake);
    fake.inject({ kind: 'eventError', indexes: [1] });
    const events = [usage(), usage(), usage()];
    const first = await client.batchUsageEvent(events);
    assert.deepEqual(
      first.map((o) => [o.kind, o.status]),
      [
        ['accepted', 'Accepted'],
        ['retry', 'Error'],
        ['accepted', 'Accepted'],
      ],
    );
    assert.equal(fake.acceptedCount(keyOf(events[1])), 0);
    const second = await client.batchUsageEvent(events);
    assert.deepEqual(
      second.map((o) => o.kind),
      ['duplicate', 'accepted', 'duplicate'],
    );
    for (const e of events) assert.equal(fake.acceptedCount(keyOf(e)), 1);
  });

  test('attempts exhausted: every event is retry, nothing recorded', async () => {
    const client = clientFor(fake, { maxAttempts: 3 });
    fake.inject({ kind: 'status', status: 503 }, { kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    const events = [usage(), usage()];
    const outcomes = await client.batchUsageEvent(events);
    for (const o of outcomes) {
      assert.equal(o.kind, 'retry');
      assert.equal(o.status, CALL_FAILED);
      assert.match(o.kind === 'retry' ? o.message : '', /HTTP 503.*3 attempts/);
    }
    assert.equal(client.stats.calls, 3);
    assert.equal(fake.pendingFaults(), 0);
    for (const e of events) assert.equal(fake.acceptedCount(keyOf(e)), 0);
  });

  test('timeouts every attempt: retry outcomes naming the timeout', { timeout: 30_000 }, async () => {
    const client = clientFor(fake, { maxAttempts: 2, timeoutMs: 200 });
    fake.inject({ kind: 'timeoutAfterAccept' }, { kind: 'timeoutAfterAccept' });
    const event = usage();
    const [outcome] = await client.batchUsageEvent([event]);
    assert.equal(outcome.kind, 'retry');
    assert.match(outcome.kind === 'retry' ? outcome.message : '', /timed out/);
    // The first attempt was recorded; the second saw a Duplicate it never got to read.
    assert.equal(fake.acceptedCount(keyOf(event)), 1);
  });

  test('a bad client secret: a clear MeteringAuthError without the secret, and no metering request', async () => {
    const secret = `wrong-${randomUUID()}`;
    const client = clientFor(fake, { credential: fake.credential(secret) });
    const calls = fake.counters.batchUsageEvent;
    await assert.rejects(client.batchUsageEvent([usage()]), (err: unknown) => {
      assert.ok(err instanceof MeteringAuthError);
      assert.match(err.message, /AADSTS7000215/);
      assert.match(err.message, /Invalid client secret/);
      assert.ok(!err.message.includes(secret), 'the secret must not appear in the error');
      assert.ok(!String(err.stack).includes(secret));
      return true;
    });
    assert.equal(fake.counters.batchUsageEvent, calls);
  });

  test('a token the API refuses: one fresh try, then MeteringAuthError without the token', async () => {
    const forged = 'eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl';
    let asked = 0;
    const credential: TokenCredential = {
      getToken: async (): Promise<AccessToken> => {
        asked++;
        return { token: forged, expiresOnTimestamp: Date.now() + 3_600_000 };
      },
    };
    const client = clientFor(fake, { credential });
    const refused = fake.counters.unauthorized;
    await assert.rejects(client.batchUsageEvent([usage()]), (err: unknown) => {
      assert.ok(err instanceof MeteringAuthError);
      assert.equal(err.status, 401);
      assert.ok(!err.message.includes(forged));
      return true;
    });
    assert.equal(fake.counters.unauthorized - refused, 2);
    assert.equal(asked, 2);
  });

  test('the bearer token never appears in outcome messages, even when the server echoes it', async () => {
    const token = 'eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ0ZXN0In0.secret-signature';
    const credential: TokenCredential = { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const echoing: typeof fetch = async (_url, init) => {
      const auth = new Headers(init?.headers).get('authorization') ?? '';
      return new Response(JSON.stringify({ code: 'BadArgument', message: `refused ${auth}`, details: [{ code: 'BadArgument', message: `token was ${token}` }] }), { status: 400 });
    };
    const client = new MeteringClient({ baseUrl: 'https://metering.invalid', credential, fetch: echoing });
    const [outcome] = await client.batchUsageEvent([usage()]);
    assert.equal(outcome.kind, 'rejected');
    const message = outcome.kind === 'rejected' ? outcome.message : '';
    assert.match(message, /refused Bearer \[redacted\]/);
    assert.ok(!message.includes(token) && !message.includes('secret-signature'), message);
  });
});

describe('the fake metering API itself', () => {
  let fake: FakeMetering;
  let token: string;
  before(async () => {
    fake = await fakeMetering({ shuffleResults: true, seed: 3 });
    token = (await fake.credential().getToken(METERING_SCOPE))!.token;
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${fake.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  test('without a valid bearer token it answers 401 and records nothing', async () => {
    const body = { request: [usage()] };
    const none = await post('/api/batchUsageEvent?api-version=2018-08-31', body);
    assert.equal(none.status, 401);
    const [head, claims] = token.split('.');
    const forged = await post('/api/batchUsageEvent?api-version=2018-08-31', body, { authorization: `Bearer ${head}.${claims}.AAAA` });
    assert.equal(forged.status, 401);
    const single = await post('/api/usageEvent?api-version=2018-08-31', body.request[0]);
    assert.equal(single.status, 401);
    assert.equal(fake.accepted().length, 0);
  });

  test('api-version is required; a batch over 25 events is a 400 for the whole request', async () => {
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await post('/api/batchUsageEvent', { request: [usage()] }, auth)).status, 400);
    const big = await post('/api/batchUsageEvent?api-version=2018-08-31', { request: Array.from({ length: 26 }, () => usage()) }, auth);
    assert.equal(big.status, 400);
    const error = (await big.json()) as { code: string; details: Array<{ message: string }> };
    assert.equal(error.code, 'BadArgument');
    assert.match(error.details[0].message, /more than 25/);
    const broken = await fetch(`${fake.url}/api/batchUsageEvent?api-version=2018-08-31`, { method: 'POST', headers: auth, body: '{"request": [' });
    assert.equal(broken.status, 400);
    assert.equal(fake.accepted().length, 0);
  });

  test('answers per event with a count, in shuffled order that the client still matches by key', async () => {
    const events = Array.from({ length: 8 }, (_, i) => usage({ effectiveStartTime: hoursAgo(1 + i) }));
    const raw = await post('/api/batchUsageEvent?api-version=2018-08-31', { request: events }, { authorization: `Bearer ${token}` });
    assert.equal(raw.status, 200);
    const body = (await raw.json()) as { count: number; result: Array<{ status: string; usageEventId: string; resourceUri: string; messageTime: string }> };
    assert.equal(body.count, 8);
    assert.ok(body.result.every((r) => r.status === 'Accepted' && r.usageEventId && r.messageTime === new Date(NOW).toISOString()));
    assert.notDeepEqual(
      body.result.map((r) => r.resourceUri),
      events.map((e) => e.resourceUri),
      'the fake should have shuffled the results',
    );

    const client = clientFor(fake);
    const again = [usage({ dimension: 'gold_hours' }), events[0], usage(), events[7], usage({ quantity: 0 })];
    const outcomes = await client.batchUsageEvent(again);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['InvalidDimension', 'Duplicate', 'Accepted', 'Duplicate', 'InvalidQuantity'],
    );
    const byResource = new Map(body.result.map((r) => [r.resourceUri, r.usageEventId]));
    assert.equal(outcomes[1].kind === 'duplicate' && outcomes[1].usageEventId, byResource.get(events[0].resourceUri!));
    assert.equal(outcomes[3].kind === 'duplicate' && outcomes[3].usageEventId, byResource.get(events[7].resourceUri!));
  });
});

describe('under seeded random faults', () => {
  test('every event ends up billed, and no (resource, dimension, hour) is ever accepted as new twice', { timeout: 120_000 }, async () => {
    const fake = await fakeMetering({
      faultRates: { seed: 42, serverError: 0.1, unavailable: 0.1, throttle: 0.1, retryAfterSeconds: 0, drop: 0.1, timeoutAfterAccept: 0.05, eventError: 0.1 },
    });
    const client = clientFor(fake, { timeoutMs: 250, maxAttempts: 3 });
    const resources = Array.from({ length: 20 }, () => newResource());
    const events = resources.flatMap((resourceUri) => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((h) => usage({ resourceUri, effectiveStartTime: hoursAgo(h) })));
    const billed = new Map<string, string | null>();
    let pending = events;
    for (let round = 0; pending.length > 0; round++) {
      assert.ok(round < 30, `${pending.length} events still unbilled after 30 rounds`);
      const next: UsageEvent[] = [];
      for (let i = 0; i < pending.length; i += 5) {
        const batch = pending.slice(i, i + 5);
        const outcomes = await client.batchUsageEvent(batch);
        outcomes.forEach((o, j) => {
          if (o.kind === 'accepted' || o.kind === 'duplicate') billed.set(keyOf(batch[j]), o.usageEventId);
          else if (o.kind === 'retry') next.push(batch[j]);
          else assert.fail(`unexpected ${o.kind} ${o.status} for ${keyOf(batch[j])}`);
        });
      }
      pending = next;
    }
    assert.ok(fake.counters.faults >= 20, `only ${fake.counters.faults} faults were drawn`);
    assert.ok(client.stats.retries > 0);
    assert.equal(billed.size, events.length);
    for (const e of events) {
      assert.equal(fake.acceptedCount(keyOf(e)), 1, keyOf(e));
      assert.equal(billed.get(keyOf(e)), fake.accepted().find((a) => a.key === keyOf(e))!.usageEventId);
    }
    assert.ok([...fake.acceptedCounts().values()].every((n) => n === 1));
  });
});

describe('listUsageEvents', () => {
  test('returns what was accepted, per resource, dimension and day, plus what was there before', async () => {
    const fake = await fakeMetering();
    const client = clientFor(fake);
    const a = newResource();
    const b = newResource();
    const outcomes = await client.batchUsageEvent([
      usage({ resourceUri: a, quantity: 1, effectiveStartTime: hoursAgo(2) }),
      usage({ resourceUri: a, quantity: 0.5, effectiveStartTime: hoursAgo(1) }),
      usage({ resourceUri: b, quantity: 1, effectiveStartTime: hoursAgo(1) }),
      usage({ resourceUri: b, quantity: 1, dimension: 'nope_hours', effectiveStartTime: hoursAgo(1) }),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.kind),
      ['accepted', 'accepted', 'accepted', 'rejected'],
    );
    // An event the marketplace holds that we never sent (reconciliation's "extra").
    fake.injectAccepted([{ resourceUri: b, quantity: 4, dimension: 'plus_hours', effectiveStartTime: hoursAgo(1), planId: PLAN }]);

    const window = { from: new Date(NOW - 24 * 3_600_000), to: new Date(NOW) };
    const all = await client.listUsageEvents(window);
    const summary = (r: string, d: string) => all.filter((e) => e.usageResourceId === r && e.dimension === d);
    // Both of a's hours fall on one UTC day unless the day turned in between.
    const aRows = summary(a, DIMENSION);
    assert.equal(
      aRows.reduce((s, e) => s + e.submittedQuantity, 0),
      1.5,
    );
    assert.equal(
      aRows.reduce((s, e) => s + e.submittedCount, 0),
      2,
    );
    assert.deepEqual(
      summary(b, DIMENSION).map((e) => [e.submittedQuantity, e.submittedCount, e.planId, e.reconStatus, e.azureSubscriptionId]),
      [[1, 1, PLAN, 'Accepted', subscriptionId]],
    );
    assert.deepEqual(
      summary(b, 'plus_hours').map((e) => e.submittedQuantity),
      [4],
    );
    assert.equal(summary(b, 'nope_hours').length, 0);
    for (const e of all) assert.match(e.usageDate, /T00:00:00\.000Z$/);

    const onlyA = await client.listUsageEvents({ ...window, resourceUri: a.toUpperCase() });
    assert.ok(onlyA.length >= 1 && onlyA.every((e) => e.usageResourceId === a));
    const earlier = await client.listUsageEvents({ from: new Date(NOW - 72 * 3_600_000), to: new Date(NOW - 48 * 3_600_000) });
    assert.deepEqual(earlier, []);
  });
});
