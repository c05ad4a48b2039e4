import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { FleetRepository, ManagedAppNotificationRepository, ROLES, ValidationError, type ApplicationFailure } from '../../../../libs/core/src';
import { AnyRole, Caller, type Principal } from '../auth/principal';
import { WavesService } from './waves.service';
import { clusterView } from '../clusters/views';
import { Input, body, params, query, uuid } from '../validation/input';
import { z } from 'zod';

const FILTERS = ['state', 'version', 'health', 'region'] as const;

const FILTER = z.string({ error: 'a filter is given once, as text' }).optional();
const count = (field: string) => z.number({ error: `${field} must be a whole number` }).int(`${field} must be a whole number`).optional();
const WAVE_BODY = body({
  action: z.string({ error: 'action must be a string' }).nullish(),
  selector: z.strictObject({
    state: z.string().optional(), version: z.string().optional(), health: z.string().optional(), region: z.string().optional(),
    clusterIds: z.array(uuid('selector.clusterIds[]')).max(10_000).optional(),
  }, { error: (i) => (i.code === 'invalid_type' ? 'selector must be an object' : undefined) }).optional(),
  params: z.strictObject({ consulVersion: z.string().optional() }).optional(),
  canaries: count('canaries'), maxInFlight: count('maxInFlight'), maxFailures: count('maxFailures'),
});

/** SRE views across all tenants. Customers get 403. */
@ApiTags('admin')
@ApiBearerAuth()
@Controller('v1/admin')
export class AdminController {
  constructor(private readonly clusters: FleetRepository, private readonly waves: WavesService, private readonly notifications: ManagedAppNotificationRepository) {}

  @Get('clusters')
  @AnyRole(ROLES.sre)
  @Input({ query: query({ state: FILTER, version: FILTER, health: FILTER, region: FILTER }) })
  @ApiOperation({ summary: 'The whole fleet, all tenants; filter by state, version, health, region' })
  @ApiQuery({ name: 'state', required: false })
  @ApiQuery({ name: 'version', required: false })
  @ApiQuery({ name: 'health', required: false })
  @ApiQuery({ name: 'region', required: false })
  async fleet(@Query() query: Record<string, unknown>) {
    const unknown = Object.keys(query).filter((k) => !(FILTERS as readonly string[]).includes(k));
    if (unknown.length) throw new ValidationError('unknown_filter', `unknown filter(s): ${unknown.join(', ')}; use ${FILTERS.join(', ')}`, { allowed: FILTERS });
    const str = (k: string) => (typeof query[k] === 'string' && query[k] !== '' ? (query[k] as string) : undefined);
    const [rows, failures] = await Promise.all([
      this.clusters.listFleet({ state: str('state'), consulVersion: str('version'), health: str('health'), region: str('region') }),
      this.notifications.latestFailures(),
    ]);
    const failed = new Map(failures.map((f) => [f.applicationId, f]));
    const listed = new Set(rows.map((c) => c.managedApplicationId).filter((a): a is string => a !== null));
    return {
      clusters: rows.map((c) => ({
        ...clusterView(c),
        tenantId: c.tenantId,
        managedApplication: c.managedApplicationId
          ? { id: c.managedApplicationId, managedResourceGroupId: c.managedResourceGroupId, failed: failureView(failed.get(c.managedApplicationId)) }
          : null,
      })),
      // Managed applications that failed (or whose settings were refused) and have no cluster on this list.
      failedApplications: failures.filter((f) => !listed.has(f.applicationId)).map((f) => ({ id: f.applicationId, clusterId: f.clusterId, ...failureView(f)! })),
    };
  }

  @Post('waves')
  @Input({ body: WAVE_BODY })
  @HttpCode(202)
  @AnyRole(ROLES.sre)
  @ApiOperation({ summary: 'Start a maintenance wave: { action, selector, params?, canaries, maxInFlight, maxFailures }' })
  startWave(@Caller() caller: Principal, @Body() body: unknown) {
    return this.waves.start(caller, body);
  }

  @Get('waves/:id')
  @AnyRole(ROLES.sre)
  @Input({ params: params({ id: uuid('the wave id') }) })
  getWave(@Param('id') id: string) {
    return this.waves.get(id);
  }
}

function failureView(f: ApplicationFailure | undefined) {
  if (!f) return null;
  return { eventType: f.eventType, provisioningState: f.provisioningState, outcome: f.outcome, reason: f.reason, error: f.error ?? null, eventTime: new Date(f.eventTime).toISOString() };
}
