import { Logger } from '@nestjs/common';
import {
  ClusterRepository, ClusterState, OperationKind, TenantClusterRepository, dispatchOperation, type ClusterWithServers, type OperationsQueue,
} from '../../../../libs/core/src';
import type { ObservedServer } from '../../../../libs/provisioner/src';

export type Health = 'healthy' | 'degraded' | 'unavailable';

/**
 * Watches every running cluster's server processes. A dead server makes the
 * cluster degraded (quorum kept) or unavailable (quorum lost) and queues one
 * `repair` operation; the cluster is healthy again once all servers run.
 */
export class HealthMonitor {
  private readonly log = new Logger('health');

  constructor(
    private readonly clusters: ClusterRepository,
    /** A repair is asked for as a customer's request is: with its audit event, in the cluster's tenant. */
    private readonly requests: TenantClusterRepository,
    private readonly servers: { observe(clusterId: string): Promise<readonly ObservedServer[]> },
    private readonly queue: OperationsQueue,
    private readonly attempts: number,
  ) {}

  async tick(now: Date = new Date()): Promise<{ checked: number; repairs: number }> {
    let repairs = 0;
    const all = await this.clusters.listMonitored();
    for (const c of all) {
      const expected = c.servers.slice(0, c.serverCount).map((s) => s.index);
      const running = new Set((await this.servers.observe(c.id)).map((p) => p.index));
      const down = expected.filter((i) => !running.has(i));
      const { health, reason } = this.judge(c, down);
      if (health !== c.health || reason !== c.healthReason) await this.clusters.recordHealth(c.id, health, reason, now);
      // Scaling changes the server set itself: repairs wait until it is done.
      if (down.length > 0 && c.state === ClusterState.Running && !(await this.requests.findPendingOperation(c.tenantId, c.id, OperationKind.Repair))) {
        const op = await this.requests.addOperation(c, OperationKind.Repair, 'health-monitor', 'cluster.repair.requested', { down });
        await dispatchOperation(this.queue, op.id, this.attempts, this.log);
        this.log.warn({ msg: 'repair queued', clusterId: c.id, down });
        repairs++;
      }
    }
    return { checked: all.length, repairs };
  }

  private judge(c: ClusterWithServers, down: number[]): { health: Health; reason: string | null } {
    if (down.length === 0) return { health: 'healthy', reason: null };
    const quorum = Math.floor(c.serverCount / 2) + 1;
    const up = c.serverCount - down.length;
    const which = `server(s) ${down.join(', ')} of ${c.serverCount} not running`;
    return up >= quorum ? { health: 'degraded', reason: `${which}; quorum kept` } : { health: 'unavailable', reason: `${which}; no quorum` };
  }
}
