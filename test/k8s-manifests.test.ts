/**
 * The control plane on Kubernetes (infra/k8s, docs/deployment.md), without a cluster: every overlay
 * (each folder of infra/k8s/overlays, so a new one is covered) renders with `kubectl kustomize`,
 * every object it renders is valid by Kubernetes' schemas (test/support/kubernetes-schemas.ts), and
 * what the deployment depends on holds: non-root containers with resources, probes on the ports the
 * configuration gives, no secret outside Key Vault, the settings valid by the configuration schema,
 * the NetworkPolicies' paths, the HPA's and the PDBs' targets, one image per release and its
 * migration Job. The image recipe (infra/k8s/Dockerfile): what it runs and copies exists in the
 * build output this run made.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import YAML from 'yaml';
import { configSchema, loadConfig, type Config } from '../libs/core/src';
import { CONSOLE_DIR } from '../apps/api/src/console/console.routes';
import { SERVICE_ENV, SERVICE_NODE_FLAGS } from '../infra/local/node-flags';
import { copiesFrom, envPairs, execForm, parseDockerfile, type Stage } from './support/dockerfile';
import { nameProblem, validateKubernetesObject, type KubernetesObject } from './support/kubernetes-schemas';

const ROOT = path.resolve(__dirname, '..', '..');
const K8S = path.join(ROOT, 'infra', 'k8s');
const OVERLAYS = path.join(K8S, 'overlays');
const DOCKERFILE = path.join(K8S, 'Dockerfile');

/** A variable whose name says it holds a secret. */
const SECRET_NAME = /PASSWORD|SECRET|KEY|TOKEN|CONNECTION/;
/** Names that match and hold nothing secret, each with why. */
const NOT_SECRET: Record<string, string> = {
  AZURE_ADMIN_SSH_PUBLIC_KEY: 'a public key (docs/azure.md: the operator\'s break-glass key)',
};
/** Variables the manifests and the image set that are not the product's configuration. */
const NOT_CONFIG: Record<string, string> = {
  HOME: 'where Prisma\'s CLI keeps its state: /tmp, the writable emptyDir',
  CHECKPOINT_DISABLE: 'Prisma\'s update check, off (the pods reach no such host)',
  NODE_OPTIONS: 'Node\'s own: the V8 flags of infra/local/node-flags.ts',
  MALLOC_ARENA_MAX: 'glibc\'s: two malloc arenas (SERVICE_ENV of infra/local/node-flags.ts)',
};

// ---- kubectl ----------------------------------------------------------------------------------

/**
 * kubectl with Kustomize 5 (the overlays use `labels` and `replacements`). Debian 12's
 * kubernetes-client (1.20, Kustomize 2) is too old, so the machine's own kubectl is required
 * (docs/testing.md): without it this fails and says so, it does not skip.
 */
function requireKubectl(): void {
  let out: string;
  try {
    out = execFileSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  } catch (e) {
    throw new Error(`kubectl is not installed or does not run (${(e as Error).message.split('\n')[0]}): the Kubernetes manifests cannot be rendered. Install kubectl 1.27 or later (Kustomize 5), see docs/testing.md#the-kubernetes-manifests`, { cause: e });
  }
  const kustomize = /Kustomize Version: v(\d+)\./.exec(out);
  assert.ok(kustomize && Number(kustomize[1]) >= 5, `kubectl's Kustomize must be v5 or later for infra/k8s (found: ${out.trim().replace(/\n/g, '; ')})`);
}

function overlayNames(): string[] {
  return fs
    .readdirSync(OVERLAYS, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(OVERLAYS, d.name, 'kustomization.yaml')))
    .map((d) => d.name)
    .sort();
}

function render(dir: string): KubernetesObject[] {
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true });
  const problems = docs.flatMap((d) => [...d.errors, ...d.warnings].map((e) => e.message));
  assert.deepEqual(problems, [], `${dir} renders YAML without errors`);
  return docs.map((d) => d.toJS() as KubernetesObject).filter((o) => o);
}

// ---- reading the rendered objects ---------------------------------------------------------------

