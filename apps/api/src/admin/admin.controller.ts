import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ClusterRepository, ROLES, ValidationError } from '../../../../libs/core/src';
import { AnyRole, Caller, type Principal } from '../auth/principal';
import { WavesService } from './waves.service';
import { clusterView } from '../clusters/views';

const FILTERS = ['state', 'version', 'health', 'region'] as const;

/** SRE views across all tenants. Customers get 403. */
@ApiTags('admin')
@ApiBearerAuth()
@Controller('v1/admin')
export class AdminController {
  constructor(private readonly clusters: ClusterRepository, private readonly waves: WavesService) {}

  @Get('clusters')
  @AnyRole(ROLES.sre)
  @ApiOperation({ summary: 'The whole fleet, all tenants; filter by state, version, health, region' })
  @ApiQuery({ name: 'state', required: false })
  @ApiQuery({ name: 'version', required: false })
  @ApiQuery({ name: 'health', required: false })
  @ApiQuery({ name: 'region', required: false })
  async fleet(@Query() query: Record<string, unknown>) {
    const unknown = Object.keys(query).filter((k) => !(FILTERS as readonly string[]).includes(k));
    if (unknown.length) throw new ValidationError('unknown_filter', `unknown filter(s): ${unknown.join(', ')}; use ${FILTERS.join(', ')}`, { allowed: FILTERS });
    const str = (k: string) => (typeof query[k] === 'string' && query[k] !== '' ? (query[k] as string) : undefined);
    const rows = await this.clusters.listFleet({ state: str('state'), consulVersion: str('version'), health: str('health'), region: str('region') });
    return { clusters: rows.map((c) => ({ ...clusterView(c), tenantId: c.tenantId })) };
  }

  @Post('waves')
  @HttpCode(202)
  @AnyRole(ROLES.sre)
  @ApiOperation({ summary: 'Start a maintenance wave: { action, selector, params?, canaries, maxInFlight, maxFailures }' })
  startWave(@Caller() caller: Principal, @Body() body: unknown) {
    return this.waves.start(caller, body);
  }

  @Get('waves/:id')
  @AnyRole(ROLES.sre)
  getWave(@Param('id') id: string) {
    return this.waves.get(id);
  }
}
