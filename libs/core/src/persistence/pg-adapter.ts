import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';

const PG_NAME_OID = 19;
const PG_TEXT_OID = 25;

type QueryResultLike = { fields?: { dataTypeID: number }[] } | { fields?: { dataTypeID: number }[] }[];

/**
 * prisma/orm#27403: the pg adapter rejects catalog columns of type `name`
 * (oid 19), which `migrate deploy` reads. Reporting them as `text` is exact for
 * our purposes (a `name` is a short string).
 */
function rewriteNameColumns(result: unknown): void {
  const results = (Array.isArray(result) ? result : [result]) as QueryResultLike[];
  for (const r of results) {
    const fields = (r as { fields?: { dataTypeID: number }[] } | null)?.fields;
    if (!fields) continue;
    for (const f of fields) if (f.dataTypeID === PG_NAME_OID) f.dataTypeID = PG_TEXT_OID;
  }
}

class NameAsTextClient extends pg.Client {
  // Both forms of query() are used: the pool calls the callback form.
  override query(...args: unknown[]): never {
    const last = args[args.length - 1];
    if (typeof last === 'function') {
      const cb = last as (err: Error | null, res: unknown) => void;
      args[args.length - 1] = (err: Error | null, res: unknown) => {
        if (!err) rewriteNameColumns(res);
        cb(err, res);
      };
      return (super.query as (...a: unknown[]) => never)(...args);
    }
    const out = (super.query as (...a: unknown[]) => unknown)(...args);
    if (out && typeof (out as Promise<unknown>).then === 'function') {
      return (out as Promise<unknown>).then((res) => {
        rewriteNameColumns(res);
        return res;
      }) as never;
    }
    return out as never;
  }
}

export interface PgAdapterOptions {
  max?: number;
  idleTimeoutMillis?: number;
}

export function createPgPool(databaseUrl: string, options: PgAdapterOptions = {}): pg.Pool {
  return new pg.Pool({
    connectionString: databaseUrl,
    max: options.max ?? 10,
    // Let short-lived commands (prisma migrate) exit without waiting for idle clients to time out.
    allowExitOnIdle: true,
    idleTimeoutMillis: options.idleTimeoutMillis ?? 10_000,
    Client: NameAsTextClient as unknown as typeof pg.Client,
  });
}

export function createPgAdapter(databaseUrl: string, options: PgAdapterOptions = {}): PrismaPg {
  return new PrismaPg(createPgPool(databaseUrl, options));
}