interface Port { name?: string; containerPort: number }
interface Probe { httpGet?: { path: string; port: number | string } }
interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: unknown } }
interface EnvFrom { configMapRef?: { name: string }; secretRef?: { name: string } }
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  ports?: Port[];
  env?: EnvVar[];
  envFrom?: EnvFrom[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean; capabilities?: { drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName?: string;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  initContainers?: Container[];
  containers: Container[];
  volumes?: { name: string; emptyDir?: unknown; csi?: { driver: string; volumeAttributes?: Record<string, string> } }[];
}
interface Workload { object: KubernetesObject; labels: Record<string, string>; pod: PodSpec; replicas?: number }

const byKind = (objects: KubernetesObject[], kind: string) => objects.filter((o) => o.kind === kind);
const named = (objects: KubernetesObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind} ${name} is rendered`);
  return found;
};

function workloads(objects: KubernetesObject[]): Workload[] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'Job')
    .map((o) => {
      const spec = o.spec as { replicas?: number; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
      return { object: o, labels: spec.template.metadata.labels, pod: spec.template.spec, replicas: spec.replicas };
    });
}

function component(objects: KubernetesObject[], name: string): Workload {
  const w = workloads(objects).find((x) => x.labels['app.kubernetes.io/component'] === name);
  assert.ok(w, `a workload of component ${name}`);
  return w;
}

const allContainers = (pod: PodSpec) => [...(pod.initContainers ?? []), ...pod.containers];

function matches(selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] }, labels: Record<string, string>): boolean {
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every((e) => {
    if (e.operator === 'In') return e.values!.includes(labels[e.key]);
    if (e.operator === 'NotIn') return !e.values!.includes(labels[e.key]);
    if (e.operator === 'Exists') return e.key in labels;
    return !(e.key in labels);
  });
  return byLabels && byExpressions;
}

const MEMORY_UNITS: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9, '': 1 };
function bytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G|)$/.exec(quantity);
  assert.ok(m, `a memory quantity: ${quantity}`);
  return Number(m[1]) * MEMORY_UNITS[m[2]];
}
function millicores(quantity: string): number {
  return quantity.endsWith('m') ? Number(quantity.slice(0, -1)) : Number(quantity) * 1000;
}

function containerPort(c: Container, port: number | string): number {
  if (typeof port === 'number') return port;
  const p = c.ports?.find((x) => x.name === port);
  assert.ok(p, `container ${c.name} has a port named ${port}`);
  return p.containerPort;
}

// ---- the secrets and the environment --------------------------------------------------------------

interface KeyVault {
  name: string;
  clientId: string;
  tenantId: string;
  /** Key Vault object names the provider fetches (objectName), and the files they become (objectAlias or objectName). */
  objects: { objectName: string; file: string }[];
  /** The synced Secret's name and its keys -> object names. */
  secretName: string;
  secretKeys: Map<string, string>;
}

function keyVault(objects: KubernetesObject[]): KeyVault {
  const spcs = byKind(objects, 'SecretProviderClass');
  assert.equal(spcs.length, 1, 'one SecretProviderClass');
  const spc = spcs[0];
  const spec = spc.spec as { provider: string; parameters: Record<string, string>; secretObjects: { secretName: string; data: { objectName: string; key: string }[] }[] };
  assert.equal(spec.provider, 'azure');
  assert.equal(spec.parameters.usePodIdentity, 'false', 'workload identity, not the retired pod identity');
  // The Azure provider reads `objects` as YAML: { array: [ "<YAML of one object>", ... ] }.
  const listed = (YAML.parse(spec.parameters.objects) as { array: string[] }).array.map((s) => YAML.parse(s) as { objectName: string; objectAlias?: string; objectType: string });
  assert.ok(listed.every((o) => o.objectType === 'secret'), 'every object is a Key Vault secret');
  assert.equal(spec.secretObjects.length, 1, 'one synced Secret');
  const synced = spec.secretObjects[0];
  return {
    name: spc.metadata.name,
    clientId: spec.parameters.clientID,
    tenantId: spec.parameters.tenantId,
    objects: listed.map((o) => ({ objectName: o.objectName, file: o.objectAlias ?? o.objectName })),
    secretName: synced.secretName,
    secretKeys: new Map(synced.data.map((d) => [d.key, d.objectName])),
  };
}

/** Stand-ins of the right shape for the values Key Vault holds (never real ones). */
const SECRET_SHAPES: Record<string, string> = {
  DATABASE_URL: 'postgresql://managed_consul:stand-in@example-pg.postgres.database.azure.com:5432/managed_consul?sslmode=verify-full',
  REDIS_URL: 'rediss://:stand-in@example-redis.redis.cache.windows.net:6380',
};
const standIn = (key: string) => SECRET_SHAPES[key] ?? 's'.repeat(48);

/** The environment a container's process sees: the image's ENV, then its envFrom, then its env. */
function environment(c: Container, objects: KubernetesObject[], vault: KeyVault, image: Record<string, string>): { env: Record<string, string>; set: string[] } {
  const env: Record<string, string> = { ...image };
  const set: string[] = [];
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) {
      const cm = named(objects, 'ConfigMap', from.configMapRef.name);
      for (const [k, v] of Object.entries(cm.data as Record<string, string>)) {
        env[k] = v;
        set.push(k);
      }
    } else if (from.secretRef) {
      assert.equal(from.secretRef.name, vault.secretName, `${c.name}: secrets come from the Secret the Key Vault provider keeps`);
      for (const k of vault.secretKeys.keys()) {
        env[k] = standIn(k);
        set.push(k);
      }
    } else assert.fail(`${c.name}: envFrom of an unknown source ${JSON.stringify(from)}`);
  }
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) {
      assert.equal(ref.name, vault.secretName, `${c.name}: ${e.name} comes from the Secret the Key Vault provider keeps`);
      assert.ok(vault.secretKeys.has(ref.key), `${c.name}: ${e.name} reads ${ref.key}, a key the SecretProviderClass syncs`);
      env[e.name] = standIn(ref.key);
    } else {
      assert.equal(typeof e.value, 'string', `${c.name}: ${e.name} is a value or a secretKeyRef`);
      env[e.name] = e.value!;
    }
    set.push(e.name);
  }
  return { env, set };
}

/** The variables the workload identity webhook adds to a labelled pod (azure.workload.identity/use). */
function workloadIdentityEnv(objects: KubernetesObject[], w: Workload, vault: KeyVault): Record<string, string> {
  if (w.labels['azure.workload.identity/use'] !== 'true') return {};
  const sa = named(objects, 'ServiceAccount', w.pod.serviceAccountName!);
  return {
    AZURE_CLIENT_ID: sa.metadata.annotations!['azure.workload.identity/client-id'],
    AZURE_TENANT_ID: vault.tenantId,
    AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
    AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com/',
  };
}

// ---- the image recipe ---------------------------------------------------------------------------

function recipe(): { build: Stage; runtime: Stage; env: Record<string, string> } {
  const { stages } = parseDockerfile(fs.readFileSync(DOCKERFILE, 'utf8'));
  const runtime = stages[stages.length - 1];
  const build = stages.find((s) => s.name === 'build');
  assert.ok(build, 'a build stage named build');
  return { build, runtime, env: envPairs(runtime.instructions) };
}

/** What a container runs, relative to the image's working directory: `node <args[0]>`. */
function entryPoint(c: Container, runtime: Stage): string {
  const entrypoint = execForm(runtime.instructions.find((i) => i.keyword === 'ENTRYPOINT'));
  assert.deepEqual(entrypoint, ['node'], 'the image runs node; each role names its script');
  assert.equal(c.command, undefined, `${c.name}: keeps the image's entrypoint`);
  const args = c.args ?? execForm(runtime.instructions.find((i) => i.keyword === 'CMD'));
  return args[0];
}

