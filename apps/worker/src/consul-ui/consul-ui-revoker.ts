import { Logger } from '@nestjs/common';
import {
  ClusterRepository, ClusterState, ConsoleSessionRepository, ConsulUiSessionRepository, SecretName, SecretRepository,
} from '../../../../libs/core/src';
import { serverHttps, type ConsulUiTokens } from '../../../../libs/provisioner/src';

/**
 * Ends Consul UI sessions for good: deletes the user's token in Consul (with the management
 * token, over the cluster's verified HTTPS API), then the session row, its sealed secret and
 * the audit event together. Driven by the API's jobs (sign-out, a lost role), by the sweep
 * (expiry, console sessions that ended, lost jobs) and by the delete flow. Every step is
 * idempotent: a repeat, or two workers at once, deletes nothing twice and audits once.
 */
export class ConsulUiRevoker {
  private readonly log = new Logger('consul-ui-revoker');

  constructor(
    private readonly uiSessions: ConsulUiSessionRepository,
    private readonly consoleSessions: ConsoleSessionRepository,
    private readonly clusters: ClusterRepository,
    private readonly secrets: SecretRepository,
    private readonly tokens: ConsulUiTokens,
  ) {}

  /**
   * Finishes one revoked session. With `clusterGoing` (the delete flow), a cluster that does not
   * answer does not stop it: the token goes with the cluster. Otherwise an unreachable cluster
   * is an error (retried), unless the token has expired in Consul by itself meanwhile.
   * false when there was nothing to finish.
   */
  async finish(id: string, opts: { clusterGoing?: boolean } = {}): Promise<boolean> {
    const row = await this.uiSessions.get(id);
    if (!row || !row.revokedAt) return false;
    const cluster = await this.clusters.get(row.clusterId);
    let consulToken: string;
    const managementToken = cluster && cluster.state !== ClusterState.Deleted ? await this.secrets.get(cluster.id, SecretName.ManagementToken) : null;
    if (!cluster || !managementToken || !cluster.caCertPem || cluster.servers.length === 0) {
      consulToken = 'gone with the cluster';
    } else {
      try {
        consulToken = await this.tokens.delete({ clusterId: cluster.id, servers: cluster.servers.map(serverHttps), caPem: cluster.caCertPem, managementToken }, row.accessorId);
      } catch (e) {
        if (opts.clusterGoing) consulToken = 'gone with the cluster';
        else if (row.expiresAt.getTime() <= Date.now()) consulToken = 'expired in Consul';
        else throw e;
      }
    }
    const done = await this.uiSessions.finishRevocation(id, { consulToken });
    if (done) this.log.log({ msg: 'Consul UI session revoked', clusterId: row.clusterId, uiSessionId: id, reason: row.revokeReason, consulToken });
    return done;
  }

  /** The API's job: these sessions were marked revoked. Fails (and is retried) if one could not be finished. */
  async finishAll(ids: readonly string[]): Promise<void> {
    let failed: unknown;
    for (const id of ids) {
      try {
        await this.finish(id);
      } catch (e) {
        failed ??= e;
      }
    }
    if (failed) throw failed instanceof Error ? failed : new Error(String(failed));
  }

  /** The delete flow's first step: every UI session of the cluster, while its servers still answer. */
  async revokeCluster(clusterId: string): Promise<number> {
    await this.uiSessions.markRevoked({ clusterId }, 'cluster-deleted');
    let n = 0;
    for (const id of await this.uiSessions.idsForCluster(clusterId)) if (await this.finish(id, { clusterGoing: true })) n++;
    return n;
  }

  /**
   * After a restore: the restored ACL state holds the UI tokens of the snapshot's time (revoked
   * ones too) and lacks those made since. Every UI token in the cluster is deleted and every UI
   * session of the cluster ends (users open the UI again, one click). Idempotent.
   */
  async afterRestore(clusterId: string): Promise<{ deleted: number; sessions: number }> {
    await this.uiSessions.markRevoked({ clusterId }, 'cluster-restored');
    const cluster = await this.clusters.get(clusterId);
    const managementToken = await this.secrets.get(clusterId, SecretName.ManagementToken);
    if (!cluster || !managementToken || !cluster.caCertPem) throw new Error(`cluster ${clusterId} has no Consul API to clean up`);
    const deleted = await this.tokens.deleteAll({ clusterId, servers: cluster.servers.map(serverHttps), caPem: cluster.caCertPem, managementToken });
    let sessions = 0;
    for (const id of await this.uiSessions.idsForCluster(clusterId)) if (await this.finish(id)) sessions++;
    return { deleted: deleted.length, sessions };
  }

  /** Every CONSOLE_SWEEP_MS: expired console sessions, logins and codes go; what is due is revoked. */
  async sweep(): Promise<void> {
    const ended = await this.consoleSessions.deleteExpired();
    const codes = await this.uiSessions.deleteExpiredCodes();
    const due = await this.uiSessions.markDue();
    let revoked = 0;
    for (const id of due) {
      try {
        if (await this.finish(id)) revoked++;
      } catch (e) {
        this.log.warn({ msg: 'Consul UI session not revoked yet; the next sweep tries again', uiSessionId: id, err: (e as Error).message });
      }
    }
    const orphans = await this.uiSessions.deleteOrphanSecrets();
    if (ended.sessions || ended.logins || codes || revoked || orphans) {
      this.log.log({ msg: 'console sweep', expiredSessions: ended.sessions, expiredLogins: ended.logins, expiredCodes: codes, revokedUiSessions: revoked, orphanSecrets: orphans });
    }
  }

  close(): void {
    this.tokens.close();
  }
}
