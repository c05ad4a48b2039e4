/**
 * What ARM does with a deployment's template before anything is deployed: the
 * parameters checked against their declarations and the template language's
 * expressions evaluated, so that the local ARM's preflight (arm-preflight.ts)
 * sees the resources with the names, zones and properties Azure would see.
 *
 * Only the functions our templates use are implemented, each as the template
 * function reference describes it
 * (https://learn.microsoft.com/azure/azure-resource-manager/templates/template-functions);
 * an unknown function is an invalid template here, as a misspelt one is in Azure.
 * `reference()` and the list functions name values that exist only while the
 * deployment runs: they evaluate to RUNTIME, and a preflight rule never decides
 * on such a value (Azure's preflight is best effort for the same reason:
 * https://learn.microsoft.com/azure/azure-resource-manager/bicep/deploy-preflight#limitations).
 */
import { createHash } from 'node:crypto';

/** A value known only while the deployment runs (`reference()`). */
export const RUNTIME: unique symbol = Symbol('runtime value');
export type Value = unknown;

/** The template or its parameters are not valid: ARM answers 400 InvalidTemplate. */
export class TemplateError extends Error {}

export interface DeploymentScope {
  subscriptionId: string;
  resourceGroup: string;
  /** The resource group's location. */
  location: string;
  tenantId: string;
  deploymentName: string;
  /** Where the template was linked from (a deployment with `templateLink`); absent for an inline template. */
  templateLinkUri?: string;
  /** The zones `pickZones` answers for a location (the catalog's table in the local ARM). */
  zonesOf(location: string): string[];
}

export interface EvaluatedResource {
  type: string;
  apiVersion: string;
  name: string | typeof RUNTIME;
  /** false: the resource's condition is false, ARM skips it (no deployment, no authorization check). */
  deployed: boolean;
  location?: Value;
  zones?: Value;
  sku?: Value;
  properties?: Value;
  scope?: Value;
  identity?: Value;
}

export interface EvaluatedDeployment {
  parameters: Record<string, Value>;
  resources: EvaluatedResource[];
}

type Json = Record<string, unknown>;

const failed = (message: string) => new TemplateError(`Deployment template validation failed: '${message}'.`);

/** Parameter values as ARM checks them (https://learn.microsoft.com/azure/azure-resource-manager/templates/parameters). */
function checkParameter(name: string, decl: Json, value: Value): void {
  const type = String(decl.type).toLowerCase();
  const jsonType = Array.isArray(value) ? 'Array' : value === null ? 'Null' : typeof value === 'object' ? 'Object' : typeof value === 'number' ? (Number.isInteger(value) ? 'Integer' : 'Float') : typeof value === 'boolean' ? 'Boolean' : 'String';
  const expected: Record<string, string[]> = { string: ['String'], securestring: ['String'], int: ['Integer'], bool: ['Boolean'], object: ['Object'], secureobject: ['Object'], array: ['Array'] };
  if (!expected[type]) throw failed(`The template parameter '${name}' has an unknown type '${String(decl.type)}'`);
  if (!expected[type].includes(jsonType)) throw failed(`Template parameter JToken type is not valid. Expected '${expected[type].join(', ')}'. Actual '${jsonType}'. Please see https://aka.ms/arm-create-parameter-file for usage details`);
  const allowed = decl.allowedValues as unknown[] | undefined;
  if (allowed && !allowed.some((a) => JSON.stringify(a) === JSON.stringify(value))) {
    throw failed(`The provided value '${String(value)}' for the template parameter '${name}' is not valid. The parameter value is not part of the allowed value(s): '${allowed.join(',')}'`);
  }
  const length = typeof value === 'string' || Array.isArray(value) ? value.length : undefined;
  if (length !== undefined && typeof decl.minLength === 'number' && length < decl.minLength) {
    throw failed(`The provided value for the template parameter '${name}' is not valid. Length of the value should be greater than or equal to '${decl.minLength}'`);
  }
  if (length !== undefined && typeof decl.maxLength === 'number' && length > decl.maxLength) {
    throw failed(`The provided value for the template parameter '${name}' is not valid. Length of the value should be less than or equal to '${decl.maxLength}'`);
  }
  if (typeof value === 'number' && typeof decl.minValue === 'number' && value < decl.minValue) {
    throw failed(`The provided value for the template parameter '${name}' is not valid. Expected a value greater than or equal to '${decl.minValue}'. Actual value is '${value}'`);
  }
  if (typeof value === 'number' && typeof decl.maxValue === 'number' && value > decl.maxValue) {
    throw failed(`The provided value for the template parameter '${name}' is not valid. Expected a value less than or equal to '${decl.maxValue}'. Actual value is '${value}'`);
  }
}

// ---------------------------------------------------------------------------
// The expression language (https://learn.microsoft.com/azure/azure-resource-manager/templates/template-expressions)

