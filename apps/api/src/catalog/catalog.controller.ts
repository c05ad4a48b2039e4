import { Controller, Get, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { REGIONS, TIERS, type Config } from '../../../../libs/core/src';
import { CONFIG } from '../tokens';

/** What a customer can choose from. Any signed-in caller may read it. */
@ApiTags('catalog')
@ApiBearerAuth()
@Controller('v1')
export class CatalogController {
  constructor(@Inject(CONFIG) private readonly config: Config) {}

  @Get('regions')
  regions() {
    return { regions: REGIONS };
  }

  @Get('versions')
  versions() {
    return { versions: this.config.versions.map(({ version, status }) => ({ version, status })) };
  }

  @Get('tiers')
  tiers() {
    return { tiers: Object.values(TIERS) };
  }
}
