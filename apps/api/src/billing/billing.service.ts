import { Inject, Injectable } from '@nestjs/common';
import { ConflictError, UnavailableError, UsageRepository, ValidationError, type Config } from '../../../../libs/core/src';
import type { UsageView } from '../../../../libs/contracts/src';
import { CONFIG } from '../tokens';
import { formatCents, invoiceCsv, meteringClientFromConfig, monthRange, priceLines, reconcile, type MeteringClient, type PricedUsage } from '../../../../libs/billing/src';

const MAX_RANGE_MS = 366 * 24 * 3_600_000;

function usageView(from: Date, to: Date, priced: PricedUsage): UsageView {
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    currency: priced.currency,
    lines: priced.lines.map((l) => ({
      clusterId: l.clusterId,
      clusterName: l.clusterName,
      subscriptionId: l.subscriptionId,
      resourceGroup: l.resourceGroup,
      dimension: l.dimension,
      minutes: l.minutes,
      hours: l.hours,
      unitPrice: l.unitPrice,
      amount: l.amount,
    })),
    total: priced.total,
  };
}

/** Usage and invoices, read from usage records (what is billed is exactly what is shown). */
@Injectable()
export class BillingService {
  private readonly metering: MeteringClient | null;

  constructor(private readonly usage: UsageRepository, @Inject(CONFIG) config: Config) {
    this.metering = meteringClientFromConfig(config);
  }

  private range(query: { from?: Date; to?: Date }, now: Date) {
    const from = query.from ?? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const to = query.to ?? now;
    if (to.getTime() <= from.getTime()) throw new ValidationError('invalid_range', 'to must be after from', { from: from.toISOString(), to: to.toISOString() });
    if (to.getTime() - from.getTime() > MAX_RANGE_MS) throw new ValidationError('invalid_range', 'a query covers at most 366 days; narrow from/to');
    return { from, to };
  }

  /** SRE: our usage records for [from, to) against what the marketplace lists for the same period. */
  async reconciliation(query: { from?: Date; to?: Date }, now = new Date()) {
    const { from, to } = this.range(query, now);
    if (!this.metering) {
      throw new ConflictError('reconciliation_unavailable', 'reconciliation compares usage with the marketplace, and this deployment exports usage to files (BILLING_EXPORTER=file)');
    }
    const records = await this.usage.list({ from, to });
    let theirs;
    try {
      theirs = await this.metering.listUsageEvents({ from, to });
    } catch (e) {
      throw new UnavailableError('marketplace_unavailable', `the marketplace metering API could not be read: ${(e as Error).message}`);
    }
    return reconcile(from, to, records, theirs);
  }

  /** The tenant's usage for hours in [from, to); defaults to the current UTC month so far. */
  async usageFor(tenantId: string, query: { from?: Date; to?: Date }, now = new Date()): Promise<UsageView> {
    const { from, to } = this.range(query, now);
    const priced = priceLines(await this.usage.lines({ tenantId }, { from, to }));
    return usageView(from, to, priced);
  }

  private month(month: string) {
    // The contract took yyyy-mm only.
    return monthRange(month)!;
  }

  /** The tenant's invoice for a month as CSV: every subscription it has usage in, or the one asked for. */
  async invoiceFor(tenantId: string, month: string, subscriptionId?: string): Promise<string> {
    const { from, to } = this.month(month);
    const priced = priceLines(await this.usage.lines({ tenantId }, { from, to, subscriptionId }));
    const subs = subscriptionId ? [subscriptionId] : await this.usage.subscriptions({ tenantId }, from, to);
    return invoiceCsv(subs, priced);
  }

  /** SRE: every subscription's invoice for a month. */
  async allInvoices(month: string) {
    const { from, to } = this.month(month);
    const priced = priceLines(await this.usage.lines('fleet', { from, to }));
    const subs = await this.usage.subscriptions('fleet', from, to);
    return {
      month,
      currency: priced.currency,
      invoices: subs.map((s) => {
        const lines = priced.lines.filter((l) => l.subscriptionId === s);
        const total = lines.reduce((n, l) => n + l.amountCents, 0n);
        return { subscriptionId: s, lines: lines.length, total: formatCents(total), csv: invoiceCsv([s], priced) };
      }),
    };
  }
}
