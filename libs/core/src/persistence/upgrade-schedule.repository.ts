import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import { ClusterState, OperationKind, OperationState } from '../model';
import { insertOperation } from './operation-writer';

import { crossedPin, type UpgradePin, type UpgradeWindow } from '../../../contracts/src';
export { UPGRADE_MODES, UPGRADE_PINS, type UpgradeMode, type UpgradePin, type UpgradePolicy, type UpgradeWindow } from '../../../contracts/src';

/** Who requests automatic upgrades (the operation's requestedBy and the audit event's actor). */
export const AUTO_UPGRADE_ACTOR = 'system:auto-upgrade';

const HOUR = 3_600_000;
const WEEK = 7 * 24 * HOUR;
/** 1970-01-01 was a Thursday: the epoch is 4 days after a week's start (Sunday 00:00 UTC). */
const EPOCH_SINCE_WEEK_START = 4 * 24 * HOUR;
const mod = (a: number, m: number) => ((a % m) + m) % m;

/**
 * When the occurrence of the window that contains `now` opened, or null when
 * the window is closed at `now`. A window may run past midnight and past
 * Saturday into the next week (Saturday 22:00 for 4 hours closes Sunday 02:00).
 */
export function windowOpenedAt(window: UpgradeWindow, now: Date): Date | null {
  const t = now.getTime();
  const sinceWeekStart = mod(t + EPOCH_SINCE_WEEK_START, WEEK);
  const offset = mod(sinceWeekStart - (window.dayOfWeek * 24 + window.startHourUtc) * HOUR, WEEK);
  return offset < window.hours * HOUR ? new Date(t - offset) : null;
}

export interface QueuedAutoUpgrade {
  clusterId: string;
  operationId: string;
  fromVersion: string;
  toVersion: string;
  windowOpenedAt: Date;
}

/** A window occurrence whose upgrade the cluster's pin excludes, and why (`pinned to 1.8.x; ...`). */
export interface SkippedAutoUpgrade {
  clusterId: string;
  fromVersion: string;
  toVersion: string;
  windowOpenedAt: Date;
  reason: string;
}

/**
 * Automatic upgrades: a Running cluster with mode automatic that is not on the
 * recommended version gets one upgrade operation per occurrence of its
 * maintenance window, unless its pin excludes that version: then the
 * occurrence is skipped, once, with the reason in the cluster's events
 * (`cluster.upgrade.skipped`). Claiming the occurrence, for either, is one
 * conditional UPDATE of "lastAutoUpgradeAt", so two workers ticking at once act once.
 */
export class UpgradeScheduleRepository {
  constructor(private readonly db: Db) {}

  /** Queues the automatic upgrades due at `now` to `toVersion`, and skips those a pin excludes; returns what it did. */
  async claimDue(now: Date, toVersion: string): Promise<{ queued: QueuedAutoUpgrade[]; skipped: SkippedAutoUpgrade[] }> {
    const candidates = await this.db.$queryRaw<{ id: string; tenantId: string; consulVersion: string; upgradeWindow: UpgradeWindow; upgradePin: UpgradePin; lastAutoUpgradeAt: Date | null }[]>`
      SELECT c."id", c."tenantId", c."consulVersion", c."upgradeWindow", c."upgradePin", c."lastAutoUpgradeAt"
      FROM "Cluster" c
      WHERE c."state" = ${ClusterState.Running} AND c."upgradeMode" = 'automatic' AND c."upgradeWindow" IS NOT NULL
        AND c."consulVersion" <> ${toVersion}
        AND NOT EXISTS (
          SELECT 1 FROM "Operation" o
          WHERE o."clusterId" = c."id" AND o."kind" = ${OperationKind.Upgrade} AND o."state" IN (${OperationState.Queued}, ${OperationState.Running}))
      ORDER BY c."lastAutoUpgradeAt" ASC NULLS FIRST, c."id"`;
    const queued: QueuedAutoUpgrade[] = [];
    const skipped: SkippedAutoUpgrade[] = [];
    for (const c of candidates) {
      const opened = windowOpenedAt(c.upgradeWindow, now);
      if (!opened) continue;
      if (c.lastAutoUpgradeAt && c.lastAutoUpgradeAt.getTime() >= opened.getTime()) continue; // this occurrence had its turn
      const range = crossedPin(c.upgradePin, c.consulVersion, toVersion);
      const operationId = randomUUID();
      const common = { toVersion, fromVersion: c.consulVersion, automatic: true, window: c.upgradeWindow, windowOpenedAt: opened.toISOString() };
      const params = { ...common, preUpgradeSnapshotId: randomUUID() };
      const reason = range && `pinned to ${range}; the RECOMMENDED ${toVersion} crosses the pin`;
      const won = await this.db.$transaction(async (tx) => {
        // Every condition again, on the row itself: the policy, the pin, the version or another worker may have moved since the read.
        const n = await tx.$executeRaw`
          UPDATE "Cluster" SET "lastAutoUpgradeAt" = ${now}
          WHERE "id" = ${c.id}::uuid AND "state" = ${ClusterState.Running} AND "upgradeMode" = 'automatic'
            AND "upgradeWindow" = ${JSON.stringify(c.upgradeWindow)}::jsonb AND "consulVersion" = ${c.consulVersion} AND "upgradePin" = ${c.upgradePin}
            AND ("lastAutoUpgradeAt" IS NULL OR "lastAutoUpgradeAt" < ${opened})
            AND NOT EXISTS (
              SELECT 1 FROM "Operation" o
              WHERE o."clusterId" = ${c.id}::uuid AND o."kind" = ${OperationKind.Upgrade} AND o."state" IN (${OperationState.Queued}, ${OperationState.Running}))`;
        if (n !== 1) return false;
        if (reason) {
          // The occurrence is used up by the skip: the customer reads why in the cluster's events, once per window.
          await tx.auditEvent.create({
            data: { id: randomUUID(), tenantId: c.tenantId, clusterId: c.id, actor: AUTO_UPGRADE_ACTOR, action: 'cluster.upgrade.skipped', details: { ...common, pin: c.upgradePin, reason } },
          });
          return true;
        }
        await insertOperation(tx, { id: operationId, tenantId: c.tenantId, clusterId: c.id, kind: OperationKind.Upgrade, requestedBy: AUTO_UPGRADE_ACTOR, params });
        await tx.auditEvent.create({
          data: { id: randomUUID(), tenantId: c.tenantId, clusterId: c.id, operationId, actor: AUTO_UPGRADE_ACTOR, action: 'cluster.upgrade.requested', details: params },
        });
        return true;
      });
      if (!won) continue;
      if (reason) skipped.push({ clusterId: c.id, fromVersion: c.consulVersion, toVersion, windowOpenedAt: opened, reason });
      else queued.push({ clusterId: c.id, operationId, fromVersion: c.consulVersion, toVersion, windowOpenedAt: opened });
    }
    return { queued, skipped };
  }
}
