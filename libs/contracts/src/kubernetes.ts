import { z } from 'zod';
import { UUID_PATTERN } from './fields';
import { CLUSTER_ID } from './operations';
import { ROLE, query, route } from './route';

/** The request header that carries the chart's bootstrap token into the Secret (Consul's own header name). */
export const CONSUL_TOKEN_HEADER = 'X-Consul-Token';

export const K8S_AUTH_METHOD_HOST_RULE =
  "the Kubernetes API server's https URL (scheme, host and port only), as `kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}'` prints it, e.g. https://orders-aks-1a2b3c4d.hcp.westeurope.azmk8s.io:443";

/** An https origin: no user, path, query or fragment (the chart passes it to Consul's Kubernetes auth method as its Host). */
function isHttpsOrigin(v: string): boolean {
  if (v.length > 300) return false;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' && u.hostname !== '' && !u.username && !u.password && (u.pathname === '/' || u.pathname === '') && !u.search && !u.hash && !/[\s'"]/.test(v);
  } catch {
    return false;
  }
}

export const KUBERNETES_QUERY = query({
  k8sAuthMethodHost: z.string().refine(isHttpsOrigin, `k8sAuthMethodHost must be ${K8S_AUTH_METHOD_HOST_RULE}`).optional()
    .meta({ description: "The AKS cluster's API server, reachable from the Consul servers: written as externalServers.k8sAuthMethodHost, which connectInject needs with manageSystemACLs (Consul checks pods' service account tokens there)" }),
});

export const KUBERNETES_CONFIG = z.strictObject({
  chart: z.strictObject({
    repository: z.string().meta({ description: 'The Helm repository: `helm repo add hashicorp <repository>`' }),
    name: z.string().meta({ description: 'The chart, as `helm install` names it' }),
    version: z.string().meta({ description: 'The chart version these values are written for (pass it as --version)' }),
  }),
  secretName: z.string().meta({ description: 'The Kubernetes Secret the values read the CA, the gossip key and the bootstrap token from' }),
  helmValues: z.string().meta({ description: "values.yaml for the chart (YAML). It holds no secret: it names the Secret's keys" }),
  secret: z.string().optional().meta({ description: `The Secret's manifest (YAML): caCert, gossipEncryptionKey and bootstrapToken. Only when the request carried ${CONSUL_TOKEN_HEADER}` }),
  secretOmitted: z.string().optional().meta({ description: `Why secret is not in the answer (no ${CONSUL_TOKEN_HEADER}) and how to get it` }),
  steps: z.array(z.string()).meta({ description: 'The commands that install the chart with these documents' }),
}).meta({ id: 'KubernetesConfig' });
export type KubernetesConfigView = z.output<typeof KUBERNETES_CONFIG>;

export const KUBERNETES_ROUTES = {
  kubernetesConfig: route({
    id: 'kubernetesConfig', method: 'GET', path: '/v1/clusters/{id}/kubernetes', tag: 'clusters', auth: 'bearer', roles: [ROLE.write],
    summary: "Kubernetes (AKS) onboarding: values.yaml for HashiCorp's Consul Helm chart (client agents in Kubernetes joining this cluster's servers: TLS with auto-encrypt, "
      + `gossip encryption, ACLs managed by the chart, Connect injection) and the Secret it reads. The Secret holds the gossip key, the CA and a bootstrap token: send ${CONSUL_TOKEN_HEADER} `
      + 'with the secret of a management token from POST /v1/clusters/{id}/tokens (the chart\'s server-acl-init job creates its ACL policies, tokens and auth method with it). '
      + 'Makes nothing: without the header the answer has the values and secretOmitted. Clusters.ReadWrite (the gossip key); the cluster Running; Cache-Control: no-store',
    params: CLUSTER_ID,
    query: KUBERNETES_QUERY,
    headers: {
      [CONSUL_TOKEN_HEADER]: {
        required: false,
        description: 'The SecretID of a management token made for the chart with POST /v1/clusters/{id}/tokens: written into the Secret as bootstrapToken',
        schema: z.string().regex(UUID_PATTERN, `${CONSUL_TOKEN_HEADER} must be the SecretID (a UUID) of a token from POST /v1/clusters/{id}/tokens`),
      },
    },
    answers: { 200: KUBERNETES_CONFIG },
  }),
};
