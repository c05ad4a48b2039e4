import { createHash, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  TenantClusterRepository, ConflictError, FederationRepository, ForbiddenError, UnprocessableError, UnavailableError, ManagedAppNotificationRepository, NotFoundError, TIER_NAMES, UnauthenticatedError,
  VNET_CIDR, VNET_CIDR_RULE, DEFAULT_VNET_CIDR, ValidationError, isUniqueViolation, isUuid, type Cluster, type Config, type NewNotification, type TierName,
} from '../../../../libs/core/src';
import { OperationDispatcher } from '../operation.dispatcher';
import { CONFIG } from '../tokens';
import { createClusterBody, type CreateClusterCommand } from '../../../../libs/contracts/src';
import { serverCountFor } from '../clusters/clusters.service';
import { catalogOf, parseInput } from '../validation/input';
import type { ManagedApplication, ManagedApplications } from './managed-applications';
import { checkAgainstArm } from './application-check';
import { parseNotification, type Notification } from './notification';

export const MANAGED_APPLICATIONS = Symbol('ManagedApplications');
/** Who the audit log says asked, for everything a notification does. */
export const NOTIFICATION_ACTOR = 'azure:managed-application';

/**
 * The marketplace plan a customer bought decides the tier (it is what the
 * hours are billed as): a plan is named after its tier. An application from a
 * service catalog has no plan; its `tier` parameter decides.
 */
export const PLAN_TIERS: Readonly<Record<string, TierName>> = Object.fromEntries(TIER_NAMES.map((t) => [t, t]));

export interface NotificationAnswer {
  status: 'processed' | 'duplicate';
  outcome: string;
  clusterId?: string;
  operationId?: string;
}

