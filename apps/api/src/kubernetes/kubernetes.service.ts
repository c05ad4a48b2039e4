import { Injectable } from '@nestjs/common';
import { CONSUL_TOKEN_HEADER, type KubernetesConfigView } from '../../../../libs/contracts/src';
import { ClusterState, ConflictError } from '../../../../libs/core/src';
import type { Principal } from '../auth/principal';
import { ClustersService } from '../clusters/clusters.service';
import { CONSUL_HELM_CHART, helmValues, secretManifest, secretNameFor, yamlDocument } from './consul-chart';

/**
 * Kubernetes onboarding, as HCS offered it for AKS: the Consul Helm chart's values and the Secret
 * they read, for client agents in Kubernetes that join this cluster's servers. Everything comes
 * from the client config (CA, gossip key, servers, primary datacenter), so a VM agent and a pod
 * agent get the same. The API makes no token and talks to no Consul: the bootstrap token is one
 * the caller made with POST /v1/clusters/{id}/tokens, sent in X-Consul-Token and only written
 * into the Secret.
 */
@Injectable()
export class KubernetesService {
  constructor(private readonly clusters: ClustersService) {}

  async config(caller: Principal, clusterId: string, input: { bootstrapToken?: string; k8sAuthMethodHost?: string }): Promise<KubernetesConfigView> {
    const cluster = await this.clusters.require(caller, clusterId);
    if (cluster.state !== ClusterState.Running) {
      throw new ConflictError('cluster_not_running', `the cluster is ${cluster.state}; its Kubernetes configuration is available once it is Running`);
    }
    const client = await this.clusters.clientConfig(caller, cluster.id);
    // The route is Clusters.ReadWrite only, so the client config carries the gossip key.
    const { caPem, encrypt: gossipKey } = client;
    if (!caPem || !gossipKey) throw new ConflictError('cluster_not_ready', 'the cluster has no secrets yet; wait until it is Running');
    const chartCluster = {
      name: cluster.name,
      datacenter: client.datacenter,
      primaryDatacenter: client.consulConfig.primary_datacenter,
      consulVersion: cluster.consulVersion,
      servers: client.retryJoin,
      k8sAuthMethodHost: input.k8sAuthMethodHost,
    };
    const secretName = secretNameFor(cluster.name);
    const chart = `${CONSUL_HELM_CHART.name} ${CONSUL_HELM_CHART.version}`;
    const values = yamlDocument(helmValues(chartCluster), [
      `${chart} values for Consul cluster ${cluster.name} (datacenter ${client.datacenter}, Consul ${cluster.consulVersion}).`,
      `Client agents only: the servers are the cluster's. Reads the Secret ${secretName} (apply it first).`,
      ...(input.k8sAuthMethodHost ? [] : ['With connectInject and manageSystemACLs, set externalServers.k8sAuthMethodHost to your API server (reachable from the Consul servers).']),
    ].join('\n'));
    const steps = [
      'kubectl apply -f secret.yaml',
      `helm repo add hashicorp ${CONSUL_HELM_CHART.repository}`,
      `helm install consul ${CONSUL_HELM_CHART.name} --version ${CONSUL_HELM_CHART.version} -f values.yaml`,
    ];
    const answer = { chart: { ...CONSUL_HELM_CHART }, secretName, helmValues: values, steps };
    if (input.bootstrapToken === undefined) {
      return {
        ...answer,
        secretOmitted: `the Secret holds the bootstrap token the chart's server-acl-init job creates its ACL policies and tokens with: make a management token for it with POST /v1/clusters/${cluster.id}/tokens, `
          + `then ask again with its SecretID in the ${CONSUL_TOKEN_HEADER} header`,
      };
    }
    const secret = yamlDocument(secretManifest(chartCluster, { caPem, gossipKey, bootstrapToken: input.bootstrapToken }), [
      `The Secret ${chart} reads for Consul cluster ${cluster.name}: its CA, gossip key and a management token for server-acl-init.`,
      'Secrets: keep this file out of source control. Apply it in the namespace you install the chart in.',
    ].join('\n'));
    return { ...answer, secret };
  }
}
