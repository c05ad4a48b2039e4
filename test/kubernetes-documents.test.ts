/**
 * The documents of GET /v1/clusters/{id}/kubernetes, without a stack: the Helm values and the
 * Secret parse as YAML, the Secret is a valid Kubernetes Secret by Kubernetes' own schema
 * (kubernetes-models), every key path of the values is one the chart's values.yaml of the chosen
 * version has (test/fixtures/README.md), and the values point at the Secret's own keys.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { KUBERNETES_QUERY } from '../libs/contracts/src';
import { CONSUL_HELM_CHART, SECRET_KEYS, helmValues, secretManifest, secretNameFor, yamlDocument, type ChartCluster } from '../apps/api/src/kubernetes/consul-chart';
import { valuePaths, type ValueKind } from './support/helm-value-paths';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURE = `test/fixtures/consul-helm-${CONSUL_HELM_CHART.version}-values.paths.json`;
const chartPaths = (): Map<string, ValueKind> => {
  const fixture = JSON.parse(fs.readFileSync(path.join(ROOT, FIXTURE), 'utf8')) as { source: { tag: string }; paths: Record<string, ValueKind> };
  assert.equal(fixture.source.tag, `v${CONSUL_HELM_CHART.version}`, `${FIXTURE} is the index of the chart version the values are written for`);
  return new Map(Object.entries(fixture.paths));
};

/** Key paths of `values` the chart does not have, or has as the other kind (a value where it reads a mapping, or the reverse). */
function unknownPaths(values: unknown, chart: Map<string, ValueKind>): string[] {
  return [...valuePaths(values)].filter(([p, kind]) => chart.get(p) !== kind).map(([p, kind]) => `${p} (${kind}; the chart: ${chart.get(p) ?? 'no such key'})`);
}

/** Parses one YAML document strictly: any error or warning fails. */
function parseYaml(text: string): unknown {
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  assert.deepEqual([...doc.errors, ...doc.warnings].map((e) => e.message), [], 'the YAML parses without errors or warnings');
  return doc.toJS();
}

const CA = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Fub3RSZWFs\n-----END CERTIFICATE-----\n';
const GOSSIP = Buffer.alloc(32, 7).toString('base64');
const TOKEN = '3f1e2d4c-5b6a-4798-8a7b-6c5d4e3f2a1b';

const CLUSTERS: Record<string, ChartCluster> = {
  'a development cluster (one server)': { name: 'orders-dev', datacenter: 'orders-dev', primaryDatacenter: 'orders-dev', consulVersion: '1.8.7', servers: ['10.0.0.4'] },
  'a standard cluster with the API server given': {
    name: 'payments', datacenter: 'pay', primaryDatacenter: 'pay', consulVersion: '1.8.7', servers: ['172.25.16.4', '172.25.16.5', '172.25.16.6'],
    k8sAuthMethodHost: 'https://payments-aks-1a2b3c4d.hcp.westeurope.azmk8s.io:443',
  },
  "a federation's secondary, its name ending in a hyphen": { name: 'west-', datacenter: 'west', primaryDatacenter: 'east', consulVersion: '1.8.7', servers: ['127.0.20.1', '127.0.20.2', '127.0.20.3'] },
};

