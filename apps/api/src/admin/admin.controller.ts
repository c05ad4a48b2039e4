import { ROUTES, type AnswerOf, type BodyOf, type QueryOf } from '../../../../libs/contracts/src';
import { Body, Controller, Param, Query } from '@nestjs/common';
import { FleetRepository, ManagedAppNotificationRepository, type ApplicationFailure } from '../../../../libs/core/src';
import { Caller, type Principal } from '../auth/principal';
import { WavesService } from './waves.service';
import { clusterView } from '../clusters/views';
import { Route } from '../validation/input';

/** SRE views across all tenants. Customers get 403. */
@Controller()
export class AdminController {
  constructor(private readonly clusters: FleetRepository, private readonly waves: WavesService, private readonly notifications: ManagedAppNotificationRepository) {}

  @Route(ROUTES.fleet)
  async fleet(@Query() query: QueryOf<typeof ROUTES.fleet>): Promise<AnswerOf<typeof ROUTES.fleet>> {
    const str = (k: keyof typeof query) => query[k] || undefined;
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

  @Route(ROUTES.startWave)
  startWave(@Caller() caller: Principal, @Body() body: BodyOf<typeof ROUTES.startWave>) {
    return this.waves.start(caller, body);
  }

  @Route(ROUTES.getWave)
  getWave(@Param('id') id: string) {
    return this.waves.get(id);
  }
}

function failureView(f: ApplicationFailure | undefined) {
  if (!f) return null;
  return { eventType: f.eventType, provisioningState: f.provisioningState, outcome: f.outcome, reason: f.reason, error: f.error ?? null, eventTime: new Date(f.eventTime).toISOString() };
}
