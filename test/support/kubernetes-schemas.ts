/**
 * Kubernetes objects validated against Kubernetes' own schemas, offline: built-in kinds with
 * kubernetes-models (generated from Kubernetes' OpenAPI, Ajv underneath), custom resources with
 * their CRD's openAPIV3Schema kept in test/fixtures (provenance in test/fixtures/README.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';

export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

interface CrdFixture {
  source: { repository: string; tag: string; commit: string; path: string };
  group: string;
  version: string;
  kind: string;
  openAPIV3Schema: Schema;
}

type Schema = { type?: string; properties?: Record<string, Schema>; items?: Schema; additionalProperties?: Schema | boolean; 'x-kubernetes-preserve-unknown-fields'?: boolean; [k: string]: unknown };

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures');
const CRDS = ['secrets-store-csi-driver-v1.6.0-secretproviderclass.schema.json'];

/**
 * A structural schema prunes the fields it does not declare, and the API server's strict field
 * validation (kubectl's default) refuses an object that has any: the schema closed accordingly.
 * https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning
 * https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation
 */
function closed(schema: Schema): Schema {
  const out: Schema = { ...schema };
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, closed(v)]));
    if (schema.additionalProperties === undefined && !schema['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
  }
  if (schema.items) out.items = closed(schema.items);
  if (typeof schema.additionalProperties === 'object') out.additionalProperties = closed(schema.additionalProperties);
  return out;
}

let crdValidators: Map<string, ValidateFunction> | undefined;
function crdValidator(apiVersion: string, kind: string): ValidateFunction | undefined {
  if (!crdValidators) {
    // OpenAPI's x-kubernetes-* keywords are not JSON Schema's: strict off lets Ajv ignore them.
    const ajv = new Ajv({ allErrors: true, strict: false });
    crdValidators = new Map(
      CRDS.map((file) => {
        const crd = JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8')) as CrdFixture;
        return [`${crd.group}/${crd.version}/${crd.kind}`, ajv.compile(closed(crd.openAPIV3Schema))];
      }),
    );
  }
  return crdValidators.get(`${apiVersion}/${kind}`);
}

/** Throws, saying what is wrong, unless the object is valid by its kind's schema. */
export async function validateKubernetesObject(object: KubernetesObject): Promise<void> {
  const crd = crdValidator(object.apiVersion, object.kind);
  if (crd) {
    const { kind, metadata } = object;
    if (!crd(object)) throw new Error(`${kind} ${metadata.name}: ${JSON.stringify(crd.errors)}`);
    return;
  }
  // kubernetes-models lays its models out as <group>/<version>/<Kind> (the core group as v1/<Kind>).
  let model: { new (data: unknown): { validate(): void } } | undefined;
  try {
    const mod = (await import(`kubernetes-models/${object.apiVersion}/${object.kind}`)) as Record<string, { new (data: unknown): { validate(): void } }>;
    model = mod[object.kind];
  } catch {
    model = undefined;
  }
  if (!model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}: neither kubernetes-models nor a CRD fixture (test/fixtures) has it`);
  new model(object).validate();
}

/**
 * The API server's rule for most objects' names: a DNS-1123 subdomain (RFC 1123), 253 characters
 * at most; a Job's also names its pods' label, so 63 at most
 * (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/,
 * https://kubernetes.io/docs/concepts/workloads/controllers/job/#writing-a-job-spec).
 * kubernetes-models' schemas do not check names.
 */
export function nameProblem(object: KubernetesObject): string | undefined {
  const name = object.metadata.name;
  const max = object.kind === 'Job' ? 63 : 253;
  if (name.length > max) return `${object.kind} ${name}: longer than ${max} characters`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name)) return `${object.kind} ${name}: not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')`;
  return undefined;
}
