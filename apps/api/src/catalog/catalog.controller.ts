import { Controller, Get, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { REGIONS, ROLES, TIERS, type Config } from '../../../../libs/core/src';
import { AnyRole } from '../auth/principal';
import { CONFIG } from '../tokens';
import { CURRENCY, PRICES, formatMicros } from '../../../../libs/billing/src';
import { Input } from '../validation/input';

/**
 * What a customer can choose from: for callers holding one of our roles. A token of the tenant
 * with no role of ours (any user of any Entra tenant can get one for a multi-tenant app) reads nothing.
 */
@ApiTags('catalog')
@ApiBearerAuth()
@AnyRole(ROLES.read, ROLES.write, ROLES.sre)
@Controller('v1')
export class CatalogController {
  constructor(@Inject(CONFIG) private readonly config: Config) {}

  @Get('regions')
  @Input({})
  regions() {
    return { regions: REGIONS };
  }

  @Get('versions')
  @Input({})
  versions() {
    return { versions: this.config.versions.map(({ version, status }) => ({ version, status })) };
  }

  @Get('tiers')
  @Input({})
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
