import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { IdempotencyRepository, UnprocessableError } from '../../../libs/core/src';

/** The hash an Idempotency-Key is bound to: the route, its path and its body (a key is the tenant's, across routes). */
export function requestHash(route: string, ...parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify([route, ...parts])).digest('hex');
}

/**
 * A POST that queues an operation, made safe to send again: without a key, `write` runs. With
 * one, a key already used answers what it answered then (parsed with the route's own answer
 * schema; another request under the key is a 422), else `write` runs and records its answer
 * in its transaction; a request racing with the same key fails on the record (whatever error
 * `write` makes of that) and replays it.
 */
export async function idempotentRequest<T>(
  records: IdempotencyRepository, tenantId: string, key: string | undefined, hash: string, answer: z.ZodType<T>, write: () => Promise<T>,
): Promise<T> {
  if (!key) return write();
  const earlier = await replay(records, tenantId, key, hash, answer);
  if (earlier) return earlier;
  try {
    return await write();
  } catch (e) {
    const raced = await replay(records, tenantId, key, hash, answer);
    if (raced) return raced;
    throw e;
  }
}

async function replay<T>(records: IdempotencyRepository, tenantId: string, key: string, hash: string, answer: z.ZodType<T>): Promise<T | null> {
  const rec = await records.find(tenantId, key);
  if (!rec) return null;
  if (rec.requestHash !== hash) {
    throw new UnprocessableError('idempotency_key_reused', 'this Idempotency-Key was used with a different request; use a new key', { field: 'Idempotency-Key' });
  }
  // Written from this very answer's views when the key was first used: the route's contract reads it back.
  return answer.parse(rec.body);
}
