import type { UsageLine } from '../../core/src';
import { CURRENCY, formatCents, formatHours, formatMicros, lineAmountCents } from './prices';

export interface PricedLine {
  subscriptionId: string;
  resourceGroup: string;
  clusterId: string;
  clusterName: string;
  dimension: string;
  minutes: number;
  hours: string;
  unitPrice: string;
  amountCents: bigint;
  amount: string;
}

export interface PricedUsage {
  currency: string;
  lines: PricedLine[];
  totalCents: bigint;
  total: string;
}

/**
 * Prices usage lines: each line's amount is rounded to the cent once, and the
 * total is the sum of the lines, so an invoice adds up to the cent.
 */
export function priceLines(lines: readonly UsageLine[]): PricedUsage {
  let totalCents = 0n;
  const priced = lines.map<PricedLine>((l) => {
    const minutes = BigInt(l.minutes);
    const amountCents = lineAmountCents(minutes, BigInt(l.unitPriceMicros));
    totalCents += amountCents;
    return {
      subscriptionId: l.subscriptionId,
      resourceGroup: l.resourceGroup,
      clusterId: l.clusterId,
      clusterName: l.clusterName,
      dimension: l.dimension,
      minutes: Number(minutes),
      hours: formatHours(minutes),
      unitPrice: formatMicros(BigInt(l.unitPriceMicros)),
      amountCents,
      amount: formatCents(amountCents),
    };
  });
  return { currency: CURRENCY, lines: priced, totalCents, total: formatCents(totalCents) };
}

/** `yyyy-mm` → [first instant of the month, first instant of the next), UTC; null when not a month. */
export function monthRange(month: string): { from: Date; to: Date } | null {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]) - 1;
  return { from: new Date(Date.UTC(y, mo, 1)), to: new Date(Date.UTC(y, mo + 1, 1)) };
}

function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export const INVOICE_COLUMNS = ['subscription_id', 'cluster', 'cluster_id', 'resource_group', 'dimension', 'hours', 'unit_price', 'amount', 'currency'] as const;

/**
 * Invoices for a month as CSV: per subscription, a line per cluster, dimension
 * and price, then that subscription's TOTAL line (the sum of its lines' amounts).
 */
export function invoiceCsv(subscriptionIds: readonly string[], usage: PricedUsage): string {
  const rows: string[][] = [[...INVOICE_COLUMNS]];
  for (const sub of subscriptionIds) {
    const lines = usage.lines.filter((l) => l.subscriptionId === sub);
    for (const l of lines) rows.push([l.subscriptionId, l.clusterName, l.clusterId, l.resourceGroup, l.dimension, l.hours, l.unitPrice, l.amount, usage.currency]);
    const total = lines.reduce((s, l) => s + l.amountCents, 0n);
    rows.push([sub, 'TOTAL', '', '', '', '', '', formatCents(total), usage.currency]);
  }
  return rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}
