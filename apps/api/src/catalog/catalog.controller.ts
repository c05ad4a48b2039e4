import { ROUTES } from '../../../../libs/contracts/src';
import { Controller, Inject } from '@nestjs/common';
import { REGIONS, TIERS, type Config } from '../../../../libs/core/src';
import { CONFIG } from '../tokens';
import { CURRENCY, PRICES, formatMicros } from '../../../../libs/billing/src';
import { Route } from '../validation/input';

/**
 * What a customer can choose from: for callers holding one of our roles. A token of the tenant
 * with no role of ours (any user of any Entra tenant can get one for a multi-tenant app) reads nothing.
 */
@Controller()
export class CatalogController {
  constructor(@Inject(CONFIG) private readonly config: Config) {}

  @Route(ROUTES.regions)
  regions() {
    return { regions: REGIONS };
  }

  @Route(ROUTES.versions)
  versions() {
    return { versions: this.config.versions.map(({ version, status }) => ({ version, status })) };
  }

  @Route(ROUTES.tiers)
  tiers() {
    // Pay as you go: one billing dimension per tier, billed per hour by the minute.
    return {
      planId: this.config.BILLING_PLAN_ID,
      currency: CURRENCY,
      tiers: Object.values(TIERS).map((t) => {
        const price = PRICES.find((p) => p.tier === t.name)!;
        return { ...t, billing: { dimension: price.dimension, unitOfMeasure: price.unitOfMeasure, pricePerHour: formatMicros(price.pricePerHourMicros), currency: CURRENCY } };
      }),
    };
  }
}