describe(`Kubernetes onboarding documents (${CONSUL_HELM_CHART.name} ${CONSUL_HELM_CHART.version})`, () => {
  const chart = chartPaths();

  for (const [what, c] of Object.entries(CLUSTERS)) {
    it(`${what}: the values parse, use only the chart's keys, and read the Secret's keys`, () => {
      const text = yamlDocument(helmValues(c), 'values');
      const values = parseYaml(text) as Record<string, Record<string, unknown>>;
      assert.deepEqual(values, helmValues(c), 'the YAML says what the values are');
      assert.deepEqual(unknownPaths(values, chart), [], `every key path is one of ${FIXTURE}`);

      const g = values.global as { enabled: boolean; datacenter: string; image: string; tls: Record<string, unknown>; gossipEncryption: unknown; acls: Record<string, unknown> };
      assert.equal(g.enabled, false, 'no component unless enabled: the servers are the cluster\'s');
      assert.equal(g.datacenter, c.datacenter);
      assert.equal(g.image, `consul:${c.consulVersion}`, 'the agents run the servers\' Consul version');
      assert.equal(g.tls.enabled, true);
      assert.equal(g.tls.enableAutoEncrypt, true);
      assert.equal(g.acls.manageSystemACLs, true);
      assert.deepEqual(values.server, { enabled: false });
      assert.equal(values.client!.enabled, true);
      assert.deepEqual(values.client!.join, c.servers);
      assert.equal(values.client!.grpc, true);
      assert.equal(values.connectInject!.enabled, true);
      assert.deepEqual(values.externalServers, {
        enabled: true, hosts: c.servers, httpsPort: 8501, tlsServerName: `server.${c.datacenter}.consul`, useSystemRoots: false,
        ...(c.k8sAuthMethodHost ? { k8sAuthMethodHost: c.k8sAuthMethodHost } : {}),
      });
      assert.equal(values.client!.extraConfig === undefined ? undefined : JSON.parse(String(values.client!.extraConfig)).primary_datacenter,
        c.primaryDatacenter === c.datacenter ? undefined : c.primaryDatacenter, 'a secondary\'s agents name the primary datacenter');

      // Each secret reference names the Secret and one of its keys.
      const secret = secretManifest(c, { caPem: CA, gossipKey: GOSSIP, bootstrapToken: TOKEN }) as { metadata: { name: string }; data: Record<string, string> };
      for (const ref of [g.tls.caCert, g.gossipEncryption, g.acls.bootstrapToken] as { secretName: string; secretKey: string }[]) {
        assert.equal(ref.secretName, secret.metadata.name);
        assert.ok(ref.secretKey in secret.data, `${ref.secretKey} is a key of the Secret`);
      }
    });

    it(`${what}: the Secret is a valid Kubernetes Secret holding the CA, the gossip key and the token`, async () => {
      const { Secret } = await import('kubernetes-models/v1/Secret');
      const text = yamlDocument(secretManifest(c, { caPem: CA, gossipKey: GOSSIP, bootstrapToken: TOKEN }), 'secret');
      const doc = parseYaml(text) as { apiVersion: string; kind: string; metadata: { name: string }; data: Record<string, string> };
      new Secret(doc as ConstructorParameters<typeof Secret>[0]).validate();
      assert.deepEqual([doc.apiVersion, doc.kind], ['v1', 'Secret']);
      // kubernetes-models' schema has no rule for names: the API server's (a DNS-1123 subdomain, 253 at most).
      assert.match(doc.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
      assert.ok(doc.metadata.name.length <= 253);
      assert.equal(doc.metadata.name, secretNameFor(c.name));
      const decoded = Object.fromEntries(Object.entries(doc.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      assert.ok(decoded[SECRET_KEYS.caCert] === CA && decoded[SECRET_KEYS.gossipEncryptionKey] === GOSSIP && decoded[SECRET_KEYS.bootstrapToken] === TOKEN,
        'the Secret holds the CA, the gossip key and the token, each whole');
    });
  }

  it('the checks fail where they should: a key the chart does not have, a value where it reads a mapping, a Secret value that is not base64', async () => {
    const values = helmValues(CLUSTERS['a development cluster (one server)']!) as { externalServers: Record<string, unknown>; global: Record<string, unknown> };
    const wrong = { ...values, externalServers: { ...values.externalServers, tlsServername: 'server.x.consul' }, global: { ...values.global, tls: true } };
    assert.deepEqual(unknownPaths(wrong, chart), [
      'global.tls (value; the chart: map)',
      'externalServers.tlsServername (value; the chart: no such key)',
    ]);
    const { Secret } = await import('kubernetes-models/v1/Secret');
    const secret = secretManifest(CLUSTERS['a development cluster (one server)']!, { caPem: CA, gossipKey: GOSSIP, bootstrapToken: TOKEN }) as { data: Record<string, string> };
    assert.throws(() => new Secret({ ...secret, data: { ...secret.data, caCert: CA } } as ConstructorParameters<typeof Secret>[0]).validate(), /byte/);
  });

  it('the contract takes the Kubernetes API server as an https origin only', () => {
    const ok = (v: string) => KUBERNETES_QUERY.safeParse({ k8sAuthMethodHost: v }).success;
    assert.ok(ok('https://orders-aks-1a2b3c4d.hcp.westeurope.azmk8s.io:443'));
    assert.ok(ok('https://10.0.0.1'));
    for (const bad of ['http://aks.example:443', 'https://aks.example/api', 'https://user:pw@aks.example', 'https://aks.example?x=1', 'aks.example', "https://a.example'\n- x"]) {
      assert.equal(ok(bad), false, bad);
    }
  });

  it(`docs/kubernetes.md installs the chart version the values are written for (${CONSUL_HELM_CHART.version})`, () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs/kubernetes.md'), 'utf8');
    assert.ok(doc.includes(`helm install consul ${CONSUL_HELM_CHART.name} --version ${CONSUL_HELM_CHART.version}`));
  });
});
