import { IP_ALLOWLIST } from '../../../../../libs/contracts/src';
import type { ClusterRepository } from '../../../../../libs/core/src';
import type { ClusterSpec } from '../../../../../libs/provisioner/src';
import type { ClusterContext } from '../cluster-context';
import type { ClusterTarget } from '../cluster-target';
import type { Step } from './flow';

/**
 * The cluster's public endpoint made to match its row: on with the row's allowlist, or gone; then
 * where it answers written back to the row (the API shows it as endpoints.public). The row is read
 * again first: it holds the latest setting asked for, whichever operation asked. Used by the
 * update-endpoint operation, at the end of a create, and after a scale (`spec`: the servers it
 * forwards to are the scale's).
 */
export function publicEndpointSteps(target: ClusterTarget, clusters: ClusterRepository, loaded: ClusterContext, spec: () => ClusterSpec = () => loaded.spec): Step[] {
  return [
    {
      name: 'apply-public-endpoint',
      run: async () => {
        await loaded.reload();
        const { publicEndpoint, ipAllowlist } = loaded.cluster;
        // The API checked the list when it wrote it; read back through its shape, a row that does not hold one fails the step.
        const allowlist = IP_ALLOWLIST.parse(ipAllowlist);
        await target.updateEndpoint(spec(), loaded.secrets, publicEndpoint ? { allowlist } : null);
        return publicEndpoint ? `on, ${allowlist.length} allowed network(s)` : 'off';
      },
    },
    {
      name: 'record-public-address',
      run: async () => {
        const address = await target.publicAddress(loaded.cluster.id);
        await clusters.recordPublicAddress(loaded.cluster.id, address);
        return address ?? 'no public address';
      },
    },
  ];
}
