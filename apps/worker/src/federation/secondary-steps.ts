import {
  aclReplication, connectTrustDomain, deleteFederationAcls, ensureFederationToken, federationPolicyName, knownDatacenters, poll, REPLICATION_RULES, serverAgentRules, wanMembers,
  type ConsulApi,
} from '../../../../libs/provisioner/src';
import type { ClusterContext } from '../operations/cluster-context';
import type { ClusterRepository } from '../../../../libs/core/src';
import type { ClusterSecretStore } from '../operations/cluster-secrets';
import type { ClusterTarget } from '../operations/cluster-target';
import type { Step } from '../operations/flows/flow';

/**
 * The steps that make a cluster a secondary of its federation, and unmake it: its ACL tokens
 * made in the primary, and the waits until the WAN pool, ACL replication and the Connect CA
 * show the federation whole; on delete, its servers leaving the WAN pool and its tokens and
 * policies gone from the primary. Each step is idempotent.
 */
export class SecondarySteps {
  constructor(
    private readonly target: ClusterTarget,
    private readonly clusters: ClusterRepository,
    private readonly readyTimeoutMs: number,
  ) {}

  private get secrets(): ClusterSecretStore {
    return this.target.secrets;
  }

  /** A secondary's three tokens, and the policies of two, in the primary whose API is `primary`. */
  private async ensureAcls(primary: ConsulApi, secondaryId: string, dc: string): Promise<void> {
    const acl = await this.secrets.secondaryAcl(secondaryId);
    if (!acl) throw new Error(`cluster ${secondaryId} has no federation token ids yet`);
    const { managementToken } = await this.secrets.load(secondaryId);
    await ensureFederationToken(primary, {
      ...acl.replication, description: `ACL replication of datacenter ${dc}`, policy: { name: federationPolicyName(dc, 'replication'), rules: REPLICATION_RULES },
    });
    await ensureFederationToken(primary, {
      ...acl.agent, description: `agent token of datacenter ${dc}'s servers`, policy: { name: federationPolicyName(dc, 'server-agents'), rules: serverAgentRules(dc) },
    });
    await ensureFederationToken(primary, { accessorId: acl.managementAccessorId, secretId: managementToken, description: `control plane management token of datacenter ${dc}`, policy: 'global-management' });
  }

  /** Before the secondary's config is written: its tokens exist in the primary. */
  makeAcls(loaded: ClusterContext): Step {
    return {
      name: 'make-federation-tokens',
      run: async () => {
        const primary = await loaded.primary();
        await this.ensureAcls(primary.consul, loaded.cluster.id, loaded.cluster.datacenter);
        return `replication, server-agent and management tokens of ${loaded.cluster.datacenter} in ${primary.cluster.datacenter}`;
      },
    };
  }

  /**
   * After a primary's restore: its ACLs are the snapshot's, which may lack the tokens of a
   * secondary made since (or hold them with other policies): each live secondary's are made
   * again, with their sealed ids, so its replication and servers keep working.
   */
  restoreAcls(loaded: ClusterContext): Step {
    return {
      name: 'ensure-federation-tokens',
      run: async () => {
        const secondaries = await this.clusters.liveSecondaries(loaded.cluster.id);
        const made: string[] = [];
        for (const s of secondaries) {
          if (!(await this.secrets.secondaryAcl(s.id))) continue;
          await this.ensureAcls(loaded.consul, s.id, s.datacenter);
          made.push(s.datacenter);
        }
        return made.length ? `the tokens of ${made.join(', ')} are in place` : 'no secondaries';
      },
    };
  }

  /**
   * After a primary's gossip key rotation: Consul's keyring calls reach every datacenter of
   * the WAN pool, so each secondary already runs on the new key; its sealed key and server
   * configs follow, so a server started from its files (a repair) joins with it.
   */
  shareGossipKey(loaded: ClusterContext): Step {
    return {
      name: 'share-key-with-secondaries',
      run: async () => {
        const secondaries = await this.clusters.liveSecondaries(loaded.cluster.id);
        const key = loaded.secrets.gossipKey;
        for (const s of secondaries) {
          if (!(await this.secrets.secondaryAcl(s.id))) continue;
          await this.secrets.replaceGossipKey(s.id, key);
          const member = await this.target.open(s);
          await this.target.writeServerConfig(member.spec, member.secrets);
        }
        return secondaries.length ? `${secondaries.map((s) => s.datacenter).join(', ')}: the new key stored and in the server configs` : 'no secondaries';
      },
    };
  }