type Node =
  | { kind: 'literal'; value: Value }
  | { kind: 'call'; name: string; args: Node[] }
  | { kind: 'member'; target: Node; property: string }
  | { kind: 'index'; target: Node; index: Node };

function parseExpression(text: string): Node {
  let at = 0;
  const space = () => {
    while (at < text.length && /\s/.test(text[at])) at++;
  };
  const expect = (c: string) => {
    space();
    if (text[at] !== c) throw failed(`The template language expression '${text}' is not valid: expected '${c}' at position ${at}`);
    at++;
  };
  const primary = (): Node => {
    space();
    const c = text[at];
    if (c === "'") {
      let s = '';
      at++;
      for (;;) {
        if (at >= text.length) throw failed(`The template language expression '${text}' is not valid: the string is not terminated`);
        if (text[at] === "'") {
          if (text[at + 1] === "'") {
            s += "'";
            at += 2;
            continue;
          }
          at++;
          break;
        }
        s += text[at++];
      }
      return { kind: 'literal', value: s };
    }
    const num = /^-?\d+/.exec(text.slice(at));
    if (num) {
      at += num[0].length;
      return { kind: 'literal', value: Number(num[0]) };
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(at));
    if (!ident) throw failed(`The template language expression '${text}' is not valid: unexpected '${c ?? 'end'}' at position ${at}`);
    at += ident[0].length;
    space();
    if (text[at] !== '(') {
      if (/^(true|false)$/i.test(ident[0])) return { kind: 'literal', value: ident[0].toLowerCase() === 'true' };
      if (/^null$/i.test(ident[0])) return { kind: 'literal', value: null };
      throw failed(`The template language expression '${text}' is not valid: '${ident[0]}' is not a function call`);
    }
    at++;
    const args: Node[] = [];
    space();
    if (text[at] === ')') at++;
    else {
      for (;;) {
        args.push(postfix());
        space();
        if (text[at] === ',') {
          at++;
          continue;
        }
        expect(')');
        break;
      }
    }
    return { kind: 'call', name: ident[0], args };
  };
  const postfix = (): Node => {
    let node = primary();
    for (;;) {
      space();
      if (text[at] === '.') {
        at++;
        space();
        const ident = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(text.slice(at));
        if (!ident) throw failed(`The template language expression '${text}' is not valid: a property name is expected at position ${at}`);
        at += ident[0].length;
        node = { kind: 'member', target: node, property: ident[0] };
      } else if (text[at] === '[') {
        at++;
        const index = postfix();
        expect(']');
        node = { kind: 'index', target: node, index };
      } else return node;
    }
  };
  const node = postfix();
  space();
  if (at !== text.length) throw failed(`The template language expression '${text}' is not valid: unexpected '${text.slice(at)}'`);
  return node;
}

/** ARM's uniqueString: 13 characters of [a-z2-7] from a deterministic hash of its arguments (https://learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-string#uniquestring). Not Azure's own hash, the same shape. */
export function uniqueString(...parts: string[]): string {
  const digest = createHash('sha256').update(parts.join('-')).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '';
  for (let i = 0; i < 13; i++) out += alphabet[digest[i] % 32];
  return out;
}

