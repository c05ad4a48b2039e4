import type { Config } from '../../../libs/core/src';
import { FileUsageExporter, type UsageExporter } from '../../../libs/billing/src';

/** The exporter the configuration names. */
export function createUsageExporter(config: Config): UsageExporter {
  switch (config.BILLING_EXPORTER) {
    case 'file':
      return new FileUsageExporter(config.BILLING_EXPORT_DIR);
    case 'marketplace':
      throw new Error('the marketplace exporter is not wired yet');
  }
}
