import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { isUniqueViolation } from './prisma';
import type { ManagedAppNotification, Prisma } from '../generated/prisma/client';

/** What the control plane did with a notification. */
export type NotificationOutcome =
  /** A cluster and its create operation were written. */
  | 'created'
  /** The application's cluster existed already. */
  | 'found'
  /** The application has no tenant output yet (its deployment runs); the cluster comes with PUT Succeeded. */
  | 'waiting'
  /** Kept, nothing to do (PATCH, a delete already under way, nothing to delete). */
  | 'recorded'
  | 'delete-requested'
  /** Azure reports the application Failed. */
  | 'failed'
  /** The application's settings break the API's rules (or its name is taken): no cluster. */
  | 'rejected';

export interface NewNotification {
  applicationId: string;
  /** The application's lifetime (see NotificationsService): a repeat within it changes nothing. */
  lifetime: string;
  eventType: string;
  provisioningState: string;
  eventTime: Date;
  outcome: NotificationOutcome;
  reason?: string | null;
  error?: unknown;
  plan?: unknown;
  resourceUsageId?: string | null;
  clusterId?: string | null;
  operationId?: string | null;
}

/** What makes a notification a repeat: the same event and state of the same application in the same lifetime. */
export type NotificationKey = Pick<NewNotification, 'applicationId' | 'lifetime' | 'eventType' | 'provisioningState'>;

/** A failure an SRE must see on the fleet list. */
export interface ApplicationFailure {
  applicationId: string;
  eventType: string;
  provisioningState: string;
  outcome: 'failed' | 'rejected';
  reason: string | null;
  error: unknown;
  eventTime: Date;
  clusterId: string | null;
}

/** Managed application notifications, one row per (application, lifetime, event type, provisioning state). */
export class ManagedAppNotificationRepository {
  constructor(private readonly db: Db) {}

  find(key: NotificationKey): Promise<ManagedAppNotification | null> {
    const { applicationId, lifetime, eventType, provisioningState } = key;
    return this.db.managedAppNotification.findUnique({ where: { applicationId_lifetime_eventType_provisioningState: { applicationId, lifetime, eventType, provisioningState } } });
  }

  /** The lifetime of the application's latest notification; null when none was recorded. */
  async latestLifetime(applicationId: string): Promise<string | null> {
    const row = await this.db.managedAppNotification.findFirst({ where: { applicationId }, orderBy: [{ eventTime: 'desc' }, { receivedAt: 'desc' }], select: { lifetime: true } });
    return row?.lifetime ?? null;
  }

  /** Records it; a notification recorded meanwhile (a concurrent retry) wins and is returned with `duplicate`. */
  async record(n: NewNotification): Promise<{ notification: ManagedAppNotification; duplicate: boolean }> {
    try {
      const notification = await this.db.managedAppNotification.create({
        data: {
          id: randomUUID(), applicationId: n.applicationId, lifetime: n.lifetime, eventType: n.eventType, provisioningState: n.provisioningState, eventTime: n.eventTime,
          outcome: n.outcome, reason: n.reason ?? null, error: json(n.error), plan: json(n.plan), resourceUsageId: n.resourceUsageId ?? null,
          clusterId: n.clusterId ?? null, operationId: n.operationId ?? null,
        },
      });
      return { notification, duplicate: false };
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      const existing = await this.find(n);
      if (!existing) throw e;
      return { notification: existing, duplicate: true };
    }
  }

  /** Applications whose latest notification is a failure (Failed from Azure, or refused by us), newest first. */
  async latestFailures(limit = 500): Promise<ApplicationFailure[]> {
    const rows = await this.db.$queryRaw<ApplicationFailure[]>`
      SELECT * FROM (
        SELECT DISTINCT ON ("applicationId") "applicationId", "eventType", "provisioningState", "outcome", "reason", "error", "eventTime", "clusterId"::text AS "clusterId"
        FROM "ManagedAppNotification"
        ORDER BY "applicationId", "eventTime" DESC, "receivedAt" DESC
      ) f WHERE "outcome" IN ('failed', 'rejected') ORDER BY "eventTime" DESC LIMIT ${limit}`;
    return rows;
  }
}

function json(v: unknown): Prisma.InputJsonValue | undefined {
  return v === undefined || v === null ? undefined : (v as Prisma.InputJsonValue);
}