function guid(...parts: string[]): string {
  const h = createHash('sha1').update(parts.join('-')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** cidrHost: the host at an index, the first usable address being index 0 (https://learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-cidr#cidrhost). */
function cidrHost(cidr: string, host: number): string {
  const [address] = cidr.split('/');
  const n = address.split('.').reduce((a, o) => a * 256 + Number(o), 0) + host + 1;
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

const isRuntime = (v: Value) => v === RUNTIME;

export class TemplateEvaluator {
  private readonly variables = new Map<string, Value>();
  private readonly evaluating = new Set<string>();
  readonly parameters: Record<string, Value> = {};

  constructor(private readonly template: Json, given: Record<string, { value?: unknown }>, private readonly scope: DeploymentScope) {
    const declared = (template.parameters ?? {}) as Record<string, Json>;
    const unknown = Object.keys(given).filter((k) => !(k in declared));
    if (unknown.length > 0) {
      throw failed(`The template parameters '${unknown.join(', ')}' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are '${Object.keys(declared).join(', ')}'. Please see https://aka.ms/arm-pass-parameter-values for usage details`);
    }
    for (const [name, decl] of Object.entries(declared)) {
      let value: Value;
      if (name in given) value = given[name].value;
      else if ('defaultValue' in decl) value = this.evaluate(decl.defaultValue);
      else throw failed(`The value for the template parameter '${name}' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage details`);
      checkParameter(name, decl, value);
      this.parameters[name] = value;
    }
  }

  /**
   * The template's resources, each with its condition and the parts preflight looks at evaluated;
   * a resource with `copy` is as many resources as its count, `copyIndex()` each one's place
   * (https://learn.microsoft.com/azure/azure-resource-manager/templates/copy-resources: the count
   * an integer from 0 to 800, 0 deploying none).
   */
  resources(): EvaluatedResource[] {
    return ((this.template.resources ?? []) as Json[]).flatMap((r) => {
      if (r.copy === undefined) return [this.resource(r)];
      const copy = (r.copy ?? {}) as Json;
      const count = this.evaluate(copy.count);
      if (isRuntime(count)) throw failed(`The copy count of resource '${String(r.name)}' must be known when the deployment starts: it cannot use reference() or a list function`);
      if (typeof copy.name !== 'string' || !copy.name) throw failed(`The copy of resource '${String(r.name)}' has no name`);
      if (!Number.isInteger(count) || (count as number) < 0 || (count as number) > 800) throw failed(`The copy count of '${copy.name}' must be an integer from 0 to 800; it is '${String(count)}'`);
      return Array.from({ length: count as number }, (_, i) => this.resource(r, i));
    });
  }

  private copyIndex?: number;

  private resource(r: Json, copyIndex?: number): EvaluatedResource {
    this.copyIndex = copyIndex;
    try {
      const deployed = r.condition === undefined ? true : this.evaluate(r.condition);
      const name = this.evaluate(r.name);
      return {
        type: String(r.type), apiVersion: String(r.apiVersion), name: isRuntime(name) ? RUNTIME : String(name), deployed: deployed === true || isRuntime(deployed),
        location: this.evaluate(r.location), zones: this.evaluate(r.zones), sku: this.evaluate(r.sku), properties: this.evaluate(r.properties), scope: this.evaluate(r.scope), identity: this.evaluate(r.identity),
      };
    } finally {
      this.copyIndex = undefined;
    }
  }

  /** A template value: strings in brackets are expressions ("[[" escapes a literal bracket), objects and arrays evaluated throughout, keys too. */
  evaluate(v: Value): Value {
    if (typeof v === 'string') {
      if (v.startsWith('[[')) return v.slice(1);
      if (v.startsWith('[') && v.endsWith(']')) return this.run(parseExpression(v.slice(1, -1)));
      return v;
    }
    if (Array.isArray(v)) return v.map((x) => this.evaluate(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [String(this.evaluate(k)), this.evaluate(x)]));
    return v;
  }

  private variable(name: string): Value {
    const vars = (this.template.variables ?? {}) as Json;
    if (!(name in vars)) throw failed(`The template variable '${name}' is not found. Please see https://aka.ms/arm-functions for usage details`);
    if (this.variables.has(name)) return this.variables.get(name);
    if (this.evaluating.has(name)) throw failed(`The template variable '${name}' refers to itself`);
    this.evaluating.add(name);
    const value = this.evaluate(vars[name]);
    this.evaluating.delete(name);
    this.variables.set(name, value);
    return value;
  }

  private run(node: Node): Value {
    if (node.kind === 'literal') return node.value;
    if (node.kind === 'member') {
      const target = this.run(node.target);
      if (isRuntime(target)) return RUNTIME;
      if (!target || typeof target !== 'object' || !(node.property in target)) {
        throw failed(`The language expression property '${node.property}' doesn't exist, available properties are '${target && typeof target === 'object' ? Object.keys(target).join(', ') : ''}'`);
      }
      return (target as Json)[node.property];
    }
    if (node.kind === 'index') {
      const target = this.run(node.target);
      const index = this.run(node.index);
      if (isRuntime(target) || isRuntime(index)) return RUNTIME;
      const found = Array.isArray(target) ? target[Number(index)] : (target as Json | undefined)?.[String(index)];
      if (found === undefined) throw failed(`The language expression property '${String(index)}' doesn't exist`);
      return found;
    }
    const name = node.name.toLowerCase();
    if (name === 'if') {
      const cond = this.run(node.args[0]);
      if (isRuntime(cond)) return RUNTIME;
      return this.run(node.args[cond ? 1 : 2]);
    }
    const args = node.args.map((a) => this.run(a));
    if (name === 'reference' || name.startsWith('list')) return RUNTIME;
    if (args.some(isRuntime)) return RUNTIME;
    const s = this.scope;
    const str = (i: number) => String(args[i]);
    const rgId = `/subscriptions/${s.subscriptionId}/resourceGroups/${s.resourceGroup}`;
    switch (name) {
      case 'parameters':
        if (!(str(0) in this.parameters)) throw failed(`The template parameter '${str(0)}' is not found. Please see https://aka.ms/arm-functions for usage details`);
        return this.parameters[str(0)];
      case 'variables':
        return this.variable(str(0));
      case 'concat':
        return args.every(Array.isArray) ? (args as unknown[][]).flat() : args.map((a) => (typeof a === 'object' ? JSON.stringify(a) : String(a))).join('');
      case 'resourcegroup':
        return { id: rgId, name: s.resourceGroup, type: 'Microsoft.Resources/resourceGroups', location: s.location, properties: { provisioningState: 'Succeeded' } };
      case 'subscription':
        return { id: `/subscriptions/${s.subscriptionId}`, subscriptionId: s.subscriptionId, tenantId: s.tenantId, displayName: 'subscription' };
      case 'deployment':
        return { name: s.deploymentName, properties: s.templateLinkUri ? { templateLink: { uri: s.templateLinkUri } } : { template: this.template, mode: 'Incremental' } };
      case 'uniquestring':
        return uniqueString(...args.map(String));
      case 'guid':
        return guid(...args.map(String));
      case 'resourceid': {
        const [first] = args.map(String);
        const lead = first.includes('/') ? [] : args.slice(0, args.findIndex((a) => String(a).includes('/'))).map(String);
        const [type, ...names] = args.slice(lead.length).map(String);
        const base = lead.length === 2 ? `/subscriptions/${lead[0]}/resourceGroups/${lead[1]}` : lead.length === 1 ? `/subscriptions/${s.subscriptionId}/resourceGroups/${lead[0]}` : rgId;
        const [ns, ...types] = type.split('/');
        if (types.length !== names.length) throw failed(`Unable to evaluate template language function 'resourceId': the type '${type}' requires ${types.length} resource name argument(s)`);
        return `${base}/providers/${ns}/${types.map((t, i) => `${t}/${names[i]}`).join('/')}`;
      }
      case 'subscriptionresourceid': {
        const [type, ...names] = args.map(String);
        const [ns, ...types] = type.split('/');
        return `/subscriptions/${s.subscriptionId}/providers/${ns}/${types.map((t, i) => `${t}/${names[i]}`).join('/')}`;
      }
      case 'copyindex':
        // https://learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-numeric#copyindex: only inside a copy loop.
        if (this.copyIndex === undefined) throw failed("The template function 'copyIndex' is not expected at this location. Please see https://aka.ms/arm-copy for usage details");
        return this.copyIndex + (args.length > 0 ? Number(args[args.length - 1]) : 0);
      case 'cidrhost':
        return cidrHost(str(0), Number(args[1]));
      case 'take':
        return typeof args[0] === 'string' ? args[0].slice(0, Number(args[1])) : (args[0] as unknown[]).slice(0, Number(args[1]));
      case 'union':
        return args.every(Array.isArray) ? [...new Set((args as unknown[][]).flat())] : Object.assign({}, ...(args as Json[]));
      case 'createobject':
        return Object.fromEntries(Array.from({ length: args.length / 2 }, (_, i) => [String(args[2 * i]), args[2 * i + 1]]));
      case 'createarray':
        return args;
      case 'equals':
        return JSON.stringify(args[0]) === JSON.stringify(args[1]);
      case 'not':
        return !args[0];
      case 'and':
        return args.every(Boolean);
      case 'or':
        return args.some(Boolean);
      case 'empty':
        return args[0] === null || args[0] === '' || (Array.isArray(args[0]) && args[0].length === 0) || (typeof args[0] === 'object' && Object.keys(args[0] as Json).length === 0);
      case 'contains':
        return typeof args[0] === 'string' ? args[0].includes(str(1)) : Array.isArray(args[0]) ? args[0].some((x) => JSON.stringify(x) === JSON.stringify(args[1])) : str(1) in (args[0] as Json);
      case 'length':
        return typeof args[0] === 'string' || Array.isArray(args[0]) ? args[0].length : Object.keys(args[0] as Json).length;
      case 'string':
        return typeof args[0] === 'object' ? JSON.stringify(args[0]) : String(args[0]);
      case 'int':
        return Math.trunc(Number(args[0]));
      case 'tolower':
        return str(0).toLowerCase();
      case 'uri':
        return new URL(str(1), str(0)).toString();
      case 'pickzones': {
        const count = args.length > 3 ? Number(args[3]) : 1;
        const offset = args.length > 4 ? Number(args[4]) : 0;
        return s.zonesOf(str(2)).slice(offset, offset + count);
      }
      default:
        throw failed(`The template function '${node.name}' is not valid. Please see https://aka.ms/arm-functions for usage details`);
    }
  }
}

/** A deployment's parameters checked and its resources evaluated; throws TemplateError as ARM answers InvalidTemplate. */
export function evaluateDeployment(template: Json, parameters: Record<string, { value?: unknown }>, scope: DeploymentScope): EvaluatedDeployment {
  const e = new TemplateEvaluator(template, parameters, scope);
  return { parameters: e.parameters, resources: e.resources() };
}
