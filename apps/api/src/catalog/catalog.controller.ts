import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { REGIONS, TIERS, VERSIONS } from '../../../../libs/core/src';

/** What a customer can choose from. Any signed-in caller may read it. */
@ApiTags('catalog')
@ApiBearerAuth()
@Controller('v1')
export class CatalogController {
  @Get('regions')
  regions() {
    return { regions: REGIONS };
  }

  @Get('versions')
  versions() {
    return { versions: VERSIONS.map(({ version, status }) => ({ version, status })) };
  }

  @Get('tiers')
  tiers() {
    return { tiers: Object.values(TIERS) };
  }
}
