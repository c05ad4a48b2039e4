import { z } from 'zod';
import { instant } from './fields';
import { ROLE, params, query, route } from './route';

const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;
/** A date (2026-11-01, midnight UTC) or a UTC date-time, as a query parameter given once. */
const instantQuery = (field: string) =>
  z.string({ error: `${field} must be a date (2026-11-01) or a UTC date-time (2026-11-01T10:00:00Z), given once` })
    .refine((v) => v === '' || (INSTANT.test(v) && !Number.isNaN(Date.parse(v))), `${field} must be a date (2026-11-01) or a UTC date-time (2026-11-01T10:00:00Z)`)
    .transform((v) => (v === '' ? undefined : new Date(v.length === 10 ? `${v}T00:00:00Z` : v)))
    .optional()
    .meta({ description: 'A date (2026-11-01) or UTC date-time' });
const RANGE = query({ from: instantQuery('from'), to: instantQuery('to') });
const MONTH = params({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'the month must be written yyyy-mm, e.g. 2026-11').meta({ example: '2026-11' }) });

export const USAGE = z.strictObject({
  from: instant,
  to: instant,
  currency: z.string(),
  lines: z.array(z.strictObject({
    clusterId: z.string(), clusterName: z.string(), subscriptionId: z.string(), resourceGroup: z.string(), dimension: z.string(),
    minutes: z.number().int(), hours: z.string(), unitPrice: z.string(), amount: z.string(),
  })),
  total: z.string(),
}).meta({ id: 'Usage' });
export type UsageView = z.output<typeof USAGE>;

const ENTRY = z.strictObject({ resourceId: z.string(), dimension: z.string(), day: z.string(), ours: z.number(), theirs: z.number() });
export const RECONCILIATION = z.strictObject({
  from: instant, to: instant, compared: z.strictObject({ ours: z.number(), theirs: z.number() }), matched: z.number(),
  missing: z.array(ENTRY), extra: z.array(ENTRY), mismatched: z.array(ENTRY), unbilled: z.record(z.string(), z.number()),
}).meta({ id: 'Reconciliation' });
export type ReconciliationView = z.output<typeof RECONCILIATION>;
export type ReconciliationEntryView = ReconciliationView['missing'][number];
export const MONTH_INVOICES = z.strictObject({
  month: z.string(), currency: z.string(),
  invoices: z.array(z.strictObject({ subscriptionId: z.string(), lines: z.number().int(), total: z.string(), csv: z.string() })),
});
export type MonthInvoicesView = z.output<typeof MONTH_INVOICES>;

export const BILLING_ROUTES = {
  usage: route({
    id: 'usage', method: 'GET', path: '/v1/billing/usage', tag: 'billing', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: "The tenant's metered usage per cluster and dimension for hours in [from, to) (default: this month so far), with amounts", query: RANGE, answers: { 200: USAGE },
  }),
  invoice: route({
    id: 'invoice', method: 'GET', path: '/v1/billing/invoices/{month}', tag: 'billing', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: "The tenant's invoice for a month (yyyy-mm) as CSV, per subscription, with totals", params: MONTH,
    query: query({
      subscriptionId: z.string({ error: 'subscriptionId is given once' }).regex(/^([0-9a-fA-F-]{36})?$/, 'subscriptionId must be a subscription GUID').optional(),
    }),
    answers: { 200: { text: 'text/csv' } },
  }),
  reconciliation: route({
    id: 'reconciliation', method: 'GET', path: '/v1/admin/billing/reconciliation', tag: 'billing', auth: 'bearer', roles: [ROLE.sre],
    summary: 'SRE: our usage records for [from, to) against the marketplace: missing, extra and mismatched (resource, dimension, day) groups', query: RANGE,
    answers: { 200: RECONCILIATION },
  }),
  allInvoices: route({
    id: 'allInvoices', method: 'GET', path: '/v1/admin/billing/invoices/{month}', tag: 'billing', auth: 'bearer', roles: [ROLE.sre],
    summary: "SRE: every subscription's invoice for a month (CSV text per subscription)", params: MONTH,
    answers: { 200: MONTH_INVOICES },
  }),
};
