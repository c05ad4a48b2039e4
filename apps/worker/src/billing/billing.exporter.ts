import type { Config } from '../../../../libs/core/src';
import { FileUsageExporter, MarketplaceUsageExporter, meteringClientFromConfig, type UsageExporter } from '../../../../libs/billing/src';

/** The exporter the configuration names. */
export function createUsageExporter(config: Config): UsageExporter {
  const client = meteringClientFromConfig(config);
  return client ? new MarketplaceUsageExporter(client) : new FileUsageExporter(config.BILLING_EXPORT_DIR);
}
