import YAML from 'yaml';

/**
 * HashiCorp's Consul Helm chart that the values are written for: consul-helm v0.26.0, the last
 * release whose default Consul image is a 1.8 (consul:1.8.5, with consul-k8s 0.20.0). From v0.27.0
 * on the chart defaults to Consul 1.9 and newer consul-k8s releases; our servers run 1.8.7, and
 * client agents should not be newer than their servers. v0.26.0 has every value used here:
 * externalServers (hosts, httpsPort, tlsServerName, useSystemRoots, k8sAuthMethodHost),
 * global.tls.enableAutoEncrypt, global.acls.manageSystemACLs with bootstrapToken, gossip encryption
 * and the CA from a secret, client.join/grpc/exposeGossipPorts and connectInject. The image is set to
 * the cluster's own Consul version, so the agents in Kubernetes run what the servers run.
 */
export const CONSUL_HELM_CHART = { repository: 'https://helm.releases.hashicorp.com', name: 'hashicorp/consul', version: '0.26.0' } as const;

/** The keys of the Secret, as the values name them. */
export const SECRET_KEYS = { caCert: 'caCert', gossipEncryptionKey: 'gossipEncryptionKey', bootstrapToken: 'bootstrapToken' } as const;

/** What the chart's values are made of: the cluster as its client config describes it. */
export interface ChartCluster {
  name: string;
  datacenter: string;
  /** The federation's primary datacenter (the cluster's own when it is not a secondary). */
  primaryDatacenter: string;
  consulVersion: string;
  /** The servers' addresses (the client config's retry_join). */
  servers: readonly string[];
  /** The Kubernetes API server's URL, reachable from the Consul servers, if the caller gave it. */
  k8sAuthMethodHost?: string;
}

/** What the Secret holds. */
export interface ChartSecrets {
  caPem: string;
  gossipKey: string;
  bootstrapToken: string;
}

/** A valid Kubernetes name whatever the cluster's name (a Consul name may end in a hyphen; this one cannot). */
export const secretNameFor = (clusterName: string) => `${clusterName}-consul-bootstrap`;

/**
 * The chart's values: client agents only (no servers in Kubernetes), joined to the cluster's
 * servers, verified by TLS against the cluster's CA and given their certificates by auto-encrypt,
 * gossip encrypted with the cluster's key, ACLs set up by the chart's server-acl-init job with
 * the bootstrap token, Connect injection on.
 */
export function helmValues(c: ChartCluster): Record<string, unknown> {
  const secretName = secretNameFor(c.name);
  const secondary = c.primaryDatacenter !== c.datacenter;
  return {
    global: {
      enabled: false,
      name: 'consul',
      datacenter: c.datacenter,
      image: `consul:${c.consulVersion}`,
      gossipEncryption: { secretName, secretKey: SECRET_KEYS.gossipEncryptionKey },
      tls: {
        enabled: true,
        enableAutoEncrypt: true,
        caCert: { secretName, secretKey: SECRET_KEYS.caCert },
      },
      acls: {
        manageSystemACLs: true,
        bootstrapToken: { secretName, secretKey: SECRET_KEYS.bootstrapToken },
      },
    },
    externalServers: {
      enabled: true,
      hosts: [...c.servers],
      httpsPort: 8501,
      tlsServerName: `server.${c.datacenter}.consul`,
      useSystemRoots: false,
      ...(c.k8sAuthMethodHost ? { k8sAuthMethodHost: c.k8sAuthMethodHost } : {}),
    },
    server: { enabled: false },
    client: {
      enabled: true,
      join: [...c.servers],
      grpc: true,
      // The servers live outside Kubernetes and gossip with every agent: agents advertise their node's
      // address (a hostPort), which is reachable over the peered network whatever the AKS network plugin.
      exposeGossipPorts: true,
      // A secondary's agents name the federation's primary, as the VM client config does.
      ...(secondary ? { extraConfig: JSON.stringify({ primary_datacenter: c.primaryDatacenter }) } : {}),
    },
    connectInject: { enabled: true },
  };
}

/** The Secret the values read: the CA, the gossip key and the bootstrap token (base64, as `data` holds them). */
export function secretManifest(c: Pick<ChartCluster, 'name'>, s: ChartSecrets): Record<string, unknown> {
  const b64 = (v: string) => Buffer.from(v, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secretNameFor(c.name),
      labels: { 'app.kubernetes.io/part-of': 'consul' },
    },
    type: 'Opaque',
    data: {
      [SECRET_KEYS.caCert]: b64(s.caPem),
      [SECRET_KEYS.gossipEncryptionKey]: b64(s.gossipKey),
      [SECRET_KEYS.bootstrapToken]: b64(s.bootstrapToken),
    },
  };
}

/** A YAML document with a comment above it; long lines are never folded (base64 and PEM stay whole). */
export function yamlDocument(value: Record<string, unknown>, comment: string): string {
  const doc = new YAML.Document(value);
  doc.commentBefore = comment.split('\n').map((l) => ` ${l}`).join('\n');
  return doc.toString({ lineWidth: 0 });
}
