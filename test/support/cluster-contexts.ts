import type { ClusterRepository, ClusterWithServers } from '../../libs/core/src';
import { ConsulConnections } from '../../libs/provisioner/src';
import { ClusterContext } from '../../apps/worker/src/operations/cluster-context';

/**
 * How a runner under test opens a cluster for its flows when they touch no
 * server: the claimed row; its secrets are not read (a step that asks for
 * them fails).
 */
export function rowOnlyContexts(clusters: ClusterRepository): (cluster: ClusterWithServers) => Promise<ClusterContext> {
  const consul = new ConsulConnections();
  return (cluster) => ClusterContext.open(cluster, {
    cluster: (id) => clusters.get(id),
    secrets: () => Promise.reject(new Error('this test reads no cluster secrets')),
    consul,
  });
}