// ---- the tests ----------------------------------------------------------------------------------

describe('the control plane on Kubernetes (infra/k8s)', () => {
  before(() => requireKubectl());

  it('finds the overlays to render in infra/k8s/overlays', () => {
    assert.ok(overlayNames().includes('aks'), 'the production overlay aks');
  });

  for (const overlay of fs.existsSync(OVERLAYS) ? overlayNames() : []) {
    describe(`overlay ${overlay}`, () => {
      let objects: KubernetesObject[] = [];
      let vault: KeyVault;
      let image: Record<string, string>;
      before(() => {
        objects = render(path.join(OVERLAYS, overlay));
        vault = keyVault(objects);
        image = recipe().env;
      });

      it('renders objects that are valid by Kubernetes\' schemas (kubernetes-models, and the CRD\'s for SecretProviderClass)', async () => {
        assert.ok(objects.length > 10, 'the overlay renders the control plane');
        for (const o of objects) {
          await validateKubernetesObject(o).catch((e: unknown) => assert.fail(`${o.kind} ${o.metadata.name} is not valid: ${(e as Error).message}`));
          assert.equal(nameProblem(o), undefined);
        }
        const keys = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
        assert.equal(new Set(keys).size, keys.length, 'no object twice');
        const ns = byKind(objects, 'Namespace');
        for (const o of objects.filter((x) => x.kind !== 'Namespace')) assert.ok(o.metadata.namespace, `${o.kind} ${o.metadata.name} names its namespace`);
        for (const n of ns) assert.equal(n.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted', 'the namespace enforces the restricted Pod Security profile');
      });

      it('runs every container as a non-root user, without privileges, with requests and limits', () => {
        const all = workloads(objects);
        assert.deepEqual(all.map((w) => w.labels['app.kubernetes.io/component']).sort(), ['api', 'migrate', 'worker']);
        for (const w of all) {
          const pod = w.pod.securityContext;
          assert.equal(pod?.runAsNonRoot, true, `${w.object.metadata.name}: runAsNonRoot`);
          assert.ok(pod?.runAsUser && pod.runAsUser > 0, `${w.object.metadata.name}: a numeric non-root uid`);
          assert.equal(pod?.seccompProfile?.type, 'RuntimeDefault', `${w.object.metadata.name}: the runtime's seccomp profile`);
          for (const c of allContainers(w.pod)) {
            const where = `${w.object.metadata.name}/${c.name}`;
            assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where}: no privilege escalation`);
            assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where}: a read-only root`);
            assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${where}: every capability dropped`);
            for (const kind of ['requests', 'limits'] as const) {
              assert.ok(c.resources?.[kind]?.cpu && c.resources[kind].memory, `${where}: cpu and memory ${kind}`);
            }
            assert.ok(bytes(c.resources!.limits!.memory) >= bytes(c.resources!.requests!.memory), `${where}: the memory limit is not below the request`);
            assert.ok(millicores(c.resources!.limits!.cpu) >= millicores(c.resources!.requests!.cpu), `${where}: the cpu limit is not below the request`);
          }
        }
      });

      it('runs one image of one release, tagged (not latest), in every role; the release\'s migration Job is named after its tag', () => {
        const images = new Set(workloads(objects).flatMap((w) => allContainers(w.pod).map((c) => c.image)));
        assert.equal(images.size, 1, `one image: ${[...images].join(', ')}`);
        const [ref] = images;
        const m = /^([^@]+?)(?::([\w][\w.-]{0,127}))?(?:@sha256:[0-9a-f]{64})?$/.exec(ref);
        assert.ok(m?.[2], `${ref} has a tag`);
        assert.notEqual(m[2], 'latest', 'a release is a tag of its own, not latest');
        const jobs = byKind(objects, 'Job');
        assert.equal(jobs.length, 1, 'one migration Job');
        assert.equal(jobs[0].metadata.name, `managed-consul-migrate-${m[2]}`, 'the Job of this release (a Job\'s pod template cannot change: a release is a new Job)');
        const migrate = component(objects, 'migrate');
        assert.deepEqual(migrate.pod.containers.map((c) => c.args), [['dist/apps/migrate/src/main.js', 'deploy']]);
        for (const name of ['api', 'worker']) {
          const w = component(objects, name);
          assert.deepEqual(w.pod.initContainers?.map((c) => c.args?.slice(0, 2)), [['dist/apps/migrate/src/main.js', 'wait']], `${name} pods wait for their release's migrations`);
          const strategy = (w.object.spec as { strategy: { rollingUpdate: { maxUnavailable: number } } }).strategy;
          assert.equal(strategy.rollingUpdate.maxUnavailable, 0, `${name}: the old release runs until the new one is ready`);
        }
      });

      it('probes the API\'s /readyz and /healthz and the worker\'s /healthz on the ports the configuration gives them', () => {
        const api = component(objects, 'api').pod.containers.find((c) => c.name === 'api')!;
        const worker = component(objects, 'worker').pod.containers.find((c) => c.name === 'worker')!;
        const config = (c: Container, w: Workload) => loadConfig({ ...environment(c, objects, vault, image).env, ...workloadIdentityEnv(objects, w, vault) });
        const apiConfig = config(api, component(objects, 'api'));
        const workerConfig = config(worker, component(objects, 'worker'));
        const probe = (c: Container, p: Probe | undefined) => ({ path: p?.httpGet?.path, port: p?.httpGet ? containerPort(c, p.httpGet.port) : undefined });
        assert.deepEqual(probe(api, api.readinessProbe), { path: '/readyz', port: apiConfig.PORT });
        assert.deepEqual(probe(api, api.livenessProbe), { path: '/healthz', port: apiConfig.PORT });
        assert.deepEqual(probe(api, api.startupProbe), { path: '/healthz', port: apiConfig.PORT });
        assert.deepEqual(probe(worker, worker.livenessProbe), { path: '/healthz', port: workerConfig.WORKER_PORT });
        assert.deepEqual(probe(worker, worker.startupProbe), { path: '/healthz', port: workerConfig.WORKER_PORT });
        assert.equal(apiConfig.HOST, '0.0.0.0', 'the API listens on the pod\'s address');
        assert.deepEqual(api.ports?.map((p) => p.containerPort).sort(), [apiConfig.PORT, apiConfig.UI_PROXY_PORT].sort(), 'the API\'s ports: HTTP and the Consul UI proxy');

        const service = named(objects, 'Service', 'managed-consul-api');
        const spec = service.spec as { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[] };
        assert.ok(matches({ matchLabels: spec.selector }, component(objects, 'api').labels), 'the Service selects the API pods');
        assert.ok(!matches({ matchLabels: spec.selector }, component(objects, 'worker').labels), 'and not the workers');
        assert.deepEqual(spec.ports.map((p) => containerPort(api, p.targetPort)).sort(), [apiConfig.PORT, apiConfig.UI_PROXY_PORT].sort());
      });

      it('holds no secret in a manifest: none in a Secret, a ConfigMap or a value; every secret is Key Vault\'s', () => {
        assert.deepEqual(byKind(objects, 'Secret').map((s) => s.metadata.name), [], 'no Secret object (the Key Vault provider keeps its own)');
        const credentialsInUrl = /:\/\/[^/\s:@]+:[^/\s@]+@/;
        for (const cm of byKind(objects, 'ConfigMap')) {
          for (const [k, v] of Object.entries((cm.data ?? {}) as Record<string, string>)) {
            assert.ok(!SECRET_NAME.test(k) || k in NOT_SECRET, `ConfigMap ${cm.metadata.name}: ${k} is named like a secret: it belongs in Key Vault`);
            assert.ok(!credentialsInUrl.test(v), `ConfigMap ${cm.metadata.name}: ${k} holds a URL with credentials`);
          }
        }
        for (const w of workloads(objects)) {
          for (const c of allContainers(w.pod)) {
            for (const e of c.env ?? []) {
              if (SECRET_NAME.test(e.name) && !(e.name in NOT_SECRET)) assert.ok(e.valueFrom?.secretKeyRef, `${w.object.metadata.name}/${c.name}: ${e.name} comes from Key Vault, not a value`);
              assert.ok(!credentialsInUrl.test(e.value ?? ''), `${w.object.metadata.name}/${c.name}: ${e.name} holds a URL with credentials`);
            }
          }
        }
        // What the provider syncs is what it fetches, and the pods that read the Secret mount the volume
        // that keeps it, as the service account the identity is federated with.
        const fetched = new Set(vault.objects.map((o) => o.objectName));
        for (const [key, object] of vault.secretKeys) assert.ok(fetched.has(object), `${key} is synced from ${object}, an object the provider fetches`);
        const sa = named(objects, 'ServiceAccount', 'managed-consul');
        assert.equal(sa.metadata.annotations?.['azure.workload.identity/client-id'], vault.clientId, 'the provider signs in as the pods\' workload identity');
        for (const w of workloads(objects)) {
          assert.equal(w.pod.serviceAccountName, 'managed-consul', `${w.object.metadata.name}: the federated service account`);
          const mounted = (w.pod.volumes ?? []).filter((v) => v.csi?.driver === 'secrets-store.csi.k8s.io').map((v) => v.csi!.volumeAttributes?.secretProviderClass);
          assert.deepEqual(mounted, [vault.name], `${w.object.metadata.name}: mounts the Key Vault volume (the synced Secret exists while a pod does)`);
        }
        for (const name of ['api', 'worker']) assert.equal(component(objects, name).labels['azure.workload.identity/use'], 'true', `${name}: gets the workload identity (DefaultAzureCredential)`);
      });

      it('sets only variables the configuration schema knows, with values it accepts; the KEK is Key Vault\'s file and LOCAL_DIR is writable', () => {
        const known = new Set(Object.keys(configSchema.shape));
        for (const w of workloads(objects)) {
          for (const c of allContainers(w.pod)) {
            const where = `${w.object.metadata.name}/${c.name}`;
            const { env, set } = environment(c, objects, vault, image);
            const unknown = [...new Set([...set, ...Object.keys(image)])].filter((k) => !known.has(k) && !(k in NOT_CONFIG));
            assert.deepEqual(unknown, [], `${where}: every variable is one of libs/core/src/config.ts`);
            let config: Config;
            try {
              config = loadConfig({ ...env, ...workloadIdentityEnv(objects, w, vault) });
            } catch (e) {
              assert.fail(`${where}: the configuration refuses its settings: ${(e as Error).message}`);
            }
            const mounts = c.volumeMounts ?? [];
            const under = (file: string, volume: (v: NonNullable<PodSpec['volumes']>[number]) => boolean) =>
              mounts.some((m) => file.startsWith(`${m.mountPath}/`) && (w.pod.volumes ?? []).some((v) => v.name === m.name && volume(v)));
            assert.ok(under(config.LOCAL_DIR, (v) => v.emptyDir !== undefined), `${where}: LOCAL_DIR (${config.LOCAL_DIR}) is on a writable emptyDir (the root is read-only)`);
            if (w.labels['app.kubernetes.io/component'] === 'migrate' || c.args?.[1] === 'wait') continue;
            const kekFile = vault.objects.find((o) => o.objectName === 'kek')?.file;
            assert.ok(kekFile, 'Key Vault holds the KEK (objectName kek)');
            assert.ok(mounts.some((m) => config.KEK_FILE === `${m.mountPath}/${kekFile}` && (w.pod.volumes ?? []).some((v) => v.name === m.name && v.csi?.volumeAttributes?.secretProviderClass === vault.name)),
              `${where}: KEK_FILE (${config.KEK_FILE}) is the KEK Key Vault mounts; a KEK_FILE elsewhere would be made per pod`);
            assert.equal(config.defaultTarget, 'azure', `${where}: new clusters go to Azure`);
            assert.equal(config.BILLING_EXPORTER, 'marketplace', `${where}: usage goes to the marketplace, not to a pod's files`);
            assert.deepEqual(env.NODE_OPTIONS?.split(/\s+/), [...SERVICE_NODE_FLAGS], `${where}: runs with the V8 flags npm start gives the API and the worker (infra/local/node-flags.ts)`);
            for (const [k, v] of Object.entries(SERVICE_ENV)) assert.equal(env[k], v, `${where}: ${k} as npm start gives the API and the worker (infra/local/node-flags.ts)`);
          }
        }
      });

      it('lets each process reach only what it needs (default deny; DNS, PostgreSQL, Redis, Azure, the clusters\' endpoints) and the API only from the ingress', () => {
        const policies = byKind(objects, 'NetworkPolicy').map((p) => ({ name: p.metadata.name, spec: p.spec as NetworkPolicySpec }));
        const deny = policies.find((p) => Object.keys(p.spec.podSelector).length === 0);
        assert.ok(deny, 'a policy selects every pod');
        assert.deepEqual([...deny.spec.policyTypes].sort(), ['Egress', 'Ingress'], 'and isolates both ways');
        assert.equal((deny.spec.ingress ?? []).length + (deny.spec.egress ?? []).length, 0, 'allowing nothing');

        const paths = (labels: Record<string, string>, direction: 'ingress' | 'egress') =>
          policies
            .filter((p) => matches(p.spec.podSelector, labels) && p.spec.policyTypes.includes(direction === 'ingress' ? 'Ingress' : 'Egress'))
            .flatMap((p) => (p.spec[direction] ?? []).map((rule) => ({ policy: p.name, rule })));
        const ports = (labels: Record<string, string>) =>
          paths(labels, 'egress')
            .flatMap(({ policy, rule }) => {
              assert.ok(rule.ports?.length, `${policy}: every egress rule names its ports`);
              assert.ok(rule.to?.length, `${policy}: every egress rule names its peers`);
              return rule.ports.map((p) => `${p.protocol ?? 'TCP'}/${p.port}${p.endPort ? `-${p.endPort}` : ''}`);
            })
            .sort();
        const api = component(objects, 'api').labels;
        const worker = component(objects, 'worker').labels;
        const migrate = component(objects, 'migrate').labels;
        // PostgreSQL 5432, Azure Cache for Redis's TLS port 6380, HTTPS 443 for Azure; the clusters'
        // private endpoints: 8501 and the NAT ports of infra/arm/cluster.json (HTTPS 50000-50099, RPC 50100-50199).
        assert.deepEqual(ports(worker), ['TCP/443', 'TCP/50000-50199', 'TCP/53', 'TCP/5432', 'TCP/6380', 'TCP/8501', 'UDP/53']);
        assert.deepEqual(ports(api), ['TCP/443', 'TCP/50000-50099', 'TCP/53', 'TCP/5432', 'TCP/6380', 'TCP/8501', 'UDP/53']);
        assert.deepEqual(ports(migrate), ['TCP/53', 'TCP/5432', 'UDP/53']);
        const template = JSON.parse(fs.readFileSync(path.join(ROOT, 'infra', 'arm', 'cluster.json'), 'utf8')) as unknown;
        const natRanges = JSON.stringify(template).match(/"frontendPortRangeStart":\s*\d+,\s*"frontendPortRangeEnd":\s*\d+/g)?.map((s) => s.match(/\d+/g)!.map(Number));
        assert.deepEqual(natRanges, [[50000, 50099], [50100, 50199]], 'the NAT ranges the policies open are the cluster template\'s');

        for (const { policy, rule } of [...paths(api, 'egress'), ...paths(worker, 'egress'), ...paths(migrate, 'egress')]) {
          for (const peer of rule.to ?? []) {
            if (peer.ipBlock) {
              assert.ok(!peer.ipBlock.cidr.startsWith('192.0.2.'), `${policy}: the overlay gives its address block (the base's ${peer.ipBlock.cidr} is TEST-NET-1, a placeholder)`);
              if (peer.ipBlock.cidr === '0.0.0.0/0') {
                assert.deepEqual(rule.ports?.map((p) => p.port), [443], `${policy}: the Internet on HTTPS only`);
                assert.deepEqual([...(peer.ipBlock.except ?? [])].sort(), ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'], `${policy}: not private addresses`);
              }
            } else {
              assert.deepEqual(rule.ports?.map((p) => p.port), [53, 53], `${policy}: in the cluster, DNS only`);
              assert.equal(peer.podSelector?.matchLabels?.['k8s-app'], 'kube-dns', `${policy}: the cluster's DNS`);
            }
          }
        }

        const apiConfig = loadConfig({ ...environment(component(objects, 'api').pod.containers[0], objects, vault, image).env });
        const ingress = paths(api, 'ingress');
        assert.equal(ingress.length, 1, 'one way in to the API');
        assert.deepEqual(ingress[0].rule.from?.map((f) => f.namespaceSelector?.matchLabels), [{ 'kubernetes.io/metadata.name': 'app-routing-system' }], 'from the ingress controller\'s namespace');
        assert.deepEqual(ingress[0].rule.ports?.map((p) => p.port).sort(), [apiConfig.PORT, apiConfig.UI_PROXY_PORT].sort());
        assert.deepEqual(paths(worker, 'ingress'), [], 'nothing reaches the worker');
        assert.deepEqual(paths(migrate, 'ingress'), [], 'nothing reaches the migration Job');
      });

      it('scales the API on CPU with its HPA, and keeps pods through voluntary disruptions with PDBs that select them', () => {
        const hpas = byKind(objects, 'HorizontalPodAutoscaler');
        assert.equal(hpas.length, 1);
        const hpa = hpas[0].spec as { scaleTargetRef: { apiVersion: string; kind: string; name: string }; minReplicas: number; maxReplicas: number; metrics: { type: string; resource: { name: string; target: { type: string } } }[] };
        const api = component(objects, 'api');
        assert.deepEqual(hpa.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: api.object.metadata.name }, 'the HPA scales the API Deployment');
        assert.ok(hpa.minReplicas >= 1 && hpa.minReplicas <= hpa.maxReplicas);
        assert.equal(api.replicas, undefined, 'the HPA owns the API\'s count: a count in the Deployment would be put back at every apply');
        assert.deepEqual(hpa.metrics.map((m) => [m.type, m.resource.name, m.resource.target.type]), [['Resource', 'cpu', 'Utilization']]);
        assert.ok(api.pod.containers.every((c) => c.resources?.requests?.cpu), 'utilization is of the CPU requests');

        const pdbs = byKind(objects, 'PodDisruptionBudget');
        const deployments = workloads(objects).filter((w) => w.object.kind === 'Deployment');
        assert.equal(pdbs.length, deployments.length, 'a PDB per Deployment');
        for (const pdb of pdbs) {
          const spec = pdb.spec as { selector: { matchLabels: Record<string, string> }; minAvailable?: number; maxUnavailable?: number };
          const selected = workloads(objects).filter((w) => matches(spec.selector, w.labels));
          assert.equal(selected.length, 1, `PDB ${pdb.metadata.name} selects the pods of one workload`);
          assert.equal(selected[0].object.kind, 'Deployment');
          const replicas = selected[0].object.metadata.name === api.object.metadata.name ? hpa.minReplicas : selected[0].replicas!;
          // A budget that allows no eviction blocks every node drain and AKS upgrade.
          if (spec.minAvailable !== undefined) assert.ok(spec.minAvailable < replicas, `PDB ${pdb.metadata.name}: minAvailable ${spec.minAvailable} leaves an eviction possible with ${replicas} replicas`);
          else assert.ok((spec.maxUnavailable ?? 0) >= 1, `PDB ${pdb.metadata.name}: one may go`);
        }
      });

      it('serves the console\'s and the Consul UI\'s hosts of the configuration through the ingress, if the overlay has one', () => {
        const ingresses = byKind(objects, 'Ingress');
        if (ingresses.length === 0) return;
        const api = component(objects, 'api');
        const config = loadConfig({ ...environment(api.pod.containers[0], objects, vault, image).env });
        const service = named(objects, 'Service', 'managed-consul-api').spec as { ports: { name: string; targetPort: string }[] };
        const hosts = new Map<string, number>();
        for (const ing of ingresses) {
          const spec = ing.spec as { tls: { hosts: string[] }[]; rules: { host: string; http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[] };
          assert.ok(ing.metadata.annotations?.['kubernetes.azure.com/tls-cert-keyvault-uri']?.startsWith('https://'), `${ing.metadata.name}: its certificate is Key Vault's`);
          for (const rule of spec.rules) {
            assert.ok(spec.tls.some((t) => t.hosts.includes(rule.host)), `${rule.host} is served over TLS`);
            for (const p of rule.http.paths) {
              assert.equal(p.backend.service.name, 'managed-consul-api');
              const port = service.ports.find((x) => x.name === p.backend.service.port.name);
              assert.ok(port, `the Service has the port ${p.backend.service.port.name}`);
              hosts.set(rule.host, containerPort(api.pod.containers[0], port.targetPort));
            }
          }
        }
        assert.deepEqual(Object.fromEntries(hosts), {
          [new URL(config.CONSOLE_ORIGIN!).host]: config.PORT,
          [`*.${config.CONSOLE_UI_HOST_SUFFIX}`]: config.UI_PROXY_PORT,
        }, 'the console at CONSOLE_ORIGIN, each cluster\'s UI at <cluster-id>.CONSOLE_UI_HOST_SUFFIX');
      });

      it('runs what the image recipe builds: each role\'s script is in the build output', () => {
        const { runtime } = recipe();
        for (const w of workloads(objects)) {
          for (const c of allContainers(w.pod)) {
            const script = entryPoint(c, runtime);
            assert.ok(fs.existsSync(path.join(ROOT, script)), `${w.object.metadata.name}/${c.name} runs ${script}, which the build makes`);
            assert.ok(copiesFrom(runtime.instructions, 'build').some((cp) => script.startsWith(`${cp.destination.replace(/^\.\//, '')}/`)), `${script} is copied into the image`);
          }
        }
      });
    });
  }
});

interface NetworkPolicyPeer { ipBlock?: { cidr: string; except?: string[] }; namespaceSelector?: { matchLabels?: Record<string, string> }; podSelector?: { matchLabels?: Record<string, string> } }
interface NetworkPolicyPort { protocol?: string; port: number; endPort?: number }
interface NetworkPolicyRule { from?: NetworkPolicyPeer[]; to?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }
interface NetworkPolicySpec {
  podSelector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
  policyTypes: string[];
  ingress?: NetworkPolicyRule[];
  egress?: NetworkPolicyRule[];
}

describe('the image recipe (infra/k8s/Dockerfile)', () => {
  const { build, runtime, env } = recipe();

  it('builds in one stage and runs from another: production dependencies only, as a numeric non-root user', () => {
    assert.match(runtime.from, /^node:20(\.\d+)*-[a-z]+-slim$/, 'a Node 20 slim base');
    assert.equal(build.from, runtime.from, 'built on the Node it runs on');
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join(' && ');
    assert.match(runs, /npm ci\b/, 'dependencies from the lock');
    assert.match(runs, /npm prune --omit=dev\b/, 'dev dependencies pruned before the copy');
    assert.deepEqual(runtime.instructions.filter((i) => i.keyword === 'RUN' && /\bnpm\b/.test(i.args)), [], 'nothing installed in the runtime stage');
    const user = runtime.instructions.filter((i) => i.keyword === 'USER').pop()?.args;
    assert.match(user ?? '', /^[1-9]\d*(:[1-9]\d*)?$/, 'a numeric, non-root USER (runAsNonRoot can check it)');
    for (const w of ['api', 'worker', 'migrate']) assert.ok(fs.readFileSync(DOCKERFILE, 'utf8').includes(`#   ${w} `), `the recipe documents the ${w} role`);
  });

  it('copies out of the build stage only files the build makes, and everything the processes read at run time', () => {
    const copies = copiesFrom(runtime.instructions, 'build');
    const workdir = build.instructions.filter((i) => i.keyword === 'WORKDIR').pop()!.args;
    for (const c of copies) {
      assert.ok(c.source.startsWith(`${workdir}/`), `${c.source} is in the build's ${workdir}`);
      const relative = c.source.slice(workdir.length + 1);
      assert.ok(fs.existsSync(path.join(ROOT, relative)), `${relative} exists in the build output`);
      assert.notEqual(relative, 'dist', 'not the whole of dist (tests and benchmarks stay out)');
    }
    const copied = (file: string) => copies.some((c) => file === c.destination.replace(/^\.\//, '') || file.startsWith(`${c.destination.replace(/^\.\//, '')}/`));
    const readAtRunTime = [
      path.relative(ROOT, path.join(CONSOLE_DIR, 'index.html')), // the API serves the console
      'infra/arm/cluster.json', // the worker's Azure target deploys it (target-registry.ts)
      'prisma/migrations', // migrate deploy and wait (apps/migrate)
      'prisma/schema.prisma',
      'dist/apps/migrate/src/prisma-config.js',
      'node_modules/prisma/build/index.js', // the migrate role runs Prisma's CLI
      'node_modules/swagger-ui-dist/package.json', // /docs
    ];
    for (const file of readAtRunTime) {
      assert.ok(fs.existsSync(path.join(ROOT, file)), `${file} exists after the build`);
      assert.ok(copied(file), `${file} is copied into the runtime image`);
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const dep of ['prisma', 'swagger-ui-dist']) assert.ok(pkg.dependencies[dep], `${dep} is a production dependency (npm prune keeps it)`);
  });

  it('runs the API by default, the worker and migrate as documented, each script in the build output', () => {
    assert.deepEqual(execForm(runtime.instructions.find((i) => i.keyword === 'ENTRYPOINT')), ['node']);
    const cmd = execForm(runtime.instructions.find((i) => i.keyword === 'CMD'));
    assert.deepEqual(cmd, ['dist/apps/api/src/main.js']);
    const text = fs.readFileSync(DOCKERFILE, 'utf8');
    const documented = [...text.matchAll(/^#\s+(?:\w+\s+)?node (dist\/\S+\.js)/gm)].map((m) => m[1]);
    assert.deepEqual([...new Set(documented)].sort(), ['dist/apps/api/src/main.js', 'dist/apps/migrate/src/main.js', 'dist/apps/worker/src/main.js']);
    for (const script of documented) assert.ok(fs.existsSync(path.join(ROOT, script)), `${script} exists in the build output`);
    assert.equal(env.NODE_ENV, 'production');
  });

  it('leaves the clone\'s local state out of the build context (.dockerignore)', () => {
    const ignored = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const p of ['.local', 'node_modules', 'dist', '.git']) assert.ok(ignored.includes(p), `${p} is not sent to the builder (keys, databases, a foreign build)`);
  });
});