  /** After the secondary's servers have a leader: the federation is whole as both sides see it. */
  waitJoined(loaded: ClusterContext): Step[] {
    const dc = loaded.cluster.datacenter;
    const timeoutMs = this.readyTimeoutMs;
    return [
      {
        name: 'wait-wan-join',
        run: async () => {
          const primary = (await loaded.primary()).consul;
          const names = new Set(loaded.spec.servers.map((s) => `${dc}-server-${s.index}.${dc}`));
          await poll(`the primary to see every server of ${dc} alive in the WAN pool`, () => wanMembers(primary), (members) => {
            const missing = [...names].filter((n) => !members.some((m) => m.name === n && m.status === 'alive'));
            return missing.length === 0 || `not alive yet: ${missing.join(', ')}`;
          }, { timeoutMs, intervalMs: 250 });
          await poll(`the primary to route to ${dc}`, () => knownDatacenters(primary), (dcs) => dcs.includes(dc) || `datacenters: ${dcs.join(', ')}`, { timeoutMs, intervalMs: 250 });
          return `${names.size} server(s) of ${dc} alive in the WAN pool; the primary routes to ${dc}`;
        },
      },
      {
        name: 'wait-acl-replication',
        run: async () => (await poll(`ACL token replication into ${dc}`, () => aclReplication(loaded.consul), (r) => r.replicating || r.detail, { timeoutMs, intervalMs: 250 })).detail,
      },
      {
        name: 'wait-connect-ca',
        run: async () => {
          const primary = (await loaded.primary()).consul;
          const domain = await poll(`the primary's Connect CA`, () => connectTrustDomain(primary), (d) => d !== undefined || 'no roots yet', { timeoutMs, intervalMs: 250 });
          await poll(`${dc}'s Connect CA to be signed by the primary's`, () => connectTrustDomain(loaded.consul), (d) => d === domain || `trust domain ${d ?? 'none yet'}, the primary's ${domain}`, { timeoutMs, intervalMs: 250 });
          return `trust domain ${domain}`;
        },
      },
    ];
  }

  /**
   * Before its servers stop: each leaves gracefully (serf WAN and LAN), so the federation
   * forgets the datacenter. Consul 1.8 cannot force-leave a remote datacenter's server
   * (hashicorp/consul#6582, #8100): a server down at this point stays `failed` in the primary's
   * WAN pool until Consul reaps it (reconnect_timeout_wan, 72 h); the step says so.
   */
  leaveWan(loaded: ClusterContext): Step {
    return {
      name: 'leave-federation',
      run: async () => {
        const dc = loaded.cluster.datacenter;
        // A create that failed before the secondary had servers or secrets: it never joined.
        if (loaded.cluster.servers.length < loaded.cluster.serverCount || !(await this.secrets.secondaryAcl(loaded.cluster.id))) return `${dc} never joined`;
        const running = await runningServers(loaded);
        await Promise.all(running.map((i) => loaded.consul.leave(i)));
        const primary = (await loaded.primary()).consul;
        const still = await poll(`the primary to see ${dc}'s servers leave`, () => wanMembers(primary), (members) => {
          const here = members.filter((m) => m.datacenter === dc && (m.status === 'alive' || m.status === 'leaving'));
          return here.length === 0 || `still ${here.map((m) => `${m.name} ${m.status}`).join(', ')}`;
        }, { timeoutMs: this.readyTimeoutMs, intervalMs: 250 });
        const failed = still.filter((m) => m.datacenter === dc && m.status === 'failed').map((m) => m.name);
        return `${running.length} server(s) left the WAN pool${failed.length ? `; ${failed.join(', ')} were down and stay failed in the primary until Consul reaps them` : ''}`;
      },
    };
  }

  /** After its servers are gone: its tokens and policies are deleted in the primary. */
  deleteAcls(loaded: ClusterContext): Step {
    return {
      name: 'delete-federation-tokens',
      run: async () => {
        const acl = await this.secrets.secondaryAcl(loaded.cluster.id);
        if (!acl) return 'none were made';
        const dc = loaded.cluster.datacenter;
        const primary = await loaded.primary();
        await deleteFederationAcls(primary.consul, [acl.replication.accessorId, acl.agent.accessorId, acl.managementAccessorId], [federationPolicyName(dc, 'replication'), federationPolicyName(dc, 'server-agents')]);
        return `replication, server-agent and management tokens of ${dc} deleted in ${primary.cluster.datacenter}`;
      },
    };
  }
}

async function runningServers(loaded: ClusterContext): Promise<number[]> {
  const api: ConsulApi = loaded.consul;
  const up: number[] = [];
  for (const s of loaded.spec.servers) if (await api.serverStatus(s.index).then(() => true, () => false)) up.push(s.index);
  return up;
}
