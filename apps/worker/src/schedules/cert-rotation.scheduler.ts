import { Logger } from '@nestjs/common';
import {
  dispatchOperation, type CertificateRotationPolicy, type CertificateScheduleRepository, type ClusterRepository, type Config, type OperationsQueue,
} from '../../../../libs/core/src';
import type { ClusterTarget } from '../operations/cluster-target';

const DAY_MS = 86_400_000;

export function certificateRotationPolicy(config: Config): CertificateRotationPolicy {
  return {
    serverThresholdMs: config.CERT_ROTATION_THRESHOLD_DAYS * DAY_MS,
    caThresholdMs: config.CA_ROTATION_THRESHOLD_DAYS * DAY_MS,
    retryAfterMs: DAY_MS,
  };
}

/**
 * Certificates never expire unwatched: queues a `rotate-certificates`
 * operation for each Running cluster whose earliest server certificate
 * expires within CERT_ROTATION_THRESHOLD_DAYS, and a `rotate-ca` operation
 * when its CA expires within CA_ROTATION_THRESHOLD_DAYS (the conditional claim
 * lets several workers tick at once). Each tick first records the public
 * certificate dates of clusters made before they were kept on the row (only
 * the worker may unseal the PKI). The worker ticks it on the wall clock every
 * CERT_ROTATION_TICK_MS; tests tick it with the time they choose.
 */
export class CertificateRotationScheduler {
  private readonly log = new Logger('cert-rotation-scheduler');

  constructor(
    private readonly schedule: CertificateScheduleRepository,
    private readonly clusters: ClusterRepository,
    private readonly target: ClusterTarget,
    private readonly queue: OperationsQueue,
    private readonly attempts: number,
    private readonly policy: CertificateRotationPolicy,
  ) {}

  async tick(now: Date = new Date()): Promise<number> {
    await this.backfill();
    const queued = await this.schedule.claimDue(now, this.policy);
    for (const q of queued) {
      this.log.log({ msg: 'certificate rotation queued', clusterId: q.clusterId, operationId: q.operationId, kind: q.kind, notAfter: q.notAfter.toISOString() });
      // If Redis is down now, the reconciler enqueues it later: the rows are written.
      await dispatchOperation(this.queue, q.operationId, this.attempts, this.log);
    }
    return queued.length;
  }

  /** Clusters from before the dates were recorded: their public certificate data, from the sealed PKI. */
  async backfill(): Promise<number> {
    let n = 0;
    for (const id of await this.clusters.listWithoutCertificateDates()) {
      if (await this.target.secrets.publishCertificates(id)) n++;
    }
    if (n) this.log.log({ msg: 'certificate dates recorded', clusters: n });
    return n;
  }
}
