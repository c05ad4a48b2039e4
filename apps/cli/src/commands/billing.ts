import fs from 'node:fs';
import path from 'node:path';
import type { MonthInvoicesView, ReconciliationEntryView, ReconciliationView, UsageView } from '../../../../libs/contracts/src';
import type { OptionSpec, ParsedArgs } from '../args';
import { command, group } from '../command';
import type { Output } from '../output';
import { Unsuccessful } from '../watch';

const range: Readonly<Record<string, OptionSpec>> = {
  from: { type: 'string', value: 'DATE', description: 'the first hour counted: a date (2026-11-01) or a UTC date-time (2026-11-01T10:00:00Z); default: the start of this month' },
  to: { type: 'string', value: 'DATE', description: 'where the period ends (exclusive), a date or a UTC date-time; default: now' },
};

/** `?from=…&to=…` with what was given; the API checks the values and answers 400 with what to fix. */
function rangeQuery(a: ParsedArgs): string {
  const q = new URLSearchParams();
  for (const name of ['from', 'to']) {
    const v = a.string(name);
    if (v !== undefined) q.set(name, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The YYYY-MM positional, checked here so that a typo sends nothing and writes nothing. */
function monthOf(a: ParsedArgs): string {
  const month = a.positionals[0]!;
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) throw a.fail(`the month must be written YYYY-MM, e.g. 2026-11, not '${month}'`);
  return month;
}

/** Replaces `file` whole: a reader (or a cron job's next step) never sees half an invoice. */
function writeFileAtomic(file: string, text: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(temp, text);
    fs.renameSync(temp, file);
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw e;
  }
}

/** "1.30" → 130n; amounts from the API are decimal text with two places. */
function cents(amount: string): bigint {
  const m = /^(-?)(\d+)\.(\d{2})$/.exec(amount);
  if (!m) throw new Error(`the API answered an amount that is not decimal text with two places: ${JSON.stringify(amount)}`);
  const n = BigInt(m[2]!) * 100n + BigInt(m[3]!);
  return m[1] ? -n : n;
}

function formatCents(n: bigint): string {
  const abs = n < 0n ? -n : n;
  return `${n < 0n ? '-' : ''}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
}

/** The cells of one CSV row (RFC 4180 quoting). */
function csvCells(row: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < row.length; i++) {
    const ch = row[i]!;
    if (quoted) {
      if (ch === '"' && row[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else cell += ch;
  }
  cells.push(cell);
  return cells;
}

/** Each subscription's TOTAL line in an invoice CSV (columns: subscription_id, cluster, cluster_id, …, amount, currency). */
function invoiceTotals(csv: string): { subscriptionId: string; total: string; currency: string }[] {
  return csv
    .split(/\r?\n/)
    .slice(1)
    .map(csvCells)
    .filter((c) => c[1] === 'TOTAL' && c[2] === '')
    .map((c) => ({ subscriptionId: c[0]!, total: c[7] ?? '', currency: c[8] ?? '' }));
}

function printUsage(out: Output, u: UsageView): void {
  out.fields([
    ['From', u.from],
    ['To', u.to],
  ]);
  out.line();
  if (!u.lines.length) out.line('No usage in this period.');
  else {
    out.table(
      ['CLUSTER', 'DIMENSION', 'HOURS', `UNIT PRICE (${u.currency}/h)`, `AMOUNT (${u.currency})`],
      u.lines.map((l) => [l.clusterName, l.dimension, l.hours, l.unitPrice, l.amount]),
    );
  }
  out.line();
  out.line(`Total: ${u.total} ${u.currency}`);
}

const usage = command({
  name: 'usage',
  summary: "Your tenant's metered usage per cluster and billing dimension, with amounts (default: this month so far)",
  options: range,
  async run(ctx) {
    const u = await ctx.api().get<UsageView>(`/v1/billing/usage${rangeQuery(ctx.args)}`);
    ctx.output.result(u, () => printUsage(ctx.output, u));
  },
});

const invoice = command({
  name: 'invoice',
  summary: "Your tenant's invoice for a month as CSV (a line per cluster and dimension, a TOTAL line per subscription), on stdout as is (even with --json) or to --out FILE",
  positionals: ['YYYY-MM'],
  options: {
    subscription: { type: 'string', value: 'ID', description: 'only this subscription (default: every subscription with usage that month)' },
    out: { type: 'string', value: 'FILE', description: "write the CSV to FILE (replaced whole) and print each subscription's total; --json prints them as { month, file, subscriptions }" },
  },
  async run(ctx) {
    const a = ctx.args;
    const month = monthOf(a);
    const subscription = a.string('subscription');
    if (subscription === '') throw a.fail('--subscription must not be empty');
    const out = a.string('out');
    if (out === '') throw a.fail('--out must name a file');
    const file = out === undefined ? undefined : path.resolve(out);
    if (out !== undefined && file !== undefined && fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
      throw a.fail(`--out ${out} is a folder; name a file, e.g. ${path.join(out, `invoice-${month}.csv`)}`);
    }
    const query = subscription === undefined ? '' : `?${new URLSearchParams({ subscriptionId: subscription })}`;
    const csv = await ctx.api().getText(`/v1/billing/invoices/${month}${query}`);
    if (file === undefined) {
      ctx.io.stdout.write(csv);
      return;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file, csv);
    const totals = invoiceTotals(csv);
    ctx.output.result({ month, file, subscriptions: totals }, () => {
      ctx.output.line(`Wrote the ${month} invoice to ${file}.`);
      if (!totals.length) return ctx.output.line('No usage that month.');
      ctx.output.table(['SUBSCRIPTION', 'TOTAL'], totals.map((t) => [t.subscriptionId, `${t.total} ${t.currency}`]));
    });
  },
});

export const billing = group('billing', "Your tenant's metered usage and monthly invoices", [usage, invoice]);

// A subscription id becomes a file name: nothing that could climb out of the folder.
const FILE_NAME = /^[0-9A-Za-z][0-9A-Za-z_-]*$/;

const invoices = command({
  name: 'invoices',
  summary: "Write every subscription's invoice for a month to DIR/YYYY-MM/<subscription>.csv and show their totals",
  positionals: ['YYYY-MM'],
  options: { out: { type: 'string', value: 'DIR', required: true, description: 'the folder to write into (created if missing); the files go in DIR/YYYY-MM/' } },
  async run(ctx) {
    const month = monthOf(ctx.args);
    const out = ctx.args.required('out');
    if (out === '') throw ctx.args.fail('--out must name a folder');
    const body = await ctx.api().get<MonthInvoicesView>(`/v1/admin/billing/invoices/${month}`);
    const bad = body.invoices.find((i) => !FILE_NAME.test(i.subscriptionId));
    if (bad) throw new Error(`the API listed a subscription id that cannot be a file name: ${JSON.stringify(bad.subscriptionId)}; nothing written`);
    const dir = path.join(path.resolve(out), month);
    fs.mkdirSync(dir, { recursive: true });
    const written = body.invoices.map((i) => {
      const file = path.join(dir, `${i.subscriptionId}.csv`);
      writeFileAtomic(file, i.csv);
      return { ...i, file };
    });
    const total = formatCents(written.reduce((n, i) => n + cents(i.total), 0n));
    ctx.output.result({ ...body, directory: dir, invoices: written, total }, () => {
      if (!written.length) return ctx.output.line(`No usage in ${month}: no invoices to write (${dir} is empty).`);
      ctx.output.table(['SUBSCRIPTION', 'LINES', 'TOTAL', 'FILE'], written.map((i) => [i.subscriptionId, i.lines, `${i.total} ${body.currency}`, i.file]));
      ctx.output.line();
      ctx.output.line(`Wrote ${written.length} invoice${written.length === 1 ? '' : 's'} for ${month} to ${dir}; together ${total} ${body.currency}.`);
    });
  },
});

function printReconciliation(out: Output, r: ReconciliationView): void {
  const unbilled = Object.entries(r.unbilled).filter(([, n]) => n > 0);
  out.fields([
    ['From', r.from],
    ['To', r.to],
    ['Compared', `${r.compared.ours} ours, ${r.compared.theirs} the marketplace's (resource, dimension, day) groups`],
    ['Matched', r.matched],
    ['Missing', `${r.missing.length} (accepted by us, not listed by the marketplace)`],
    ['Extra', `${r.extra.length} (listed by the marketplace, never accepted by us)`],
    ['Mismatched', `${r.mismatched.length} (different quantities)`],
    ['Unbilled', unbilled.length ? unbilled.map(([state, n]) => `${state} ${n}`).join(', ') : 'none'],
  ]);
  const rows = (kind: string, entries: readonly ReconciliationEntryView[]) => entries.map((e) => [kind, e.day, e.dimension, e.ours, e.theirs, e.resourceId] as const);
  const differences = [...rows('missing', r.missing), ...rows('extra', r.extra), ...rows('mismatched', r.mismatched)];
  if (!differences.length) return;
  out.line();
  out.table(['DIFFERENCE', 'DAY', 'DIMENSION', 'OURS (h)', 'THEIRS (h)', 'RESOURCE'], differences);
}

const reconcile = command({
  name: 'reconcile',
  summary: 'Compare our usage records with what the marketplace lists; exits 1 when anything is missing, extra or mismatched',
  options: range,
  async run(ctx) {
    const r = await ctx.api().get<ReconciliationView>(`/v1/admin/billing/reconciliation${rangeQuery(ctx.args)}`);
    const differences = r.missing.length + r.extra.length + r.mismatched.length;
    if (differences) {
      if (!ctx.output.json) printReconciliation(ctx.output, r);
      throw new Unsuccessful(`reconciliation found ${differences} difference${differences === 1 ? '' : 's'}: ${r.missing.length} missing, ${r.extra.length} extra, ${r.mismatched.length} mismatched`, r);
    }
    ctx.output.result(r, () => printReconciliation(ctx.output, r));
  },
});

export const adminBilling = group('billing', "Every subscription's invoices, and our usage reconciled with the marketplace", [invoices, reconcile]);