@Injectable()
export class NotificationsService {
  private readonly log = new Logger('notifications');

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(MANAGED_APPLICATIONS) private readonly applications: ManagedApplications,
    private readonly clusters: TenantClusterRepository,
    private readonly notifications: ManagedAppNotificationRepository,
    private readonly dispatcher: OperationDispatcher,
    private readonly federations: FederationRepository,
  ) {}

  /**
   * Checks the shared secret, then the payload, then what Azure Resource Manager says of the
   * application (checkAgainstArm), then acts once per (application, lifetime, event, state): a
   * repeat changes nothing. Nothing is written before all three checks pass, and an answer Azure
   * may retry (ARM unreachable: 503) leaves nothing written either.
   */
  async receive(sig: string | undefined, raw: unknown): Promise<NotificationAnswer> {
    this.checkSignature(sig);
    const n = parseNotification(raw);
    const app = await this.applications.get(n.applicationId);
    const existing = await this.clusters.findLiveByManagedApplication(n.applicationId);
    checkAgainstArm(n, app, existing);
    const base = {
      applicationId: n.applicationId, lifetime: await this.lifetime(n.applicationId, app, existing), eventType: n.eventType, provisioningState: n.provisioningState,
      eventTime: n.eventTime, error: n.error, plan: n.plan, resourceUsageId: n.resourceUsageId ?? null,
    };
    const seen = await this.notifications.find(base);
    if (seen) return answer(seen, true);
    let record: NewNotification;
    if (n.provisioningState === 'Failed') {
      record = { ...base, outcome: 'failed', reason: n.error ? `${n.error.code}: ${n.error.message}` : 'Azure reported the application Failed', clusterId: existing?.id };
    } else if (n.eventType === 'PUT') {
      // checkAgainstArm let through no PUT without the application.
      record = existing ? { ...base, outcome: 'found', clusterId: existing.id } : await this.create(n, app!, base);
    } else if (n.eventType === 'DELETE') {
      record = await this.delete(existing, base);
    } else {
      record = { ...base, outcome: 'recorded', clusterId: existing?.id };
    }
    const { notification, duplicate } = await this.notifications.record(record);
    this.log.log({ msg: 'managed application notification', applicationId: n.applicationId, eventType: n.eventType, provisioningState: n.provisioningState, outcome: notification.outcome, clusterId: notification.clusterId });
    // What this request queued goes on the queue even when a concurrent repeat recorded the notification first.
    if (record.operationId) await this.dispatcher.dispatch(record.operationId);
    return answer(notification, duplicate);
  }

  /**
   * The application's lifetime, which the idempotency key carries: its managed resource group id.
   * Azure makes the managed resource group when the application is deployed and deletes it with
   * the application ("When the customer deletes the managed application, the managed resource
   * group is also deleted": https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/overview#managed-resource-group),
   * and names a new one per deployment by default (`mrg-<name>-<yyyyMMddHHmmss>`:
   * https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/deploy-service-catalog-quickstart),
   * so an application deleted and created again under the same id starts a new lifetime.
   * Api-version 2019-07-01 answers no creation time (no systemData), and `eventTime` is each
   * event's own, so neither marks a lifetime. Once ARM no longer has the application (a DELETE
   * Deleted comes after the application is gone), the lifetime is its live cluster's, or else
   * that of its latest notification.
   */
  private async lifetime(applicationId: string, app: ManagedApplication | null, live: Cluster | null): Promise<string> {
    const mrg = app?.managedResourceGroupId ?? live?.managedResourceGroupId ?? (await this.notifications.latestLifetime(applicationId));
    return mrg?.toLowerCase() ?? '';
  }

  private checkSignature(sig: string | undefined): void {
    const secret = this.config.NOTIFICATION_SECRET;
    if (!secret) throw new NotFoundError('notifications_disabled', 'managed application notifications are not enabled on this control plane (NOTIFICATION_SECRET is not set)');
    if (sig === undefined || sig === '') throw new UnauthenticatedError('missing_signature', 'the notification URL must carry the shared secret as ?sig=');
    // Hashes of equal length: the comparison takes the same time whatever the input.
    const given = createHash('sha256').update(sig).digest();
    const expected = createHash('sha256').update(secret).digest();
    if (!timingSafeEqual(given, expected)) throw new ForbiddenError('invalid_signature', 'the sig query parameter is not this endpoint\'s shared secret');
  }

  private async create(n: Notification, app: ManagedApplication, base: Omit<NewNotification, 'outcome'>): Promise<NewNotification> {
    const tenantId = app.outputs.tenantId;
    if (typeof tenantId !== 'string' || !isUuid(tenantId)) {
      // PUT Succeeded is the last notification of a create: answered 200, Azure would send no
      // other, and the cluster would never come. A 5xx is retried by Azure for hours
      // (https://learn.microsoft.com/azure/azure-resource-manager/managed-applications/publish-notifications#notification-retries),
      // by which time ARM shows the outputs. Nothing is recorded, so the retry acts afresh.
      if (n.provisioningState === 'Succeeded') {
        throw new UnavailableError('application_outputs_pending', 'Azure Resource Manager does not show the application\'s tenantId output yet; the notification was not processed, send it again', { applicationId: n.applicationId });
      }
      return { ...base, outcome: 'waiting', reason: 'the application has no tenantId output yet (its deployment is running); the cluster is created on PUT Succeeded' };
    }
    let cmd: CreateClusterCommand;
    let vnetCidr: string;
    try {
      ({ cmd, vnetCidr } = this.command(n, app));
    } catch (e) {
      // A parameter the API's create rules refuse (400 or 422 on POST /v1/clusters): Azure must not retry it, so 200 rejected.
      if (e instanceof ValidationError || e instanceof UnprocessableError) return { ...base, outcome: 'rejected', reason: `application parameter ${String(e.details?.field ?? '')}: ${e.message}` };
      throw e;
    }
    try {
      const input = {
        tenantId: tenantId.toLowerCase(), createdBy: NOTIFICATION_ACTOR, serverCount: serverCountFor(cmd.tier),
        name: cmd.name, subscriptionId: cmd.subscriptionId, resourceGroup: cmd.resourceGroup, region: cmd.region, tier: cmd.tier,
        datacenter: cmd.datacenter, consulVersion: cmd.consulVersion, publicEndpoint: cmd.publicEndpoint, ipAllowlist: cmd.ipAllowlist, deletionProtection: cmd.deletionProtection,
        snapshotIntervalHours: cmd.snapshotPolicy.intervalHours, snapshotRetention: cmd.snapshotPolicy.retention, upgradePolicy: cmd.upgradePolicy,
        billingResourceId: n.resourceUsageId, billingPlanId: n.plan?.name, vnetCidr,
        managedApplication: { applicationId: n.applicationId, managedResourceGroupId: app.managedResourceGroupId, vnetCidr }, target: this.config.defaultTarget,
      };
      // With the application's federationToken parameter: a secondary of that token's primary, checked as POST /v1/clusters checks it
      // (the same tenant, a unique datacenter, address spaces apart: they will be peered). Refused: nothing written, the token still usable.
      const { cluster, operation } = cmd.federationToken ? await this.federations.createSecondary(input, cmd.federationToken) : await this.clusters.createWithOperation(input);
      return { ...base, outcome: 'created', clusterId: cluster.id, operationId: operation.id };
    } catch (e) {
      if (e instanceof UnprocessableError || e instanceof ConflictError) return { ...base, outcome: 'rejected', reason: `${e.code}: ${e.message}` };
      if (!isUniqueViolation(e)) throw e;
      // A concurrent notification of the same application made it first, or the name (or the usage id) is taken.
      const raced = await this.clusters.findLiveByManagedApplication(n.applicationId);
      if (raced) return { ...base, outcome: 'found', clusterId: raced.id };
      return { ...base, outcome: 'rejected', reason: `a cluster named ${cmd.name} exists already in resource group ${cmd.resourceGroup}, or the billing resource id is in use` };
    }
  }

  /** The application's settings through the API's own create command: the same rules as POST /v1/clusters. */
  private command(n: Notification, app: ManagedApplication): { cmd: CreateClusterCommand; vnetCidr: string } {
    const p = app.parameters;
    let tier = p.tier;
    if (n.plan) {
      tier = PLAN_TIERS[n.plan.name];
      if (!tier) throw new ValidationError('unknown_plan', `plan ${n.plan.name} has no tier; plans are named ${TIER_NAMES.join(', ')}`, { field: 'plan.name' });
    }
    const automatic = p.upgradeMode === 'automatic';
    const cmd = parseInput('body', createClusterBody(catalogOf(this.config)),
      {
        name: p.clusterName, subscriptionId: n.subscriptionId, resourceGroup: n.resourceGroup, region: app.location, tier,
        datacenter: p.datacenter, consulVersion: p.consulVersion, publicEndpoint: p.externalEndpoint,
        // The blade's allowed sources, one entry per CIDR (the API's rules check each: a refusal rejects the application).
        ...(typeof p.publicSources === 'string' && p.publicSources.trim() !== ''
          ? { ipAllowlist: p.publicSources.split(',').map((cidr) => ({ cidr: cidr.trim(), description: 'managed application' })) }
          : {}),
        snapshotPolicy: { intervalHours: p.snapshotIntervalHours, retention: p.snapshotRetention },
        upgradePolicy: {
          mode: p.upgradeMode, window: automatic ? { dayOfWeek: p.upgradeWindowDay, startHourUtc: p.upgradeWindowStartHour, hours: p.upgradeWindowHours } : null,
          // An application made before these parameters existed has neither: the API's defaults (no pin, unprotected).
          ...(p.upgradePin === undefined ? {} : { pin: p.upgradePin }),
        },
        ...(p.deletionProtection === undefined ? {} : { deletionProtection: p.deletionProtection }),
        // The application's optional federation token (mainTemplate's federationToken, empty for a cluster on its own).
        ...(typeof p.federationToken === 'string' && p.federationToken !== '' ? { federationToken: p.federationToken } : {}),
      },
    );
    const vnetCidr = p.vnetCidr ?? DEFAULT_VNET_CIDR;
    if (typeof vnetCidr !== 'string' || !VNET_CIDR.test(vnetCidr)) throw new ValidationError('invalid_vnetCidr', `vnetCidr must be ${VNET_CIDR_RULE}`, { field: 'vnetCidr' });
    return { cmd, vnetCidr };
  }

  /**
   * Deletion protection does not refuse this delete: Azure deletes the application's managed
   * resource group, and the servers in it, whatever we answer, so a cluster kept here would be a
   * row without servers that goes on billing. Its audit event and this record say it was on.
   */
  private async delete(cluster: Cluster | null, base: Omit<NewNotification, 'outcome'>): Promise<NewNotification> {
    if (!cluster) return { ...base, outcome: 'recorded', reason: 'the application has no live cluster' };
    const { operation, queued } = await this.clusters.requestDeleteOnce(cluster, NOTIFICATION_ACTOR);
    if (!queued) return { ...base, outcome: 'recorded', reason: 'its delete is under way', clusterId: cluster.id, operationId: null };
    const reason = cluster.deletionProtection ? 'deletion protection was on; Azure deletes the managed resource group whatever the answer, so the cluster is deleted with it' : undefined;
    return { ...base, outcome: 'delete-requested', clusterId: cluster.id, operationId: operation.id, ...(reason ? { reason } : {}) };
  }
}

function answer(n: { outcome: string; clusterId: string | null; operationId: string | null }, duplicate: boolean): NotificationAnswer {
  return {
    status: duplicate ? 'duplicate' : 'processed',
    outcome: n.outcome,
    ...(n.clusterId ? { clusterId: n.clusterId } : {}),
    ...(n.operationId ? { operationId: n.operationId } : {}),
  };
}
